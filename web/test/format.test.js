// Unit tests of the console's display formatting: `npm test` (node:test, no dependencies).

import assert from "node:assert/strict";
import { test } from "node:test";

import { formatFrequency, formatPower, formatSMeter, formatSquelch } from "../src/format.js";

test("frequency shows MHz with kHz grouping", () => {
  assert.equal(formatFrequency(14_205_000), "14.205.000");
  assert.equal(formatFrequency(7_074_000), "7.074.000");
  assert.equal(formatFrequency(144_800_125), "144.800.125");
  assert.equal(formatFrequency(475_500), "0.475.500");
  assert.equal(formatFrequency(1), "0.000.001");
  assert.equal(formatFrequency(300_000_000_000), "300000.000.000");
  assert.equal(formatFrequency(-5), "—");
  assert.equal(formatFrequency(1.5), "—");
});

test("S-meter: S9 is -73 dBm, 6 dB per S-unit, dB over S9", () => {
  assert.equal(formatSMeter(-73), "S9");
  assert.equal(formatSMeter(-79), "S8");
  assert.equal(formatSMeter(-85), "S7");
  assert.equal(formatSMeter(-121), "S1");
  assert.equal(formatSMeter(-127), "S0");
  assert.equal(formatSMeter(-160), "S0");
  assert.equal(formatSMeter(-83), "S7"); // 1.67 units under S9: the nearer S-unit
  assert.equal(formatSMeter(-53), "S9+20 dB");
  assert.equal(formatSMeter(-72), "S9+1 dB");
  assert.equal(formatSMeter(null), null);
  assert.equal(formatSMeter(undefined), null);
});

test("squelch and power", () => {
  assert.equal(formatSquelch(true), "open");
  assert.equal(formatSquelch(false), "closed");
  assert.equal(formatSquelch(null), "—");
  assert.equal(formatPower(50), "50 %");
  assert.equal(formatPower(null), "—");
});
