// Unit tests of a board session with stand-ins for the browser's WebRTC and the server:
// joining, the offer/answer, trickled candidates, the microphone, the control channel, closing.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { CONTROL_CHANNEL_LABEL } from "../src/protocol.js";
import {
  BoardSession,
  describeNoPath,
  OFFER_TIMEOUT_MS,
  rtcConfiguration,
  toRtcIceServers,
} from "../src/session.js";

class FakeChannel extends EventTarget {
  /** @param {string} label */
  constructor(label) {
    super();
    this.label = label;
    this.readyState = "connecting";
    /** @type {string[]} */
    this.sent = [];
  }

  /** @param {string} data */
  send(data) {
    this.sent.push(data);
  }

  open() {
    this.readyState = "open";
    this.dispatchEvent(new Event("open"));
  }

  close() {
    this.readyState = "closed";
    this.dispatchEvent(new Event("close"));
  }

  /** @param {object} message as if it came from the server */
  receive(message) {
    this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(message) }));
  }
}

/** @param {object | null} candidate */
function iceEvent(candidate) {
  return Object.assign(new Event("icecandidate"), { candidate });
}

class FakePeerConnection extends EventTarget {
  /** @type {FakePeerConnection[]} */
  static created = [];

  /** @param {RTCConfiguration} config */
  constructor(config) {
    super();
    this.config = config;
    /** @type {any[]} */
    this.transceivers = [];
    this.connectionState = "new";
    this.closed = false;
    /** @type {FakeChannel | null} */
    this.channel = null;
    this.localDescription = null;
    this.remoteDescription = null;
    FakePeerConnection.created.push(this);
  }

  addTransceiver(trackOrKind, init) {
    const transceiver = {
      trackOrKind,
      init,
      sender: {
        track: typeof trackOrKind === "string" ? null : trackOrKind,
        replaceTrack: async (track) => {
          transceiver.sender.track = track;
        },
      },
    };
    this.transceivers.push(transceiver);
    return transceiver;
  }

  /** @param {string} label */
  createDataChannel(label) {
    this.channel = new FakeChannel(label);
    return this.channel;
  }

  async createOffer() {
    return { type: "offer", sdp: "v=0 offer" };
  }

  async setLocalDescription(description) {
    this.localDescription = description;
    // ICE starts gathering: candidates come before the offer went out
    this.dispatchEvent(iceEvent({ candidate: "candidate:1 host", sdpMid: "0", sdpMLineIndex: 0 }));
    this.dispatchEvent(iceEvent({ candidate: "", sdpMid: "0", sdpMLineIndex: 0 }));
  }

  async setRemoteDescription(description) {
    this.remoteDescription = description;
  }

  close() {
    this.closed = true;
  }

  /** @param {string} state */
  changeState(state) {
    this.connectionState = state;
    this.dispatchEvent(new Event("connectionstatechange"));
  }
}

globalThis.RTCPeerConnection = /** @type {any} */ (FakePeerConnection);

class FakeTrack extends EventTarget {
  enabled = true;
  stopped = false;
  kind = "audio";

  stop() {
    this.stopped = true;
  }
}

function fakeStream() {
  const track = new FakeTrack();
  return { track, getAudioTracks: () => [track], getTracks: () => [track] };
}

/** A server answering `join` and `offer` (or holding a reply back until `release(event)`). */
function fakeServer({ canTransmit = false, hold = [], answer = { type: "answer", sdp: "v=0 answer" } } = {}) {
  const requests = [];
  const held = new Map();
  const replies = {
    join: {
      ok: true,
      board: { id: "b1", name: "Station", online: true },
      ice_servers: [{ urls: ["turn:turn.example:3478"], username: "u", credential: "c" }],
      can_transmit: canTransmit,
      is_owner: false,
    },
    offer: { ok: true, ...answer },
    ice_candidate: { ok: true },
  };
  return {
    requests,
    release: (event) => held.get(event)(),
    request(event, payload, timeoutMs) {
      requests.push({ event, payload, timeoutMs });
      if (hold.includes(event)) {
        return new Promise((resolve) => held.set(event, () => resolve(replies[event])));
      }
      return Promise.resolve(replies[event]);
    },
  };
}

/** Session events recorded as [name, ...args]; control messages as ["message", message]. */
function recorder() {
  const seen = [];
  const events = {};
  for (const name of [
    "access",
    "state",
    "connection",
    "microphone",
    "changed",
    "channel",
    "track",
    "ptt",
    "sent",
    "problem",
    "noPath",
  ]) {
    events[name] = (...args) => seen.push([name, ...args]);
  }
  const messages = {};
  for (const type of ["status", "heartbeat", "floor", "capabilities", "ptt_released"]) {
    messages[type] = (message) => seen.push(["message", message]);
  }
  for (const type of ["tx_warning", "tx_stopped", "error"]) {
    messages[type] = (message) => seen.push(["message", message]);
  }
  events.messages = messages;
  return { seen, events };
}

const sessions = [];
function newSession(options) {
  const session = new BoardSession({ boardId: "b1", micWaitMs: 20, ...options });
  sessions.push(session);
  return session;
}

afterEach(() => {
  for (const session of sessions.splice(0)) session.close(); // no timer outlives a test
  FakePeerConnection.created.length = 0;
});

test("ICE servers: exactly the list given, without null credentials", () => {
  assert.deepEqual(
    toRtcIceServers([
      { urls: ["stun:stun.example:3478"], username: null, credential: null },
      { urls: ["turn:turn.example:3478"], username: "u", credential: "c" },
    ]),
    [{ urls: ["stun:stun.example:3478"] }, { urls: ["turn:turn.example:3478"], username: "u", credential: "c" }],
  );
  assert.deepEqual(toRtcIceServers(undefined), []);
  assert.deepEqual(toRtcIceServers([]), []);
});

test("listening only: join, a receive-only offer with the control channel, the answer", async () => {
  const server = fakeServer();
  const { seen, events } = recorder();
  let asked = 0;
  const session = newSession({
    signaling: server,
    events,
    mediaDevices: { getUserMedia: async () => (asked++, fakeStream()) },
  });
  await session.start();
  assert.equal(asked, 0, "no microphone without `can_transmit`");
  const [pc] = FakePeerConnection.created;
  assert.deepEqual(pc.config, {
    iceServers: [{ urls: ["turn:turn.example:3478"], username: "u", credential: "c" }],
    iceTransportPolicy: "all",
    bundlePolicy: "max-bundle",
  });
  assert.deepEqual(
    pc.transceivers.map((t) => [t.trackOrKind, t.init]),
    [["audio", { direction: "recvonly" }]],
  );
  assert.equal(pc.channel.label, CONTROL_CHANNEL_LABEL);
  assert.deepEqual(pc.remoteDescription, { type: "answer", sdp: "v=0 answer" });
  assert.deepEqual(
    server.requests.map((r) => [r.event, r.payload, r.timeoutMs]),
    [
      ["join", { board_id: "b1" }, undefined],
      ["offer", { board_id: "b1", type: "offer", sdp: "v=0 offer" }, OFFER_TIMEOUT_MS],
      // found before the offer went out, sent right after it; the empty one ends gathering
      [
        "ice_candidate",
        { board_id: "b1", candidate: "candidate:1 host", sdpMid: "0", sdpMLineIndex: 0 },
        undefined,
      ],
    ],
  );
  pc.dispatchEvent(iceEvent({ candidate: "candidate:2 srflx", sdpMid: "0", sdpMLineIndex: 0 }));
  pc.dispatchEvent(iceEvent(null));
  assert.equal(server.requests.length, 4);
  assert.equal(server.requests[3].payload.candidate, "candidate:2 srflx");
  assert.deepEqual(seen, [
    ["access", { canTransmit: false, isOwner: false }],
    ["state", "negotiating"],
    ["changed"],
    ["state", "connecting"],
  ]);
  assert.equal(session.canTransmit, false);
  assert.equal(session.ptt.press(), false, "the channel is not open");
});

test("the control channel: messages to their handlers, sends only while open", async () => {
  const { seen, events } = recorder();
  const session = newSession({ signaling: fakeServer(), events });
  await session.start();
  const channel = FakePeerConnection.created[0].channel;
  seen.length = 0;
  assert.equal(session.send({ type: "freq", value: 7_074_000 }), false);
  channel.open();
  assert.equal(session.channelOpen, true);
  assert.equal(session.send({ type: "freq", value: 7_074_000 }), true);
  assert.deepEqual(channel.sent, ['{"type":"freq","value":7074000}']);
  channel.receive({ type: "floor", holder: "DL1ABC", you: false });
  FakePeerConnection.created[0].changeState("connected");
  channel.close();
  assert.deepEqual(seen, [
    ["channel", true],
    ["sent", { type: "freq", value: 7_074_000 }],
    ["message", { type: "floor", holder: "DL1ABC", you: false, tx_limit_s: null }],
    ["connection", "connected"],
    ["channel", false],
  ]);
  assert.equal(session.send({ type: "keepalive" }), false);
});

test("transmitting: the microphone goes on the offer muted, and is live only while keyed", async () => {
  const stream = fakeStream();
  const { seen, events } = recorder();
  const session = newSession({
    signaling: fakeServer({ canTransmit: true }),
    events,
    mediaDevices: { getUserMedia: async () => stream },
  });
  await session.start();
  const pc = FakePeerConnection.created[0];
  assert.deepEqual(
    pc.transceivers.map((t) => [t.trackOrKind, t.init.direction]),
    [[stream.track, "sendrecv"]],
  );
  assert.equal(stream.track.enabled, false, "muted until PTT");
  assert.deepEqual(seen.slice(0, 3), [
    ["access", { canTransmit: true, isOwner: false }],
    ["microphone", "asking"],
    ["microphone", "ready"],
  ]);
  pc.channel.open();
  assert.equal(session.ptt.press(), true);
  assert.equal(stream.track.enabled, true);
  session.ptt.release("pointerup");
  assert.equal(stream.track.enabled, false);
  assert.deepEqual(pc.channel.sent, ['{"type":"ptt","state":true}', '{"type":"ptt","state":false}']);

  seen.length = 0;
  session.ptt.press();
  session.close();
  assert.deepEqual(seen, [
    ["sent", { type: "ptt", state: true }],
    ["ptt", true, "pressed"],
    ["ptt", false, "left"], // the release closing makes is still told, before the channel goes
    ["sent", { type: "ptt", state: false }],
  ]);
  assert.equal(stream.track.stopped, true);
  assert.equal(pc.closed, true);
});

test("a late microphone: listening starts without it, it is attached muted when it comes", async () => {
  const stream = fakeStream();
  let allow;
  const { seen, events } = recorder();
  const session = newSession({
    signaling: fakeServer({ canTransmit: true }),
    events,
    mediaDevices: { getUserMedia: () => new Promise((resolve) => (allow = () => resolve(stream))) },
  });
  await session.start();
  const pc = FakePeerConnection.created[0];
  assert.deepEqual(pc.transceivers.map((t) => [t.trackOrKind, t.init.direction]), [["audio", "sendrecv"]]);
  assert.equal(session.micTrack, null);
  assert.deepEqual(seen.slice(0, 3), [
    ["access", { canTransmit: true, isOwner: false }],
    ["microphone", "asking"],
    ["microphone", "waiting"],
  ]);
  seen.length = 0;
  allow();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(pc.transceivers[0].sender.track, stream.track);
  assert.equal(session.micTrack, stream.track);
  assert.equal(stream.track.enabled, false);
  assert.deepEqual(seen, [["microphone", "ready"], ["changed"]]);

  seen.length = 0;
  stream.track.dispatchEvent(new Event("ended"));
  assert.equal(session.micTrack, null);
  assert.deepEqual(seen, [["microphone", "ended"]]);
});

test("a microphone refused: listening only, and said why", async () => {
  const { seen, events } = recorder();
  const session = newSession({
    signaling: fakeServer({ canTransmit: true }),
    events,
    mediaDevices: {
      getUserMedia: () => Promise.reject(new DOMException("Permission denied", "NotAllowedError")),
    },
  });
  await session.start();
  const pc = FakePeerConnection.created[0];
  assert.deepEqual(pc.transceivers.map((t) => t.init.direction), ["recvonly"]);
  assert.deepEqual(seen.slice(1, 3), [
    ["microphone", "asking"],
    ["microphone", "refused", "access was refused"],
  ]);
});

test("closed while joining: nothing more happens, a microphone that comes is let go", async () => {
  const server = fakeServer({ canTransmit: true, hold: ["join"] });
  const stream = fakeStream();
  const { seen, events } = recorder();
  const session = newSession({
    signaling: server,
    events,
    mediaDevices: { getUserMedia: async () => stream },
  });
  const started = session.start();
  session.close();
  server.release("join");
  await started;
  assert.deepEqual(seen, []);
  assert.equal(FakePeerConnection.created.length, 0);

  const slowMic = newSession({
    signaling: fakeServer({ canTransmit: true }),
    events,
    mediaDevices: {
      getUserMedia: () => new Promise((resolve) => setTimeout(() => resolve(stream), 5)),
    },
    micWaitMs: 1000,
  });
  const joining = slowMic.start();
  await new Promise((resolve) => setTimeout(resolve, 0)); // joined, asking for the microphone
  slowMic.close();
  await joining;
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(stream.track.stopped, true);
  assert.equal(FakePeerConnection.created.length, 0);
});

test("an answer without a session description fails the start", async () => {
  const { events } = recorder();
  const session = newSession({ signaling: fakeServer({ answer: { type: "answer" } }), events });
  await assert.rejects(session.start(), { name: "ConsoleError", code: "bad_reply" });
});

test("relay-only when the server's policy or the operator asks for it", () => {
  const joined = { ice_servers: [{ urls: ["stun:s.example"] }], ice_transport_policy: "all" };
  assert.equal(rtcConfiguration(joined, false).iceTransportPolicy, "all");
  assert.equal(rtcConfiguration(joined, true).iceTransportPolicy, "relay");
  const strict = { ...joined, ice_transport_policy: "relay" };
  assert.equal(rtcConfiguration(strict, false).iceTransportPolicy, "relay");
  assert.deepEqual(rtcConfiguration(strict, false).iceServers, [{ urls: ["stun:s.example"] }]);
  assert.equal(rtcConfiguration(strict, false).bundlePolicy, "max-bundle");
});

test("no path: the operator is told why, in words, by what ICE obtained", () => {
  assert.match(describeNoPath(false, false), /no TURN relay/);
  assert.match(describeNoPath(true, false), /TURN relay could not be reached/);
  assert.match(describeNoPath(true, true), /neither the direct path nor the TURN relay/);
  assert.match(describeNoPath(true, true), /after 10 s/);
});
