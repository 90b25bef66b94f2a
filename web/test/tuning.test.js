// Unit tests of tuning without the DOM: `npm test` (node:test, no dependencies).

import assert from "node:assert/strict";
import { test } from "node:test";

import { RIG_MODES } from "../src/protocol.js";
import {
  availableModes,
  formatKhz,
  frequencyFromInput,
  frequencyProblem,
  parseCapabilities,
  parseKhz,
} from "../src/tuning.js";

test("kHz entry is parsed as text into whole Hz", () => {
  assert.deepEqual(parseKhz("14205"), { hz: 14_205_000 });
  assert.deepEqual(parseKhz(" 14205.5 "), { hz: 14_205_500 });
  assert.deepEqual(parseKhz("14205.001"), { hz: 14_205_001 });
  assert.deepEqual(parseKhz("7074,000"), { hz: 7_074_000 });
  assert.deepEqual(parseKhz("144 800.125"), { hz: 144_800_125 });
  assert.deepEqual(parseKhz("0.001"), { hz: 1 });
  assert.deepEqual(parseKhz("7074."), { hz: 7_074_000 });
  for (const bad of ["", "  ", "abc", "-7074", "1e4", "7074.0001", "7.074.000", "0x10", "1234567890"]) {
    assert.ok("error" in parseKhz(bad), `${JSON.stringify(bad)} should be refused`);
  }
});

test("kHz text for the entry field", () => {
  assert.equal(formatKhz(14_205_000), "14205.000");
  assert.equal(formatKhz(7_074_001), "7074.001");
  assert.equal(formatKhz(1), "0.001");
  assert.equal(formatKhz(-1), "");
  for (const hz of [1, 475_500, 14_205_123, 300_000_000_000]) {
    assert.deepEqual(parseKhz(formatKhz(hz)), { hz }, "round trip");
  }
});

test("frequency bounds: the protocol's without capabilities, the station's ranges with them", () => {
  assert.equal(frequencyProblem(1, null), null);
  assert.equal(frequencyProblem(300_000_000_000, null), null);
  assert.match(String(frequencyProblem(0, null)), /between/);
  assert.match(String(frequencyProblem(300_000_000_001, null)), /between/);
  const caps = { modes: ["USB"], freq_ranges: [{ low: 1_800_000, high: 29_700_000 }] };
  assert.equal(frequencyProblem(1_800_000, caps), null); // inclusive
  assert.equal(frequencyProblem(29_700_000, caps), null);
  assert.match(String(frequencyProblem(144_800_000, caps)), /1800–29700 kHz/);
  assert.equal(frequencyProblem(144_800_000, { modes: [], freq_ranges: [] }), null);
  assert.deepEqual(frequencyFromInput("7074", caps), { hz: 7_074_000 });
  assert.ok("error" in frequencyFromInput("144800", caps));
  assert.ok("error" in frequencyFromInput("x", caps));
});

test("modes: the station's (protocol modes only) or the protocol's list", () => {
  assert.deepEqual(availableModes(null), [...RIG_MODES]);
  assert.deepEqual(availableModes({ modes: ["LSB", "USB", "XYZ", "USB"], freq_ranges: [] }), [
    "LSB",
    "USB",
  ]);
  assert.deepEqual(availableModes({ modes: [], freq_ranges: [] }), [...RIG_MODES]);
});

test("capabilities messages are checked", () => {
  const good = {
    type: "capabilities",
    modes: ["USB", "LSB"],
    freq_ranges: [{ low: 1_800_000, high: 29_700_000 }],
  };
  assert.deepEqual(parseCapabilities(good), {
    modes: ["USB", "LSB"],
    freq_ranges: [{ low: 1_800_000, high: 29_700_000 }],
  });
  assert.equal(parseCapabilities({ modes: "USB", freq_ranges: [] }), null);
  assert.equal(parseCapabilities({ modes: [], freq_ranges: [{ low: 5, high: 1 }] }), null);
  assert.equal(parseCapabilities({ modes: [], freq_ranges: [{ low: 1.5, high: 2 }] }), null);
  assert.equal(parseCapabilities(null), null);
});
