// Unit tests of the received audio's volume preferences and RX meter: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_PREFS,
  LEVEL_FLOOR_DB,
  LEVEL_RELEASE_DB_PER_S,
  levelText,
  meterReading,
  parsePrefs,
  rmsDbfs,
} from "../src/audio_output.js";

test("stored preferences are read back, clamped, with defaults for the rest", () => {
  assert.deepEqual(parsePrefs(JSON.stringify({ volume: 35, muted: true })), {
    volume: 35,
    muted: true,
  });
  assert.deepEqual(parsePrefs(null), { ...DEFAULT_PREFS });
  assert.deepEqual(parsePrefs(""), { ...DEFAULT_PREFS });
  assert.deepEqual(parsePrefs("{not json"), { ...DEFAULT_PREFS });
  assert.deepEqual(parsePrefs("42"), { ...DEFAULT_PREFS });
  assert.deepEqual(parsePrefs(JSON.stringify({ volume: 250 })), { volume: 100, muted: false });
  assert.deepEqual(parsePrefs(JSON.stringify({ volume: -3, muted: "yes" })), {
    volume: 0,
    muted: false,
  });
  assert.deepEqual(parsePrefs(JSON.stringify({ volume: "abc" })), { ...DEFAULT_PREFS });
  assert.deepEqual(parsePrefs(JSON.stringify({ volume: 33.6 })), { volume: 34, muted: false });
});

test("RMS level in dBFS: full scale 0, a full-scale sine -3, silence -Infinity", () => {
  assert.equal(rmsDbfs(new Float32Array(128).fill(1)), 0);
  const sine = Float32Array.from({ length: 4800 }, (_, i) => Math.sin((2 * Math.PI * i) / 48));
  assert.ok(Math.abs(rmsDbfs(sine) - -3.0103) < 0.01, String(rmsDbfs(sine)));
  const quiet = sine.map((v) => v / 10);
  assert.ok(Math.abs(rmsDbfs(quiet) - -23.0103) < 0.01);
  assert.equal(rmsDbfs(new Float32Array(128)), -Infinity);
  assert.equal(rmsDbfs([]), -Infinity);
});

test("the meter rises at once and falls back slowly, within floor and top", () => {
  assert.equal(meterReading(LEVEL_FLOOR_DB, -20, 16), -20);
  // falls at most LEVEL_RELEASE_DB_PER_S
  assert.equal(meterReading(-20, -50, 100), -20 - LEVEL_RELEASE_DB_PER_S / 10);
  assert.equal(meterReading(-20, -21, 1000), -21);
  assert.equal(meterReading(-20, -Infinity, 100_000), LEVEL_FLOOR_DB);
  assert.equal(meterReading(-20, NaN, 100), -20 - LEVEL_RELEASE_DB_PER_S / 10);
  assert.equal(meterReading(-10, 6, 16), 0);
  assert.equal(meterReading(-20, -40, -5), -20);
});

test("the meter's words", () => {
  assert.equal(levelText(-17.6), "-18 dBFS");
  assert.equal(levelText(0), "0 dBFS");
  assert.equal(levelText(LEVEL_FLOOR_DB), "—");
  assert.equal(levelText(-Infinity), "—");
  assert.equal(levelText(NaN), "—");
});
