// Unit tests of the spectrum's scaling and colour map: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  COLOUR_STOPS,
  MAX_DB,
  MIN_DB,
  colourOf,
  colourTable,
  columnBins,
  columnLevels,
  scaleDb,
  waterfallRow,
} from "../src/spectrum.js";

test("dB map onto 0..1 between the floor and the top, clamped", () => {
  assert.equal(scaleDb(MIN_DB), 0);
  assert.equal(scaleDb(MAX_DB), 1);
  assert.equal(scaleDb((MIN_DB + MAX_DB) / 2), 0.5);
  assert.equal(scaleDb(MIN_DB - 50), 0);
  assert.equal(scaleDb(0), 1);
  assert.equal(scaleDb(-60, -100, -20), 0.5);
});

test("silence and garbage are the floor, never NaN", () => {
  assert.equal(scaleDb(-Infinity), 0);
  assert.equal(scaleDb(NaN), 0);
  assert.equal(scaleDb(Infinity), 1);
});

test("the colour map runs through its stops and is clamped", () => {
  for (const [at, colour] of COLOUR_STOPS) assert.deepEqual(colourOf(at), [...colour]);
  assert.deepEqual(colourOf(-1), [...COLOUR_STOPS[0][1]]);
  assert.deepEqual(colourOf(2), [...COLOUR_STOPS[COLOUR_STOPS.length - 1][1]]);
  assert.deepEqual(colourOf(NaN), [...COLOUR_STOPS[0][1]]);
  // halfway between the first two stops
  const [, a] = COLOUR_STOPS[0];
  const [at, b] = COLOUR_STOPS[1];
  assert.deepEqual(
    colourOf(at / 2),
    a.map((v, i) => Math.round(v + (b[i] - v) / 2)),
  );
});

test("the floor is the darkest colour and the top the brightest", () => {
  const brightness = (/** @type {number} */ t) => {
    const [r, g, b] = colourOf(t);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  for (let i = 1; i < 100; i++) {
    assert.ok(brightness(i / 100) > brightness(0), `at ${i / 100}`);
    assert.ok(brightness(i / 100) < brightness(1), `at ${i / 100}`);
  }
});

test("the lookup table holds colourOf for 256 steps, opaque", () => {
  const table = colourTable();
  assert.equal(table.length, 1024);
  assert.deepEqual([...table.slice(0, 4)], [...colourOf(0), 255]);
  assert.deepEqual([...table.slice(1020, 1024)], [...colourOf(1), 255]);
  assert.deepEqual([...table.slice(128 * 4, 128 * 4 + 4)], [...colourOf(128 / 255), 255]);
});

test("columns cover 0 to 4 kHz only, in order, each at least one bin", () => {
  // 48 kHz, fftSize 4096: 2048 bins of 11.72 Hz; 4 kHz is bin 342
  const ranges = columnBins(2048, 48_000, 400);
  assert.equal(ranges.length, 800);
  assert.equal(ranges[0], 0);
  assert.equal(ranges[799], 342);
  for (let x = 0; x < 400; x++) {
    assert.ok(ranges[2 * x + 1] > ranges[2 * x], `column ${x} is empty`);
    if (x > 0) assert.ok(ranges[2 * x] >= ranges[2 * x - 1] - 1);
  }
  // more columns than bins: every column still has one
  const narrow = columnBins(64, 8_000, 100);
  for (let x = 0; x < 100; x++) assert.ok(narrow[2 * x + 1] > narrow[2 * x]);
  assert.ok(narrow[199] <= 64);
});

test("a column shows its strongest bin, so a narrow CW tone is not averaged away", () => {
  const bins = new Float32Array(2048).fill(-Infinity);
  // a 1 kHz tone: bin 85 at 11.72 Hz per bin
  bins[85] = -40;
  const ranges = columnBins(2048, 48_000, 100); // ~3.4 bins per column
  const levels = columnLevels(bins, ranges);
  const lit = [...levels].flatMap((v, x) => (v > 0 ? [x] : []));
  assert.equal(lit.length, 1);
  assert.ok(ranges[2 * lit[0]] <= 85 && 85 < ranges[2 * lit[0] + 1]);
  assert.equal(levels[lit[0]], scaleDb(-40));
});

test("a waterfall row is the colour of each column, opaque", () => {
  const table = colourTable();
  const row = waterfallRow(new Float32Array([0, 1, 0.5]), table);
  assert.deepEqual([...row.slice(0, 4)], [...colourOf(0), 255]);
  assert.deepEqual([...row.slice(4, 8)], [...colourOf(1), 255]);
  assert.deepEqual([...row.slice(8, 12)], [...colourOf(128 / 255), 255]);
});
