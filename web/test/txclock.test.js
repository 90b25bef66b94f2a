import assert from "node:assert/strict";
import { test } from "node:test";

import { TxClock, formatDuration, lastOverLine, txClockLine } from "../src/txclock.js";

test("tx clock: durations and lines", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(7.9), "0:07");
  assert.equal(formatDuration(178), "2:58");
  assert.deepEqual(txClockLine(42_300, null), { text: "On air 0:42", remainingS: null, warn: false });
  assert.deepEqual(txClockLine(42_300, 180), {
    text: "On air 0:42 · time-out in 2:18",
    remainingS: 138,
    warn: false,
  });
  assert.equal(txClockLine(171_000, 180).warn, true);
  assert.equal(txClockLine(200_000, 180).remainingS, 0);
  assert.equal(lastOverLine(65_000), "Last transmission 1:05");
});

test("tx clock: counts while keyed, says the last transmission after", () => {
  let now = 1000;
  let tick = null;
  const element = {
    hidden: true,
    textContent: "",
    classList: { add() {}, remove() {}, toggle() {} },
  };
  const clock = new TxClock({
    element,
    now: () => now,
    setInterval: (fn) => {
      tick = fn;
      return 1;
    },
    clearInterval: () => {
      tick = null;
    },
  });
  clock.start();
  assert.equal(element.hidden, false);
  assert.equal(element.textContent, "On air 0:00");
  clock.setLimit(180);
  now += 5_000;
  tick();
  assert.equal(element.textContent, "On air 0:05 · time-out in 2:55");
  clock.stop();
  assert.equal(tick, null);
  assert.equal(element.textContent, "Last transmission 0:05");
  assert.equal(clock.limitS, null, "the next transmission waits for its own limit");
  clock.reset();
  assert.equal(element.hidden, true);
});
