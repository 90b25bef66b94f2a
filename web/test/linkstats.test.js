// Unit tests of the link line's figures from getStats: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  LinkMonitor,
  THRESHOLDS,
  linkActivity,
  linkFigures,
  linkItems,
  rate,
  readSample,
  worst,
} from "../src/linkstats.js";

/** A Chromium-like stats report (a Map, as RTCStatsReport is map-like). */
function chromiumReport({ lost = 0, received = 500, delay = 4000, emitted = 48_000 } = {}) {
  const stats = [
    { id: "T01", type: "transport", selectedCandidatePairId: "CP2" },
    { id: "CP1", type: "candidate-pair", nominated: false, state: "failed" },
    {
      id: "CP2",
      type: "candidate-pair",
      nominated: true,
      state: "succeeded",
      currentRoundTripTime: 0.042,
    },
    {
      id: "IT01",
      type: "inbound-rtp",
      kind: "audio",
      jitter: 0.0035,
      packetsLost: lost,
      packetsReceived: received,
      jitterBufferDelay: delay,
      jitterBufferEmittedCount: emitted,
    },
    { id: "OT01", type: "outbound-rtp", kind: "audio", packetsSent: 10 },
  ];
  return new Map(stats.map((s) => [s.id, s]));
}

test("Chromium's report: RTT of the selected pair, the inbound audio's counters", () => {
  assert.deepEqual(readSample(chromiumReport()), {
    rttS: 0.042,
    jitterS: 0.0035,
    packetsLost: 0,
    packetsReceived: 500,
    jitterBufferDelayS: 4000,
    jitterBufferEmitted: 48_000,
  });
});

test("Firefox's report: a `selected` pair without RTT reads null, never NaN", () => {
  const sample = readSample([
    { id: "a", type: "candidate-pair", selected: true, nominated: true, state: "succeeded" },
    { id: "b", type: "inbound-rtp", kind: "audio", jitter: 0.002, packetsLost: 1 },
  ]);
  assert.equal(sample.rttS, null);
  assert.equal(sample.packetsReceived, null);
  assert.equal(sample.jitterS, 0.002);
  // RTT 0 means "not measured" there
  const zero = readSample([
    { id: "a", type: "candidate-pair", selected: true, currentRoundTripTime: 0 },
  ]);
  assert.equal(zero.rttS, null);
  const figures = linkFigures(null, sample);
  assert.deepEqual(figures, { rttMs: null, jitterMs: 2, lossPct: null, delayMs: null });
  const text = linkItems(figures).map((item) => item.text).join(" · ");
  assert.equal(text, "RTT — · jitter 2 ms · loss — · audio delay —");
  assert.doesNotMatch(text, /NaN|undefined|null/);
});

test("an empty report: every figure unknown", () => {
  const figures = linkFigures(null, readSample([]));
  assert.deepEqual(figures, { rttMs: null, jitterMs: null, lossPct: null, delayMs: null });
  assert.ok(linkItems(figures).every((item) => item.level === "none"));
});

test("loss is over the last interval, from the counters' differences", () => {
  const before = readSample(chromiumReport({ lost: 10, received: 1000 }));
  const after = readSample(chromiumReport({ lost: 12, received: 1048 }));
  assert.equal(linkFigures(before, after).lossPct, 4);
  // the first sample has no interval
  assert.equal(linkFigures(null, after).lossPct, null);
  // no packets at all in the interval: unknown, not 0/0
  assert.equal(linkFigures(after, after).lossPct, null);
  // packetsLost going down (late packets) is no negative loss
  const fewer = readSample(chromiumReport({ lost: 8, received: 1100 }));
  assert.equal(linkFigures(after, fewer).lossPct, 0);
});

test("audio delay: the jitter buffer's mean over the interval plus half the RTT", () => {
  const before = readSample(chromiumReport({ delay: 4000, emitted: 48_000 }));
  const after = readSample(chromiumReport({ delay: 7000, emitted: 96_000 }));
  // 3000 sample-seconds over 48000 samples: 62.5 ms each; + 21 ms
  assert.ok(Math.abs(/** @type {number} */ (linkFigures(before, after).delayMs) - 83.5) < 1e-9);
  // first sample: the mean since the start (4000 / 48000 = 83.3 ms)
  const first = /** @type {number} */ (linkFigures(null, before).delayMs);
  assert.ok(Math.abs(first - (83.333 + 21)) < 0.01);
  // nothing emitted yet: unknown
  const none = readSample(chromiumReport({ delay: 0, emitted: 0 }));
  assert.equal(linkFigures(null, none).delayMs, null);
  // nothing emitted during the interval: the mean since the start
  const idle = /** @type {number} */ (linkFigures(before, before).delayMs);
  assert.ok(Math.abs(idle - 104.333) < 0.01);
});

test("each figure is rated ok / warn / bad by its thresholds", () => {
  assert.equal(rate(10, THRESHOLDS.rttMs), "ok");
  assert.equal(rate(150, THRESHOLDS.rttMs), "warn");
  assert.equal(rate(400, THRESHOLDS.rttMs), "bad");
  assert.equal(rate(0.5, THRESHOLDS.lossPct), "ok");
  assert.equal(rate(2, THRESHOLDS.lossPct), "warn");
  assert.equal(rate(12, THRESHOLDS.lossPct), "bad");
  assert.equal(rate(null, THRESHOLDS.lossPct), "none");
  assert.equal(rate(NaN, THRESHOLDS.lossPct), "none");
  assert.equal(worst(["ok", "none", "warn"]), "warn");
  assert.equal(worst(["ok", "bad", "warn"]), "bad");
  assert.equal(worst(["none", "ok"]), "ok");
  assert.equal(worst(["none"]), "none");
  assert.equal(worst([]), "none");
});

test("the line's words", () => {
  const items = linkItems({ rttMs: 42.4, jitterMs: 3.5, lossPct: 2.04, delayMs: 83.6 });
  assert.deepEqual(
    items.map((item) => [item.key, item.text, item.level]),
    [
      ["rtt", "RTT 42 ms", "ok"],
      ["jitter", "jitter 4 ms", "ok"],
      ["loss", "loss 2.0 %", "warn"],
      ["delay", "audio delay ~84 ms", "ok"],
    ],
  );
  assert.equal(linkItems({ rttMs: 1, jitterMs: 1, lossPct: 0, delayMs: 1 })[2].text, "loss 0 %");
  assert.equal(linkItems({ rttMs: 1, jitterMs: 1, lossPct: 25, delayMs: 1 })[2].text, "loss 25 %");
});

test("while the audio is not flowing the line says what is going on", () => {
  assert.equal(linkActivity("connected", ""), "");
  assert.equal(linkActivity("", ""), "connecting…");
  assert.equal(linkActivity("connecting", ""), "connecting…");
  assert.match(linkActivity("disconnected", ""), /interrupted/);
  assert.equal(linkActivity("failed", ""), "failed");
  // the recovery's own words win, whatever the connection
  const retry = "The audio connection failed. Reconnecting the audio in 3 s…";
  assert.equal(linkActivity("failed", retry), retry);
  assert.equal(linkActivity("connected", "Reconnecting the audio…"), "Reconnecting the audio…");
});

/** Just enough of an element for LinkMonitor. */
function fakeElement() {
  return {
    textContent: "",
    hidden: false,
    className: "",
    /** @type {Record<string, string>} */
    dataset: {},
    /** @type {any[]} */
    children: [],
    /** @param {...any} nodes */
    replaceChildren(...nodes) {
      this.children = nodes.filter((node) => typeof node !== "string"); // elements only
    },
  };
}

function monitorFixture() {
  const line = fakeElement();
  const figures = fakeElement();
  const activity = fakeElement();
  /** @type {(() => void) | null} */
  let tick = null;
  const doc = { hidden: false, createElement: () => fakeElement() };
  const monitor = new LinkMonitor({
    line: /** @type {any} */ (line),
    figures: /** @type {any} */ (figures),
    activity: /** @type {any} */ (activity),
    document: /** @type {any} */ (doc),
    timers: {
      setInterval: (fn) => {
        tick = fn;
        return 1;
      },
      clearInterval: () => {
        tick = null;
      },
    },
  });
  let report = chromiumReport({ lost: 0, received: 100 });
  const pc = {
    connectionState: "connected",
    getStats: async () => report,
  };
  return {
    line,
    figures,
    activity,
    doc,
    monitor,
    pc: /** @type {any} */ (pc),
    /** @param {Map<string, any>} next */
    setReport(next) {
      report = next;
    },
    async poll() {
      tick?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
    get polling() {
      return tick !== null;
    },
  };
}

test("the monitor shows figures once a second, and what the recovery does meanwhile", async () => {
  const f = monitorFixture();
  assert.equal(f.activity.textContent, "connecting…");
  assert.equal(f.figures.hidden, true);

  f.monitor.start(f.pc);
  await f.poll();
  assert.equal(f.activity.textContent, "");
  assert.deepEqual(
    f.figures.children.map((span) => span.textContent),
    ["RTT 42 ms", "jitter 4 ms", "loss —", "audio delay ~104 ms"],
  );
  f.setReport(chromiumReport({ lost: 1, received: 149 }));
  await f.poll();
  assert.equal(f.figures.children[2].textContent, "loss 2.0 %");
  assert.equal(f.figures.children[2].className, "link-item warn");
  assert.equal(f.line.dataset.level, "warn");

  // the connection drops; the recovery takes over and the session closes
  f.monitor.connection("disconnected");
  assert.match(f.activity.textContent, /interrupted/);
  assert.equal(f.figures.hidden, true);
  f.monitor.recovering("The audio connection was interrupted. Reconnecting the audio in 1 s…");
  f.monitor.stop();
  assert.equal(f.polling, false);
  assert.match(f.activity.textContent, /Reconnecting the audio in 1 s/);
  f.monitor.recovering("Reconnecting the audio…");
  // the new session connects: the recovery is done
  f.monitor.start(f.pc);
  assert.equal(f.activity.textContent, "Reconnecting the audio…");
  f.monitor.connection("connected");
  f.monitor.recovering("");
  await f.poll();
  assert.equal(f.activity.textContent, "");
  assert.equal(f.figures.hidden, false);
});

test("no polling while the page is hidden; a new station starts afresh", async () => {
  const f = monitorFixture();
  f.monitor.start(f.pc);
  f.doc.hidden = true;
  await f.poll();
  assert.equal(f.monitor.figures, null);
  f.doc.hidden = false;
  await f.poll();
  assert.notEqual(f.monitor.figures, null);
  f.monitor.recovering("Reconnecting the audio…");
  f.monitor.reset();
  assert.equal(f.activity.textContent, "connecting…");
  assert.equal(f.monitor.figures, null);
});
