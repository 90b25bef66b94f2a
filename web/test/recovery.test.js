// Unit tests of the audio's own recovery without a browser: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import { DISCONNECTED_GRACE_MS, MediaRecovery, RETRY_DELAYS_MS } from "../src/recovery.js";

/** Timers run by hand: `advance(ms)` fires what is due, in order. */
function fakeTimers() {
  let now = 0;
  let next = 1;
  /** @type {Map<number, {at: number, fn: () => void}>} */
  const due = new Map();
  return {
    setTimeout(/** @type {() => void} */ fn, /** @type {number} */ ms) {
      const id = next++;
      due.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(/** @type {number} */ id) {
      due.delete(id);
    },
    advance(/** @type {number} */ ms) {
      const until = now + ms;
      for (let guard = 0; guard < 100; guard++) {
        const [id, first] = [...due.entries()].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
        if (first === undefined || first.at > until) break;
        due.delete(/** @type {number} */ (id));
        now = first.at;
        first.fn();
      }
      now = until;
    },
    get pending() {
      return due.size;
    },
  };
}

function recovery() {
  const timers = fakeTimers();
  const log = { rejoins: 0, notices: /** @type {string[]} */ ([]) };
  const r = new MediaRecovery(
    { rejoin: () => (log.rejoins += 1), notice: (text) => log.notices.push(text) },
    timers,
  );
  return { r, timers, log };
}

test("a short interruption heals by itself: no rejoin", () => {
  const { r, timers, log } = recovery();
  r.connection("disconnected");
  assert.match(log.notices.at(-1) ?? "", /interrupted; waiting/);
  timers.advance(DISCONNECTED_GRACE_MS - 100);
  r.connection("connected");
  timers.advance(60_000);
  assert.equal(log.rejoins, 0);
  assert.equal(timers.pending, 0);
});

test("an interruption longer than the grace rejoins, then backs off", () => {
  const { r, timers, log } = recovery();
  r.connection("disconnected");
  timers.advance(DISCONNECTED_GRACE_MS);
  assert.match(log.notices.at(-1) ?? "", /interrupted\. Reconnecting the audio in 1 s/);
  timers.advance(RETRY_DELAYS_MS[0]);
  assert.equal(log.rejoins, 1);
  r.failed("No network path to the station");
  assert.match(log.notices.at(-1) ?? "", /No network path.*in 3 s/);
  timers.advance(RETRY_DELAYS_MS[1] - 1);
  assert.equal(log.rejoins, 1);
  timers.advance(1);
  assert.equal(log.rejoins, 2);
  r.connection("connected");
  assert.equal(log.notices.at(-1), "");
  assert.equal(r.attempts, 0);
});

test("failures never schedule two attempts at once, and the pause is capped", () => {
  const { r, timers, log } = recovery();
  r.connection("failed");
  r.failed("again");
  r.connection("disconnected");
  assert.equal(timers.pending, 1);
  for (let i = 0; i < 10; i++) {
    timers.advance(60_000);
    r.failed("still no path");
  }
  assert.equal(log.rejoins, 10);
  assert.match(log.notices.at(-1) ?? "", /in 30 s/);
});

test("cancel stops every timer", () => {
  const { r, timers, log } = recovery();
  r.connection("disconnected");
  r.cancel();
  r.failed("x");
  r.cancel();
  timers.advance(120_000);
  assert.equal(log.rejoins, 0);
  assert.equal(timers.pending, 0);
});

test("a short interruption that heals clears what it said", () => {
  const { r, timers, log } = recovery();
  r.connection("disconnected");
  timers.advance(DISCONNECTED_GRACE_MS / 2);
  r.connection("connected");
  assert.equal(log.notices.at(-1), "");
});

test("a rejoin (whose leave cancels the recovery) clears its notice once connected", () => {
  const timers = fakeTimers();
  const log = { rejoins: 0, notices: /** @type {string[]} */ ([]) };
  /** @type {MediaRecovery} */
  const r = new MediaRecovery(
    {
      // as console.js does: the rejoin leaves the station first, which cancels the recovery
      rejoin: () => {
        log.rejoins += 1;
        r.cancel();
      },
      notice: (text) => log.notices.push(text),
    },
    timers,
  );
  r.connection("disconnected");
  timers.advance(DISCONNECTED_GRACE_MS + RETRY_DELAYS_MS[0]);
  assert.equal(log.rejoins, 1);
  assert.equal(log.notices.at(-1), "Reconnecting the audio…");
  r.connection("connected");
  assert.equal(log.notices.at(-1), "");
  r.connection("connected");
  assert.equal(log.notices.filter((text) => text === "").length, 1, "cleared once");
});
