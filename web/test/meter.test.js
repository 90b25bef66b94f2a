import assert from "node:assert/strict";
import { test } from "node:test";

import { micFraction, rmsDbfs, S9_FRACTION, sMeterFraction, sMeterTicks } from "../src/meter.js";

test("S-meter bar: S-unit scaled, S9 at 60 %, S9+60 dB full", () => {
  assert.equal(sMeterFraction(null), 0);
  assert.equal(sMeterFraction(-127), 0);
  assert.equal(sMeterFraction(-200), 0);
  assert.equal(sMeterFraction(-73), S9_FRACTION);
  assert.equal(sMeterFraction(-13), 1);
  assert.equal(sMeterFraction(0), 1);
  // equal width per S-unit below S9
  const s1 = sMeterFraction(-121);
  const s2 = sMeterFraction(-115);
  assert.ok(Math.abs(s2 - s1 - S9_FRACTION / 9) < 1e-9);
  assert.ok(Math.abs(sMeterFraction(-53) - (S9_FRACTION + 0.4 / 3)) < 1e-9, "S9+20");
});

test("S-meter bar: ticks at S1..S9, +20, +40", () => {
  const ticks = sMeterTicks();
  assert.deepEqual(
    ticks.filter((t) => t.label).map((t) => t.label),
    ["S1", "S3", "S5", "S7", "S9", "+20", "+40"],
  );
  assert.equal(ticks.length, 11);
  const fractions = ticks.map((t) => t.fraction);
  assert.deepEqual([...fractions].sort((a, b) => a - b), fractions, "left to right");
});

test("microphone level: RMS in dBFS, 0..1 from -60 dBFS", () => {
  assert.equal(rmsDbfs(new Float32Array(8)), -Infinity);
  assert.ok(Math.abs(rmsDbfs(Float32Array.from([1, -1, 1, -1]))) < 1e-9);
  assert.ok(Math.abs(rmsDbfs(Float32Array.from([0.1, -0.1])) + 20) < 1e-6);
  assert.equal(micFraction(-Infinity), 0);
  assert.equal(micFraction(-70), 0);
  assert.equal(micFraction(-30), 0.5);
  assert.equal(micFraction(3), 1);
});
