// Unit tests of push to talk without a browser: `npm test` (node:test, no dependencies).

import assert from "node:assert/strict";
import { test } from "node:test";

import { KEEPALIVE_INTERVAL_MS, TX_END_REASONS } from "../src/protocol.js";
import {
  PttController,
  PttInput,
  describeRelease,
  describeStationStop,
  isPttKey,
  transmitControls,
} from "../src/ptt.js";

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

test("every reason the protocol gives for a release has its own words", () => {
  for (const reason of TX_END_REASONS) {
    const text = describeRelease(reason, "DL1OWN");
    assert.ok(!text.endsWith(`: ${reason}.`), `${reason} is shown raw: ${text}`);
  }
});

/** The transmit state of an owner, joined, microphone attached, channel open, nobody on air. */
const READY = Object.freeze({
  joined: true,
  canTransmit: true,
  mic: "ready",
  micAttached: true,
  channelOpen: true,
  rigOffline: false,
  keyed: false,
  holder: null,
  floorIsMine: false,
  isOwner: false,
});

test("transmit panel: usable only with access, a microphone, the channel and the rig", () => {
  const ready = transmitControls(READY);
  assert.deepEqual(ready, {
    visible: true,
    keyed: false,
    usable: true,
    buttonDisabled: false,
    hint: "Hold the button, or hold the space bar, to talk.",
    tuningDisabled: false,
  });
  const cases = [
    [{ joined: false }, "Listening only.", false],
    [{ canTransmit: false }, "Listening only.", false],
    [{ micAttached: false, mic: "pending" }, "Waiting for permission to use the microphone…", true],
    [{ micAttached: false, mic: "refused" }, "No microphone: transmitting is off.", true],
    [{ channelOpen: false }, "Waiting for the connection to the station…", true],
    [{ rigOffline: true }, "The rig is offline.", true],
    [{ holder: "DL1ABC" }, "DL1ABC is transmitting.", true],
  ];
  for (const [change, hint, visible] of cases) {
    const controls = transmitControls({ ...READY, ...change });
    assert.equal(controls.hint, hint, JSON.stringify(change));
    assert.equal(controls.visible, visible, JSON.stringify(change));
    assert.equal(controls.buttonDisabled, true, JSON.stringify(change));
  }
  assert.equal(transmitControls({ ...READY, micAttached: false }).tuningDisabled, false);
  assert.equal(transmitControls({ ...READY, channelOpen: false }).tuningDisabled, true);
  assert.equal(transmitControls({ ...READY, rigOffline: true }).tuningDisabled, true);
  assert.equal(transmitControls({ ...READY, canTransmit: false }).tuningDisabled, true);
});

test("transmit panel: the owner may take over; keyed stays usable; one's own floor is free", () => {
  const owner = transmitControls({ ...READY, holder: "DL1ABC", isOwner: true });
  assert.equal(owner.buttonDisabled, false);
  assert.equal(owner.hint, "DL1ABC is transmitting; as the owner you can take over.");
  const keyed = transmitControls({ ...READY, keyed: true, holder: "DL1ME", floorIsMine: true });
  assert.equal(keyed.keyed, true);
  assert.equal(keyed.hint, "ON AIR: release the button (or the space bar) to stop.");
  // the channel closing under a held button: not usable, but never disabled while keyed
  const held = transmitControls({ ...READY, keyed: true, channelOpen: false });
  assert.equal(held.usable, false);
  assert.equal(held.buttonDisabled, false);
  const mine = transmitControls({ ...READY, holder: "DL1ME", floorIsMine: true });
  assert.equal(mine.buttonDisabled, false, "the floor this connection still holds is not busy");
});

/**
 * @param {string} type
 * @param {object} [fields]
 */
function event(type, fields = {}) {
  const e = new Event(type, { cancelable: true });
  // own properties, shadowing Event's getters (`target`) too
  for (const [name, value] of Object.entries(fields)) Object.defineProperty(e, name, { value });
  return e;
}

/** A PttInput on fake targets, pressing and releasing a recorded PTT. */
function inputHarness({
  keyEnabled = true,
  canPress = true,
  pressWorks = true,
  latching = false,
} = {}) {
  const button = new EventTarget();
  const win = new EventTarget();
  const calls = [];
  const input = new PttInput({
    latching: () => latching,
    confirm: () => calls.push("confirm?"),
    button,
    window: win,
    keyEnabled: () => keyEnabled,
    canPress: () => canPress,
    press: () => {
      calls.push("press");
      return pressWorks;
    },
    release: (how) => calls.push(`release:${how}`),
  });
  return { button, win, calls, input };
}

const space = (type, fields = {}) => event(type, { code: "Space", ...fields });

test("PTT input: the space bar keys and its key-up releases; auto-repeat never re-keys", () => {
  const h = inputHarness();
  const down = space("keydown");
  h.win.dispatchEvent(down);
  assert.equal(down.defaultPrevented, true, "no page scrolling");
  assert.equal(h.input.source, "key");
  h.win.dispatchEvent(space("keydown", { repeat: true }));
  h.win.dispatchEvent(space("keyup"));
  assert.deepEqual(h.calls, ["press", "release:keyup"]);

  // released by something else (the server, a safety release) while the key is down
  h.win.dispatchEvent(space("keydown"));
  h.input.forget();
  h.win.dispatchEvent(space("keydown", { repeat: true }));
  h.win.dispatchEvent(space("keyup"));
  assert.deepEqual(h.calls, ["press", "release:keyup", "press"], "the key-up sent nothing");
});

test("PTT input: the space bar is left alone with modifiers, in text entry, or without access", () => {
  const typing = { closest: (selector) => (selector.includes("input") ? {} : null) };
  for (const fields of [{ ctrlKey: true }, { altKey: true }, { metaKey: true }, { target: typing }]) {
    const h = inputHarness();
    const down = space("keydown", fields);
    h.win.dispatchEvent(down);
    assert.deepEqual(h.calls, [], JSON.stringify(Object.keys(fields)));
    assert.equal(down.defaultPrevented, false);
  }
  const h = inputHarness({ keyEnabled: false });
  h.win.dispatchEvent(space("keydown"));
  assert.deepEqual(h.calls, []);
  assert.equal(isPttKey(space("keydown", { target: { closest: () => null } })), true);
  assert.equal(isPttKey(space("keydown", { code: "Enter" })), false);
});

test("PTT input: pointer press on the button, release anywhere; other buttons ignored", () => {
  const h = inputHarness();
  h.button.dispatchEvent(event("pointerdown", { pointerType: "mouse", button: 2 }));
  assert.deepEqual(h.calls, [], "a right click does not key");
  h.button.dispatchEvent(event("pointerdown", { pointerType: "touch", button: 0 }));
  h.win.dispatchEvent(space("keyup")); // not what pressed it
  h.win.dispatchEvent(event("pointerup"));
  h.button.dispatchEvent(event("pointerleave")); // already released
  assert.deepEqual(h.calls, ["press", "release:pointerup"]);
  const menu = event("contextmenu");
  h.button.dispatchEvent(menu);
  assert.equal(menu.defaultPrevented, true, "a long touch opens no menu");
});

test("PTT input: nothing is held when the press cannot key", () => {
  const refused = inputHarness({ canPress: false });
  refused.button.dispatchEvent(event("pointerdown", { pointerType: "mouse", button: 0 }));
  refused.win.dispatchEvent(event("pointerup"));
  assert.deepEqual(refused.calls, []);
  const closed = inputHarness({ pressWorks: false });
  closed.button.dispatchEvent(event("pointerdown", { pointerType: "mouse", button: 0 }));
  assert.equal(closed.input.source, null);
  closed.win.dispatchEvent(event("pointerup"));
  assert.deepEqual(closed.calls, ["press"], "no release for a press that did not key");
});

test("PTT input: a touch lets go of its pointer capture, so sliding off the button unkeys", () => {
  const h = inputHarness();
  const released = [];
  h.button.hasPointerCapture = (id) => id === 7;
  h.button.releasePointerCapture = (id) => released.push(id);
  h.button.dispatchEvent(event("pointerdown", { pointerType: "touch", button: 0, pointerId: 7 }));
  assert.deepEqual(released, [7]);
  h.button.dispatchEvent(event("pointerleave"));
  assert.deepEqual(h.calls, ["press", "release:pointerleave"]);
});

test("PTT input, latching: a press asks first, the yes keys, the next press unkeys", () => {
  const h = inputHarness({ latching: true });
  h.button.dispatchEvent(event("pointerdown", { pointerType: "mouse", button: 0 }));
  h.win.dispatchEvent(event("pointerup"));
  assert.deepEqual(h.calls, ["confirm?"], "no keying before the confirmation");
  h.input.latch();
  assert.equal(h.input.source, "latch");
  h.win.dispatchEvent(event("pointerup")); // the confirming click's release: stays keyed
  h.button.dispatchEvent(event("pointerleave"));
  assert.deepEqual(h.calls, ["confirm?", "press"]);
  h.win.dispatchEvent(space("keydown")); // the space bar toggles it off as well
  h.win.dispatchEvent(space("keyup"));
  assert.deepEqual(h.calls, ["confirm?", "press", "release:unlatched"]);
  h.win.dispatchEvent(space("keydown"));
  assert.deepEqual(h.calls, ["confirm?", "press", "release:unlatched", "confirm?"]);
  h.input.latch();
  h.input.unlatch(); // latching turned off while latched
  assert.equal(h.input.source, null);
  assert.equal(h.calls.at(-1), "release:unlatched");
  const refused = inputHarness({ latching: true, canPress: false });
  refused.button.dispatchEvent(event("pointerdown", { pointerType: "mouse", button: 0 }));
  assert.deepEqual(refused.calls, [], "no confirmation when PTT cannot key");
});

test("transmit panel: the hint says how latching PTT works", () => {
  const state = {
    joined: true,
    canTransmit: true,
    mic: "ready",
    micAttached: true,
    channelOpen: true,
    rigOffline: false,
    keyed: false,
    holder: null,
    floorIsMine: false,
    isOwner: true,
    latching: true,
  };
  assert.match(transmitControls(state).hint, /confirm/);
  assert.match(transmitControls({ ...state, keyed: true }).hint, /again to stop/);
  assert.match(transmitControls({ ...state, latching: false }).hint, /Hold the button/);
});
