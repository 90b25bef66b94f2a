// Unit tests of station control without the DOM: `npm test` (node:test, no dependencies).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  KEEPALIVE_INTERVAL_MS,
  MAX_FREQUENCY_HZ,
  MIN_FREQUENCY_HZ,
  PttController,
  RIG_MODES,
  availableModes,
  describeRelease,
  describeStationStop,
  formatKhz,
  frequencyFromInput,
  frequencyProblem,
  parseCapabilities,
  parseKhz,
} from "../src/control.js";

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

test("release reasons are readable", () => {
  assert.equal(
    describeRelease("override", "DL1ABC"),
    "Transmission released by the server: owner DL1ABC took over.",
  );
  assert.match(describeRelease("deadman", null), /dead-man/);
  assert.match(describeRelease("timeout", null), /time-out/);
  assert.match(describeRelease("link_lost", null), /connection/);
  assert.match(describeRelease("station_lost", null), /offline/);
  assert.match(describeRelease("rig_error", null), /rig/);
  assert.match(describeRelease("something_new", null), /something_new/);
  assert.match(describeStationStop("timeout"), /time-out/);
});

/** A PTT controller with a fake clock and a recorded channel. */
function harness({ open = true } = {}) {
  const sent = [];
  const changes = [];
  const timers = new Map();
  let nextId = 1;
  const channel = { open };
  const ptt = new PttController({
    send: (message) => {
      if (!channel.open) return false;
      sent.push(message);
      return true;
    },
    onChange: (keyed, why) => changes.push([keyed, why]),
    setInterval: (fn, ms) => {
      assert.equal(ms, KEEPALIVE_INTERVAL_MS);
      const id = nextId++;
      timers.set(id, fn);
      return id;
    },
    clearInterval: (id) => timers.delete(id),
  });
  const tick = (n = 1) => {
    for (let i = 0; i < n; i++) for (const fn of [...timers.values()]) fn();
  };
  return { ptt, sent, changes, timers, tick, channel };
}

test("PTT: press keys and sends keep-alives until released", () => {
  const h = harness();
  assert.equal(h.ptt.press(), true);
  assert.equal(h.ptt.keyed, true);
  assert.equal(h.ptt.press(), true, "a second press changes nothing");
  h.tick(4);
  h.ptt.release();
  h.tick(4); // no keep-alive after the release
  assert.deepEqual(h.sent, [
    { type: "ptt", state: true },
    { type: "keepalive" },
    { type: "keepalive" },
    { type: "keepalive" },
    { type: "keepalive" },
    { type: "ptt", state: false },
  ]);
  assert.equal(h.ptt.keepalivesSent, 4);
  assert.equal(h.timers.size, 0);
  assert.deepEqual(h.changes, [
    [true, "pressed"],
    [false, "released"],
  ]);
  h.ptt.release();
  assert.equal(h.sent.length, 6, "a release while unkeyed sends nothing");
});

test("PTT: no key while the channel is closed", () => {
  const h = harness({ open: false });
  assert.equal(h.ptt.press(), false);
  assert.equal(h.ptt.keyed, false);
  assert.equal(h.timers.size, 0);
  assert.deepEqual(h.changes, []);
});

test("PTT: a keep-alive that cannot go out drops the local state", () => {
  const h = harness();
  h.ptt.press();
  h.tick();
  h.channel.open = false;
  h.tick();
  assert.equal(h.ptt.keyed, false);
  assert.equal(h.timers.size, 0);
  assert.deepEqual(h.changes.at(-1), [false, "keepalive_failed"]);
});

test("PTT: a server release drops the state without sending", () => {
  const h = harness();
  h.ptt.press();
  h.ptt.drop("deadman");
  assert.equal(h.ptt.keyed, false);
  assert.equal(h.timers.size, 0);
  assert.deepEqual(h.sent, [{ type: "ptt", state: true }]);
  assert.deepEqual(h.changes.at(-1), [false, "deadman"]);
  h.ptt.drop("again");
  assert.equal(h.changes.length, 2, "dropping while unkeyed changes nothing");
});

test("PTT: onChange runs after `ptt` true went out and before `ptt` false goes out", () => {
  const order = [];
  const ptt = new PttController({
    send: (message) => {
      order.push(`send ${message.type}${"state" in message ? `=${message.state}` : ""}`);
      return true;
    },
    onChange: (keyed) => order.push(`change ${keyed}`),
    setInterval: () => 1,
    clearInterval: () => {},
  });
  ptt.press();
  ptt.release();
  assert.deepEqual(order, ["send ptt=true", "change true", "change false", "send ptt=false"]);
});
