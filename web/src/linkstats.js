// The link's quality as the browser measures it, once a second from `pc.getStats()`: round-trip
// time (the selected candidate pair's currentRoundTripTime), jitter (inbound audio), packet
// loss over the last interval, and the audio delay the browser adds (its jitter buffer's mean
// delay over the interval) plus half the round trip — one compact line, each figure coloured
// ok / warn / bad. Missing figures (Firefox has no RTT here) read "—", never NaN. While the
// connection is not up, or the page is getting the audio back, the line says what is going on.

export const POLL_INTERVAL_MS = 1_000;

/** [warn from, bad from] per figure. */
export const THRESHOLDS = Object.freeze({
  rttMs: Object.freeze([150, 400]),
  jitterMs: Object.freeze([30, 80]),
  lossPct: Object.freeze([1, 5]),
  delayMs: Object.freeze([300, 600]),
});

/** @typedef {"ok" | "warn" | "bad" | "none"} Level */

/**
 * What one `getStats()` holds for the link (null: not reported).
 * @typedef {{
 *   rttS: number | null,
 *   jitterS: number | null,
 *   packetsLost: number | null,
 *   packetsReceived: number | null,
 *   jitterBufferDelayS: number | null,
 *   jitterBufferEmitted: number | null,
 * }} LinkSample
 */

/**
 * The link's figures (null: unknown).
 * @typedef {{
 *   rttMs: number | null,
 *   jitterMs: number | null,
 *   lossPct: number | null,
 *   delayMs: number | null,
 * }} LinkFigures
 */

/**
 * @param {unknown} value
 * @returns {number | null}
 */
function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * Picks the link's fields out of a stats report (an RTCStatsReport, or any iterable of stats).
 * @param {Iterable<any> | {values(): Iterable<any>}} report
 * @returns {LinkSample}
 */
export function readSample(report) {
  const stats = [
    .../** @type {Iterable<any>} */ (
      typeof (/** @type {any} */ (report).values) === "function"
        ? /** @type {any} */ (report).values()
        : report
    ),
  ];
  const byId = new Map(stats.map((s) => [s.id, s]));
  /** @type {any} */
  let pair = null;
  for (const s of stats) {
    if (s.type === "transport" && typeof s.selectedCandidatePairId === "string") {
      pair = byId.get(s.selectedCandidatePairId) ?? null;
      if (pair !== null) break;
    }
  }
  // Firefox marks the pair itself; otherwise the nominated pair that works
  pair ??=
    stats.find((s) => s.type === "candidate-pair" && s.selected === true) ??
    stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded") ??
    null;
  const inbound = stats.find((s) => s.type === "inbound-rtp" && s.kind === "audio") ?? null;
  const rtt = finite(pair?.currentRoundTripTime);
  return {
    // Firefox reports 0 where it has no measurement
    rttS: rtt !== null && rtt > 0 ? rtt : null,
    jitterS: finite(inbound?.jitter),
    packetsLost: finite(inbound?.packetsLost),
    packetsReceived: finite(inbound?.packetsReceived),
    jitterBufferDelayS: finite(inbound?.jitterBufferDelay),
    jitterBufferEmitted: finite(inbound?.jitterBufferEmittedCount),
  };
}

/**
 * The figures from two samples a second apart (`previous` null: the first one; loss needs two).
 * @param {LinkSample | null} previous
 * @param {LinkSample} current
 * @returns {LinkFigures}
 */
export function linkFigures(previous, current) {
  const rttMs = current.rttS === null ? null : current.rttS * 1000;
  const jitterMs = current.jitterS === null ? null : current.jitterS * 1000;

  let lossPct = null;
  if (
    previous !== null &&
    current.packetsLost !== null &&
    current.packetsReceived !== null &&
    previous.packetsLost !== null &&
    previous.packetsReceived !== null
  ) {
    // packetsLost may go down (late packets counted after all): never below 0 %
    const lost = Math.max(0, current.packetsLost - previous.packetsLost);
    const received = Math.max(0, current.packetsReceived - previous.packetsReceived);
    if (lost + received > 0) lossPct = (100 * lost) / (lost + received);
  }

  // the jitter buffer's mean delay over the interval (since the start when nothing came out)
  let bufferMs = null;
  const delay = current.jitterBufferDelayS;
  const emitted = current.jitterBufferEmitted;
  if (delay !== null && emitted !== null && emitted > 0) {
    const dDelay = previous?.jitterBufferDelayS ?? null;
    const dEmitted = previous?.jitterBufferEmitted ?? null;
    if (dDelay !== null && dEmitted !== null && emitted - dEmitted > 0) {
      bufferMs = (1000 * (delay - dDelay)) / (emitted - dEmitted);
    } else {
      bufferMs = (1000 * delay) / emitted;
    }
    if (!Number.isFinite(bufferMs) || bufferMs < 0) bufferMs = null;
  }
  const delayMs = bufferMs === null ? null : bufferMs + (rttMs === null ? 0 : rttMs / 2);
  return { rttMs, jitterMs, lossPct, delayMs };
}

/**
 * @param {number | null} value
 * @param {readonly number[]} limits [warn from, bad from]
 * @returns {Level}
 */
export function rate(value, limits) {
  if (value === null || !Number.isFinite(value)) return "none";
  if (value >= limits[1]) return "bad";
  if (value >= limits[0]) return "warn";
  return "ok";
}

/**
 * The worst of some levels ("none" when none is known).
 * @param {Level[]} levels
 * @returns {Level}
 */
export function worst(levels) {
  for (const level of /** @type {Level[]} */ (["bad", "warn", "ok"])) {
    if (levels.includes(level)) return level;
  }
  return "none";
}

/**
 * @param {number | null} value
 * @param {string} unit
 * @param {number} [digits]
 */
function shown(value, unit, digits = 0) {
  return value === null || !Number.isFinite(value) ? "—" : `${value.toFixed(digits)} ${unit}`;
}

/**
 * The line's items, each with its words and level.
 * @param {LinkFigures} figures
 * @returns {{key: string, text: string, level: Level}[]}
 */
export function linkItems(figures) {
  const { rttMs, jitterMs, lossPct, delayMs } = figures;
  return [
    { key: "rtt", text: `RTT ${shown(rttMs, "ms")}`, level: rate(rttMs, THRESHOLDS.rttMs) },
    {
      key: "jitter",
      text: `jitter ${shown(jitterMs, "ms")}`,
      level: rate(jitterMs, THRESHOLDS.jitterMs),
    },
    {
      key: "loss",
      text: `loss ${shown(lossPct, "%", lossPct !== null && lossPct > 0 && lossPct < 10 ? 1 : 0)}`,
      level: rate(lossPct, THRESHOLDS.lossPct),
    },
    {
      key: "delay",
      text: delayMs === null ? "audio delay —" : `audio delay ~${Math.round(delayMs)} ms`,
      level: rate(delayMs, THRESHOLDS.delayMs),
    },
  ];
}

/** What the link line says for a peer connection state (others: still connecting). */
const CONNECTION_ACTIVITY = new Map([
  ["connected", ""],
  ["disconnected", "interrupted, waiting for it to come back…"],
  ["failed", "failed"],
  ["closed", "closed"],
]);

/**
 * What the line says instead of figures while the audio is not flowing ("" : show figures).
 * @param {string} connection the peer connection's state ("" before there is one)
 * @param {string} recovery what the recovery is doing ("" : nothing)
 * @returns {string}
 */
export function linkActivity(connection, recovery) {
  if (recovery !== "") return recovery;
  return CONNECTION_ACTIVITY.get(connection) ?? "connecting…";
}

/**
 * Polls a peer connection's stats once a second and renders the link line.
 */
export class LinkMonitor {
  /**
   * @param {{
   *   line: HTMLElement,
   *   figures: HTMLElement,
   *   activity: HTMLElement,
   *   document: Document,
   *   timers?: {
   *     setInterval: (fn: () => void, ms: number) => any,
   *     clearInterval: (id: any) => void,
   *   },
   * }} options
   */
  constructor({ line, figures, activity, document, timers = globalThis }) {
    this._line = line;
    this._figures = figures;
    this._activity = activity;
    this._doc = document;
    this._timers = timers;
    /** @type {RTCPeerConnection | null} */
    this._pc = null;
    /** @type {LinkSample | null} */
    this._previous = null;
    /** @type {any} */
    this._timer = null;
    this._connection = "";
    this._recovery = "";
    /** @type {LinkFigures | null} the last figures shown (for tests and the debug view) */
    this.figures = null;
    this._busy = false;
    this._render();
  }

  /**
   * Starts polling a station's peer connection.
   * @param {RTCPeerConnection} pc
   */
  start(pc) {
    this.stop();
    this._pc = pc;
    this._connection = pc.connectionState;
    this._timer = this._timers.setInterval(() => void this._poll(), POLL_INTERVAL_MS);
    this._render();
  }

  /** Stops polling (the session closed); what the recovery is doing stays shown. */
  stop() {
    if (this._timer !== null) this._timers.clearInterval(this._timer);
    this._timer = null;
    this._pc = null;
    this._previous = null;
    this.figures = null;
    this._connection = "";
    this._render();
  }

  /** A new station: forget the last one's recovery. */
  reset() {
    this._recovery = "";
    this.stop();
  }

  /** @param {string} state the peer connection's state */
  connection(state) {
    this._connection = state;
    if (state !== "connected") this._previous = null;
    this._render();
  }

  /** @param {string} text what the recovery is doing ("" : done) */
  recovering(text) {
    this._recovery = text;
    this._render();
  }

  async _poll() {
    const pc = this._pc;
    // nobody sees it while the page is hidden, and a slow getStats must not pile up
    if (pc === null || this._busy || this._doc.hidden) return;
    this._busy = true;
    try {
      const report = await pc.getStats();
      if (pc !== this._pc) return;
      const sample = readSample(report);
      this.figures = linkFigures(this._previous, sample);
      this._previous = sample;
      this._render();
    } catch {
      // the connection closed meanwhile
    } finally {
      this._busy = false;
    }
  }

  _render() {
    const activity = linkActivity(this._connection, this._recovery);
    // the activity (a live region) stays in the page, empty when there is nothing to say
    if (this._activity.textContent !== activity) this._activity.textContent = activity;
    this._figures.hidden = activity !== "";
    if (activity !== "") {
      this._line.dataset.level = this._recovery !== "" || this._connection !== "" ? "warn" : "none";
      return;
    }
    const items = linkItems(
      this.figures ?? { rttMs: null, jitterMs: null, lossPct: null, delayMs: null },
    );
    this._line.dataset.level = worst(items.map((item) => item.level));
    const spans = /** @type {HTMLElement[]} */ ([...this._figures.children]);
    if (spans.length !== items.length) {
      const fresh = items.map(() => this._doc.createElement("span"));
      // separators between the figures, read out too
      const separated = fresh.flatMap((span, i) => (i === 0 ? [span] : [" · ", span]));
      this._figures.replaceChildren(...separated);
      spans.splice(0, spans.length, ...fresh);
    }
    items.forEach((item, i) => {
      const span = spans[i];
      if (span.textContent !== item.text) span.textContent = item.text;
      span.className = `link-item ${item.level}`;
      span.dataset.key = item.key;
    });
  }
}
