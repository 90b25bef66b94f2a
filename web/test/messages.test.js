// Unit tests of decoding and dispatching control-channel messages: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeControlMessage, dispatchControlMessage } from "../src/messages.js";
import { SERVER_MESSAGE_TYPES, STATION_MESSAGE_TYPES } from "../src/protocol.js";

/** Handlers recording what they were given, one per received type. */
function recorder() {
  const calls = [];
  const handlers = {};
  for (const type of new Set([...STATION_MESSAGE_TYPES, ...SERVER_MESSAGE_TYPES])) {
    handlers[type] = (message) => calls.push(message);
  }
  const warnings = [];
  const dispatch = (message) =>
    dispatchControlMessage(
      typeof message === "string" ? message : JSON.stringify(message),
      handlers,
      (text) => warnings.push(text),
    );
  return { calls, warnings, dispatch };
}

test("each received type reaches its handler, checked and with defaults", () => {
  const r = recorder();
  const status = { type: "status", ptt: false, freq: 14_205_000, mode: "USB", smeter: -73 };
  r.dispatch(status);
  r.dispatch({ type: "heartbeat", timestamp: 1763900000.5 });
  r.dispatch({ type: "floor", holder: "DL1ABC", you: true, tx_limit_s: 180 });
  r.dispatch({ type: "floor", holder: null, tx_limit_s: 0 });
  r.dispatch({ type: "capabilities", modes: ["USB"], freq_ranges: [{ low: 1, high: 2 }] });
  r.dispatch({ type: "ptt_released", reason: "override", by: "DL1OWN" });
  r.dispatch({ type: "ptt_released" });
  r.dispatch({ type: "tx_warning", remaining_s: 10 });
  r.dispatch({ type: "tx_stopped", reason: "timeout" });
  r.dispatch({ type: "error", code: "floor_busy", message: "DL1ABC is transmitting", ref: "ptt" });
  r.dispatch({ type: "error" });
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(r.calls, [
    status,
    { type: "heartbeat" },
    { type: "floor", holder: "DL1ABC", you: true, tx_limit_s: 180 },
    { type: "floor", holder: null, you: false, tx_limit_s: null },
    { type: "capabilities", capabilities: { modes: ["USB"], freq_ranges: [{ low: 1, high: 2 }] } },
    { type: "ptt_released", reason: "override", by: "DL1OWN" },
    { type: "ptt_released", reason: "unknown", by: null },
    { type: "tx_warning", remaining_s: 10 },
    { type: "tx_stopped", reason: "timeout" },
    { type: "error", code: "floor_busy", message: "DL1ABC is transmitting", ref: "ptt" },
    { type: "error", code: "error", message: "The server refused a message.", ref: null },
  ]);
  for (const message of r.calls) assert.ok(Object.isFrozen(message), message.type);
});

test("every type the station and the server send is decoded", () => {
  const examples = {
    status: { ptt: true, freq: 7_074_000, mode: "LSB" },
    heartbeat: { timestamp: 1 },
    capabilities: { modes: [], freq_ranges: [] },
    tx_stopped: { reason: "deadman" },
    error: { code: "rig_error", message: "no", ref: "freq" },
    floor: { holder: null, you: false },
    ptt_released: { reason: "deadman", by: null },
    tx_warning: { remaining_s: 5 },
    roster: { listeners: [{ callsign: "DL1ABC", transmitting: false, waiting: true }], count: 1 },
  };
  for (const type of new Set([...STATION_MESSAGE_TYPES, ...SERVER_MESSAGE_TYPES])) {
    assert.ok(type in examples, `no example for ${type}`);
    const decoded = decodeControlMessage(JSON.stringify({ type, ...examples[type] }));
    assert.equal(decoded.type, type, JSON.stringify(decoded));
  }
});

test("malformed and unknown messages are logged and dropped", () => {
  const r = recorder();
  r.dispatch("{not json");
  r.dispatch({ type: "status", ptt: "yes", freq: 1, mode: "USB" });
  r.dispatch({ type: "status", ptt: true, freq: 1.5, mode: "USB" });
  r.dispatch({ type: "status", ptt: true, freq: 1, mode: "USB", smeter: "S9" });
  r.dispatch({ type: "status", ptt: true, freq: 1, mode: "USB", rig_online: "no" });
  r.dispatch({ type: "capabilities", modes: "USB", freq_ranges: [] });
  r.dispatch({ type: "tx_warning", remaining_s: 1.5 });
  r.dispatch({ type: "freq", value: 1 }); // operator -> station: never sent to operators
  r.dispatch({ no: "type" });
  r.dispatch("null");
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.warnings, [
    "control channel: not JSON, ignored",
    "control channel: malformed status, ignored",
    "control channel: malformed status, ignored",
    "control channel: malformed status, ignored",
    "control channel: malformed status, ignored",
    "control channel: malformed capabilities, ignored",
    "control channel: malformed tx_warning, ignored",
    "control channel: unknown message type, ignored",
    "control channel: unknown message type, ignored",
    "control channel: unknown message type, ignored",
  ]);
});
