import { test } from "node:test";
import assert from "node:assert/strict";

import { FrameLoop } from "../src/frameloop.js";

/** A window whose animation frames the test runs by hand. */
function fakeWindow() {
  /** @type {Map<number, (now: number) => void>} */
  const frames = new Map();
  /** @type {(() => void)[]} */
  const visibility = [];
  let next = 1;
  const win = {
    document: {
      hidden: false,
      addEventListener: (/** @type {string} */ type, /** @type {() => void} */ fn) => {
        if (type === "visibilitychange") visibility.push(fn);
      },
    },
    requestAnimationFrame: (/** @type {(now: number) => void} */ fn) => {
      frames.set(next, fn);
      return next++;
    },
    cancelAnimationFrame: (/** @type {number} */ id) => frames.delete(id),
  };
  return {
    win,
    pending: () => frames.size,
    /** @param {number} now */
    run(now) {
      const due = [...frames.values()];
      frames.clear();
      for (const fn of due) fn(now);
    },
    setHidden(/** @type {boolean} */ hidden) {
      win.document.hidden = hidden;
      for (const fn of visibility) fn();
    },
  };
}

test("draws at most every interval, with the time since the last drawn frame", () => {
  const fake = fakeWindow();
  /** @type {[number, number][]} */
  const drawn = [];
  const loop = new FrameLoop({
    window: /** @type {any} */ (fake.win),
    intervalMs: 50,
    wanted: () => true,
    draw: (now, elapsed) => drawn.push([now, elapsed]),
  });
  loop.update();
  for (const now of [1000, 1016, 1033, 1050, 1066, 1100]) fake.run(now);
  assert.deepEqual(drawn, [
    [1000, 0],
    [1050, 50],
    [1100, 50],
  ]);
  assert.equal(fake.pending(), 1, "one frame at a time");
});

test("runs only while wanted and visible; a restart draws at once as a first frame", () => {
  const fake = fakeWindow();
  let wanted = false;
  /** @type {number[]} */
  const elapsed = [];
  const loop = new FrameLoop({
    window: /** @type {any} */ (fake.win),
    intervalMs: 50,
    wanted: () => wanted,
    draw: (_now, ms) => elapsed.push(ms),
  });
  loop.update();
  assert.equal(fake.pending(), 0, "nothing to draw: no frame asked for");
  wanted = true;
  loop.update();
  fake.run(1000);
  fake.setHidden(true);
  assert.equal(fake.pending(), 0, "a hidden page costs nothing");
  fake.setHidden(false);
  fake.run(1010);
  assert.deepEqual(elapsed, [0], "within the interval: not drawn");
  loop.restart();
  fake.run(1020);
  assert.deepEqual(elapsed, [0, 0]);
  wanted = false;
  fake.run(1100);
  assert.equal(fake.pending(), 0, "no longer wanted: the loop stops");
  assert.deepEqual(elapsed, [0, 0]);
});
