// Unit tests of signaling without a server: acks, their errors, the connection's events.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConsoleError, errorFields } from "../src/errors.js";
import { ERROR_CODES, OPERATOR_NAMESPACE } from "../src/protocol.js";
import {
  SignalingClient,
  UNAVAILABLE_RETRY_MS,
  ackReply,
  parseErrorEvent,
  parsePresence,
  parseShutdown,
  refusalMessage,
  requestAck,
} from "../src/signaling.js";

/**
 * @param {() => unknown} fn
 * @param {string} code
 * @param {RegExp} [message]
 */
function throwsConsoleError(fn, code, message = /./) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof ConsoleError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test("an ok ack is its reply; a refusal is its code and message", () => {
  assert.deepEqual(ackReply("join", { ok: true, board: { id: "b" } }), {
    ok: true,
    board: { id: "b" },
  });
  throwsConsoleError(
    () => ackReply("join", { ok: false, error: { code: "forbidden", message: "Not yours." } }),
    "forbidden",
    /^Not yours\.$/,
  );
});

test("a malformed ack is `bad_reply`, naming the event", () => {
  for (const reply of [null, undefined, "ok", 1, {}, { ok: "true" }, { ok: false }, [true]]) {
    throwsConsoleError(() => ackReply("offer", reply), "bad_reply", /“offer”/);
  }
  throwsConsoleError(
    () => ackReply("offer", { ok: false, error: { code: 7, message: "x" } }),
    "bad_reply",
    /^x$/,
  );
});

/** A socket whose acks come from `answer(event, payload)` (a promise), recording timeouts. */
function fakeSocket(answer) {
  const timeouts = [];
  return {
    timeouts,
    timeout(ms) {
      timeouts.push(ms);
      return { emitWithAck: (event, payload) => answer(event, payload) };
    },
  };
}

test("requests wait for the ack within their time and map its errors", async () => {
  const socket = fakeSocket(async (event, payload) => ({ ok: true, echo: [event, payload] }));
  assert.deepEqual(await requestAck(socket, "join", { board_id: "b" }, 10_000), {
    ok: true,
    echo: ["join", { board_id: "b" }],
  });
  assert.deepEqual(socket.timeouts, [10_000]);

  const silent = fakeSocket(() => Promise.reject(new Error("operation has timed out")));
  await assert.rejects(requestAck(silent, "offer", {}, 20_000), (err) => {
    assert.ok(err instanceof ConsoleError);
    assert.equal(err.code, "timeout");
    assert.equal(err.message, "The server did not answer “offer” within 20 s.");
    return true;
  });

  const refusing = fakeSocket(async () => ({
    ok: false,
    error: { code: "station_offline", message: "The station is offline." },
  }));
  await assert.rejects(requestAck(refusing, "offer", {}, 1000), { code: "station_offline" });
});

test("presence, error events and refusals are read strictly", () => {
  assert.deepEqual(parsePresence({ board_id: "b", online: true }), { boardId: "b", online: true });
  assert.equal(parsePresence({ board_id: "b", online: "yes" }), null);
  assert.equal(parsePresence({ online: true }), null);
  assert.equal(parsePresence(null), null);
  assert.deepEqual(parseErrorEvent({ code: "unknown_event", message: "No." }, "fallback"), {
    code: "unknown_event",
    message: "No.",
    boardId: null,
  });
  assert.deepEqual(parseErrorEvent("junk", "fallback"), {
    code: "error",
    message: "fallback",
    boardId: null,
  });
  assert.deepEqual(
    parseErrorEvent({ code: "media_failed", message: "No path.", board_id: "b1" }, "x"),
    { code: "media_failed", message: "No path.", boardId: "b1" },
  );
  const refused = Object.assign(new Error("xhr"), {
    data: { code: "unauthorized", message: "The token has expired." },
  });
  assert.equal(refusalMessage(refused), "The token has expired.");
  assert.equal(refusalMessage(new Error("websocket error")), "websocket error");
});

test("errors show their code, or `client` for anything else", () => {
  assert.deepEqual(errorFields(new ConsoleError("not_found", "No such board.")), {
    code: "not_found",
    message: "No such board.",
  });
  assert.deepEqual(errorFields(new TypeError("boom")), { code: "client", message: "boom" });
  assert.deepEqual(errorFields("odd"), { code: "client", message: "odd" });
});

/** A Socket.IO client stand-in: records how it was opened, lets the test fire its events. */
function fakeIo() {
  const opened = [];
  const connect = (namespace, options) => {
    const handlers = new Map();
    const socket = {
      active: true,
      connected: false,
      disconnects: 0,
      on(event, handler) {
        handlers.set(event, handler);
        return socket;
      },
      fire(event, ...args) {
        handlers.get(event)?.(...args);
      },
      connects: 0,
      connect() {
        socket.connects += 1;
      },
      disconnect() {
        socket.disconnects += 1;
        socket.connected = false;
        socket.fire("disconnect", "io client disconnect");
      },
      timeout: () => ({ emitWithAck: async () => ({ ok: true }) }),
    };
    opened.push({ namespace, options, socket });
    return socket;
  };
  return { connect, opened };
}

function recordingEvents() {
  const seen = [];
  const events = {};
  const names = ["connected", "reconnecting", "refused", "lost", "ended", "presence", "error"];
  for (const name of [...names, "shutdown"]) {
    events[name] = (...args) => seen.push(args.length > 0 ? [name, ...args] : [name]);
  }
  return { seen, events };
}

test("the client connects to /operator with its token over WebSocket only", () => {
  const { connect, opened } = fakeIo();
  const { events } = recordingEvents();
  new SignalingClient("jwt", events, connect);
  assert.equal(opened.length, 1);
  assert.equal(opened[0].namespace, OPERATOR_NAMESPACE);
  assert.deepEqual(opened[0].options, { auth: { token: "jwt" }, transports: ["websocket"] });
});

test("the client reports its connection's life, and nothing once closed", async () => {
  const { connect, opened } = fakeIo();
  const { seen, events } = recordingEvents();
  const client = new SignalingClient("jwt", events, connect);
  const socket = opened[0].socket;
  socket.connected = true;
  socket.fire("connect");
  assert.equal(client.connected, true);
  socket.fire("presence", { board_id: "b", online: false });
  socket.fire("presence", { board_id: 5 }); // malformed: dropped
  socket.fire("error", { code: "unknown_event", message: "No such event." });
  socket.fire("disconnect", "transport close");
  socket.fire("connect_error", new Error("websocket error"));
  socket.active = false;
  socket.fire("connect_error", Object.assign(new Error("x"), { data: { message: "Expired." } }));
  socket.fire("disconnect", "io server disconnect");
  assert.deepEqual(seen, [
    ["connected"],
    ["presence", { boardId: "b", online: false }],
    ["error", { code: "unknown_event", message: "No such event.", boardId: null }],
    ["lost"],
    ["reconnecting"],
    ["reconnecting"],
    ["refused", "Expired."],
    ["lost"],
    ["ended"],
  ]);

  seen.length = 0;
  client.close();
  assert.equal(socket.disconnects, 1);
  socket.fire("disconnect", "transport close");
  socket.fire("connect_error", new Error("x"));
  socket.fire("presence", { board_id: "b", online: true });
  socket.fire("error", { code: "x", message: "y" });
  socket.fire("connect");
  assert.deepEqual(seen, [], "a closed client is silent");
  assert.equal(client.connected, false);
  await assert.rejects(client.request("list_boards", {}), { code: "not_connected" });
});

test("a server whose database is down is tried again with growing waits, not signed out", () => {
  const { connect, opened } = fakeIo();
  const { seen, events } = recordingEvents();
  const delays = [];
  const timers = { setTimeout: (fn, ms) => delays.push({ fn, ms }) };
  new SignalingClient("jwt", events, connect, timers);
  const socket = opened[0].socket;
  socket.active = false; // refused: socket.io-client does not retry by itself
  const unavailable = Object.assign(new Error("x"), {
    data: { code: ERROR_CODES.UNAVAILABLE, message: "the server cannot reach its database" },
  });
  for (let i = 0; i < UNAVAILABLE_RETRY_MS.length + 1; i += 1) {
    socket.fire("connect_error", unavailable);
    delays[i].fn();
  }
  assert.deepEqual(
    delays.map((d) => d.ms),
    [...UNAVAILABLE_RETRY_MS, UNAVAILABLE_RETRY_MS.at(-1)],
  );
  assert.equal(socket.connects, UNAVAILABLE_RETRY_MS.length + 1);
  assert.ok(seen.every(([name]) => name === "reconnecting"), "signed out for an outage");
  // connected again: the next outage starts from the first wait
  socket.fire("connect");
  socket.fire("connect_error", unavailable);
  assert.equal(delays.at(-1).ms, UNAVAILABLE_RETRY_MS[0]);
  // a refusal of the sign-in itself is still final
  const expired = { data: { code: ERROR_CODES.UNAUTHORIZED, message: "Expired." } };
  socket.fire("connect_error", Object.assign(new Error("x"), expired));
  assert.deepEqual(seen.at(-1), ["refused", "Expired."]);
});

test("a server that announces its shutdown is reconnected to after its delay, not signed out", () => {
  const { connect, opened } = fakeIo();
  const { seen, events } = recordingEvents();
  const delays = [];
  const timers = { setTimeout: (fn, ms) => delays.push({ fn, ms }) };
  new SignalingClient("jwt", events, connect, timers);
  const socket = opened[0].socket;
  socket.fire("shutdown", { message: "the server is stopping", retry_after_s: 5 });
  socket.fire("disconnect", "io server disconnect");
  assert.deepEqual(seen, [
    ["shutdown", { message: "the server is stopping", retryAfterS: 5 }],
    ["lost"],
    ["reconnecting"],
  ]);
  assert.deepEqual(
    delays.map((d) => d.ms),
    [5000],
  );
  assert.equal(socket.connects, 0);
  delays[0].fn();
  assert.equal(socket.connects, 1);
  // without a notice, a server disconnect still ends the session
  socket.fire("disconnect", "io server disconnect");
  assert.deepEqual(seen.at(-1), ["ended"]);
});

test("a malformed shutdown notice is ignored; a long delay is capped", () => {
  assert.equal(parseShutdown({ message: "x" }), null);
  assert.equal(parseShutdown({ message: 1, retry_after_s: 5 }), null);
  assert.equal(parseShutdown({ message: "x", retry_after_s: -1 }), null);
  assert.deepEqual(parseShutdown({ message: "x", retry_after_s: 3600 }), {
    message: "x",
    retryAfterS: 60,
  });
});

test("with a token function, every connection attempt asks it for a fresh token", async () => {
  const { connect, opened } = fakeIo();
  const { seen, events } = recordingEvents();
  const handed = ["t1", "t2"];
  const client = new SignalingClient(async () => handed.shift(), events, connect);
  const { auth, transports } = opened[0].options;
  assert.equal(typeof auth, "function");
  assert.deepEqual(transports, ["websocket"]);
  const sent = [];
  auth((data) => sent.push(data)); // the first connection
  await new Promise((resolve) => setImmediate(resolve));
  auth((data) => sent.push(data)); // a reconnection
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, [{ token: "t1" }, { token: "t2" }]);
  assert.deepEqual(seen, []);
  client.close();
  auth((data) => sent.push(data)); // closed: nothing is sent
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent.length, 2);
});

test("when no fresh token can be had, the connection is refused, saying why", async () => {
  const { connect, opened } = fakeIo();
  const { seen, events } = recordingEvents();
  new SignalingClient(
    async () => {
      throw new Error("the refresh failed (HTTP 502)");
    },
    events,
    connect,
  );
  const sent = [];
  opened[0].options.auth((data) => sent.push(data));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, []);
  assert.deepEqual(seen, [
    ["refused", "cannot renew the sign-in: the refresh failed (HTTP 502)"],
  ]);
});
