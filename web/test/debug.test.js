// Unit tests of the read-only debug view (`window.radiocore`): `npm test` (node:test).

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

import { createDebugView, exposeDebugView, snapshot } from "../src/debug.js";

/** State as the console keeps it, and a view over it. */
function harness() {
  const live = { connection: new EventTarget() };
  const state = {
    count: 1,
    status: { freq: 14_205_000, nested: { ptt: false } },
    log: [{ keyed: true, why: "pressed" }],
    name: null,
  };
  const view = createDebugView({
    count: () => state.count,
    status: () => state.status,
    log: () => state.log,
    name: () => state.name,
    connection: () => live.connection,
  });
  return { state, view, live };
}

test("the view reads the live state", () => {
  const { state, view, live } = harness();
  assert.equal(view.count, 1);
  state.count = 2;
  state.name = "DL1ABC";
  assert.equal(view.count, 2);
  assert.equal(view.name, "DL1ABC");
  assert.deepEqual(view.status, { freq: 14_205_000, nested: { ptt: false } });
  assert.deepEqual(view.log, [{ keyed: true, why: "pressed" }]);
  assert.equal(view.connection, live.connection, "live objects (the peer connection) as they are");
  assert.deepEqual(Object.keys(view), ["count", "status", "log", "name", "connection"]);
  assert.deepEqual(JSON.parse(JSON.stringify(view)).count, 2);
});

test("nothing can be written through the view (module code is strict: writes throw)", () => {
  const { state, view } = harness();
  assert.ok(Object.isFrozen(view));
  assert.throws(() => {
    view.count = 5;
  }, TypeError);
  assert.throws(() => {
    view.extra = 1;
  }, TypeError);
  assert.throws(() => {
    delete view.count;
  }, TypeError);
  assert.throws(() => Object.defineProperty(view, "count", { value: 5 }), TypeError);
  assert.throws(() => {
    view.status.freq = 7_074_000;
  }, TypeError);
  assert.throws(() => {
    view.status.nested.ptt = true;
  }, TypeError);
  assert.throws(() => view.log.push({ keyed: false, why: "forged" }), TypeError);
  assert.throws(() => {
    view.log[0].why = "forged";
  }, TypeError);
  assert.equal(state.count, 1);
  assert.deepEqual(state.status, { freq: 14_205_000, nested: { ptt: false } });
  assert.deepEqual(state.log, [{ keyed: true, why: "pressed" }]);
});

test("sloppy code cannot write through it either", () => {
  const { state, view } = harness();
  // Function bodies are sloppy unless they say otherwise: the write is silently ignored.
  const sloppyWrite = new Function("view", "view.count = 5; view.status.freq = 1; return view.count;");
  assert.equal(sloppyWrite(view), 1);
  assert.equal(state.count, 1);
  assert.equal(state.status.freq, 14_205_000);
});

test("snapshots copy plain data and leave the console's own objects unfrozen", () => {
  const data = { a: [1, { b: 2 }] };
  const copy = snapshot(data);
  assert.deepEqual(copy, data);
  assert.notEqual(copy, data);
  assert.ok(Object.isFrozen(copy) && Object.isFrozen(copy.a) && Object.isFrozen(copy.a[1]));
  assert.ok(!Object.isFrozen(data) && !Object.isFrozen(data.a));
  assert.equal(snapshot(null), null);
  assert.equal(snapshot("x"), "x");
});

test("window.radiocore itself cannot be replaced", () => {
  const win = {};
  const view = createDebugView({ state: () => "ready" });
  exposeDebugView(win, view);
  assert.equal(win.radiocore, view);
  assert.throws(() => {
    win.radiocore = {};
  }, TypeError);
  assert.throws(() => {
    delete win.radiocore;
  }, TypeError);
  assert.equal(win.radiocore.state, "ready");
});

test("no program logic reads window.radiocore back or writes it but debug.js", () => {
  const dir = new URL("../src/", import.meta.url);
  const modules = readdirSync(dir).filter((name) => name.endsWith(".js"));
  assert.ok(modules.includes("console.js") && modules.includes("debug.js"), String(modules));
  for (const name of modules) {
    const text = readFileSync(new URL(name, dir), "utf8");
    assert.doesNotMatch(text, /\bradiocore\s*(?:\?\.|\.|\[)/, `${name} reads radiocore`);
    assert.doesNotMatch(text, /\bradiocore\s*=[^=]/, `${name} assigns radiocore`);
    if (name !== "debug.js") {
      assert.doesNotMatch(text, /["'`]radiocore["'`]/, `${name} names radiocore`);
    }
  }
});
