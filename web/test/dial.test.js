import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CoalescingSender,
  DEFAULT_STEP,
  DialState,
  SETTLE_MS,
  TUNING_STEPS,
  WheelSteps,
  clampToRanges,
  parseStep,
  stepFrequency,
  stepLabel,
} from "../src/dial.js";

test("dial: steps are labelled and a stored step is checked", () => {
  assert.deepEqual(TUNING_STEPS.map(stepLabel), ["10 Hz", "100 Hz", "1 kHz", "10 kHz", "100 kHz"]);
  assert.equal(parseStep("100"), 100);
  assert.equal(parseStep("7"), DEFAULT_STEP);
  assert.equal(parseStep(null), DEFAULT_STEP);
});

test("dial: stepping lands on the step's grid", () => {
  assert.equal(stepFrequency(14_205_130, 1000, 1), 14_206_000);
  assert.equal(stepFrequency(14_205_130, 1000, -1), 14_205_000);
  assert.equal(stepFrequency(14_205_000, 1000, 1), 14_206_000);
  assert.equal(stepFrequency(14_205_000, 1000, -1), 14_204_000);
  assert.equal(stepFrequency(14_205_000, 100, 10), 14_206_000);
  assert.equal(stepFrequency(14_205_000, 10, 0), 14_205_000);
});

test("dial: tuning stays within the rig's ranges", () => {
  const ranges = [
    { low: 1_800_000, high: 29_700_000 },
    { low: 50_000_000, high: 54_000_000 },
  ];
  assert.deepEqual(clampToRanges(14_000_000, ranges), { hz: 14_000_000, clamped: false });
  assert.deepEqual(clampToRanges(29_701_000, ranges), { hz: 29_700_000, clamped: true });
  assert.deepEqual(clampToRanges(49_000_000, ranges), { hz: 50_000_000, clamped: true });
  assert.deepEqual(clampToRanges(0, []), { hz: 1, clamped: true });
});

test("dial: a wheel notch is one step, touchpad deltas add up, up tunes up", () => {
  const wheel = new WheelSteps();
  assert.equal(wheel.steps({ deltaY: -100, deltaMode: 0 }), 1);
  assert.equal(wheel.steps({ deltaY: 120, deltaMode: 0 }), -1);
  assert.equal(wheel.steps({ deltaY: 3, deltaMode: 1 }), -1, "lines: one step");
  assert.equal(wheel.steps({ deltaY: -20, deltaMode: 0 }), 0);
  assert.equal(wheel.steps({ deltaY: -20, deltaMode: 0 }), 0);
  assert.equal(wheel.steps({ deltaY: -20, deltaMode: 0 }), 1);
  assert.equal(wheel.steps({ deltaY: 30, deltaMode: 0 }), 0, "the other way: starts over");
  assert.equal(wheel.steps({ deltaY: 0, deltaMode: 0 }), 0);
});

/** Fake time and timers. */
function clock() {
  let now = 0;
  const timers = new Map();
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(next, { fn, at: now + ms });
      return next++;
    },
    clearTimeout: (id) => timers.delete(id),
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at);
        if (due.length === 0) break;
        const [id, timer] = due[0];
        timers.delete(id);
        now = timer.at;
        timer.fn();
      }
      now = end;
    },
  };
}

test("dial: a wheel burst sends the first value at once, then the latest every 100 ms", () => {
  const c = clock();
  const sent = [];
  const sender = new CoalescingSender({ send: (hz) => sent.push([c.now(), hz]), ...c });
  for (let i = 1; i <= 10; i += 1) {
    sender.request(14_200_000 + i * 1000);
    c.advance(15);
  }
  c.advance(300);
  assert.deepEqual(sent, [
    [0, 14_201_000],
    [100, 14_207_000],
    [200, 14_210_000],
  ]);
  sender.request(7_000_000); // after a pause: at once
  assert.deepEqual(sent.at(-1), [c.now(), 7_000_000]);
  sender.request(7_050_000); // within the interval: waits
  sender.cancel();
  c.advance(200);
  assert.equal(sent.length, 4, "a cancelled value does not go out");
});

test("dial: shows the target at once, settles to the rig's frequency", () => {
  let now = 0;
  const dial = new DialState({ now: () => now });
  dial.report(14_200_000, false);
  assert.equal(dial.shown, 14_200_000);
  dial.aim(14_201_000);
  assert.equal(dial.shown, 14_201_000, "the target, before the rig has it");
  dial.report(14_200_000, false); // a status from before the change
  assert.equal(dial.shown, 14_201_000);
  dial.report(14_201_000, true); // the rig got there but more is on the way
  assert.equal(dial.target, 14_201_000);
  dial.report(14_201_000, false);
  assert.equal(dial.target, null, "settled");
  assert.equal(dial.shown, 14_201_000);

  dial.aim(14_300_000); // the rig never gets there: its own frequency after SETTLE_MS
  now += SETTLE_MS;
  dial.report(14_201_000, false);
  assert.equal(dial.shown, 14_201_000);
  dial.aim(2_000_000_000);
  dial.drop(); // refused
  assert.equal(dial.shown, 14_201_000);
});
