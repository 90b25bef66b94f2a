// The frequency dial: the large frequency display, tuned by the mouse wheel over it and by the
// arrow keys when it has focus (Up/Down one step, PageUp/PageDown ten), in a selectable step
// (remembered), and by the band buttons. Wheel bursts are coalesced (at most one `freq` every
// `SEND_INTERVAL_MS`, always the latest value); the display shows the target at once and
// settles to the rig's frequency from its `status`. The arithmetic is pure (node:test).

import { bandOf, bandTarget, offeredBands } from "./bands.js";
import { formatFrequency } from "./format.js";
import { MAX_FREQUENCY_HZ, MIN_FREQUENCY_HZ } from "./protocol.js";
import { setText } from "./view.js";

/** The steps offered, in Hz. */
export const TUNING_STEPS = Object.freeze([10, 100, 1000, 10_000, 100_000]);
export const DEFAULT_STEP = 1000;
/** PageUp/PageDown move this many steps. */
export const PAGE_STEPS = 10;
/** At most one `freq` this often while the dial turns: the latest value goes out. */
export const SEND_INTERVAL_MS = 100;
/** A target the rig has not reported this long after it went out gives way to the rig's. */
export const SETTLE_MS = 1500;
/** Pixels of wheel movement that make one step (a mouse notch is 50-120 px). */
export const WHEEL_PIXELS_PER_STEP = 50;
/** Where the chosen step is remembered. */
export const STEP_STORAGE_KEY = "console.tuningStep";

/**
 * @typedef {{low: number, high: number}} FrequencyRange
 */

/**
 * "10 Hz", "100 Hz", "1 kHz", "10 kHz", "100 kHz".
 * @param {number} step in Hz
 */
export function stepLabel(step) {
  if (step >= 1_000_000 && step % 1_000_000 === 0) return `${step / 1_000_000} MHz`;
  if (step >= 1000 && step % 1000 === 0) return `${step / 1000} kHz`;
  return `${step} Hz`;
}

/**
 * A stored step, if it is one of the offered ones; else the default.
 * @param {string | null | undefined} stored
 */
export function parseStep(stored) {
  const step = Number(stored);
  return TUNING_STEPS.includes(step) ? step : DEFAULT_STEP;
}

/**
 * `count` steps up (positive) or down (negative) from `hz`, on the step's grid, as a rig's
 * dial does: 14205130 one 1 kHz step up is 14206000, one down is 14205000.
 * @param {number} hz
 * @param {number} step
 * @param {number} count
 */
export function stepFrequency(hz, step, count) {
  if (count === 0) return hz;
  const base = count > 0 ? Math.floor(hz / step) * step : Math.ceil(hz / step) * step;
  return base + count * step;
}

/**
 * `hz` kept within what may be tuned: the station's ranges (nearest edge when outside all of
 * them) and the protocol's bounds.
 * @param {number} hz
 * @param {ReadonlyArray<FrequencyRange>} ranges
 * @returns {{hz: number, clamped: boolean}}
 */
export function clampToRanges(hz, ranges) {
  let best = Math.min(MAX_FREQUENCY_HZ, Math.max(MIN_FREQUENCY_HZ, hz));
  if (ranges.length > 0 && !ranges.some((r) => best >= r.low && best <= r.high)) {
    let distance = Infinity;
    let nearest = best;
    for (const r of ranges) {
      const edge = best < r.low ? r.low : r.high;
      if (Math.abs(edge - best) < distance) {
        distance = Math.abs(edge - best);
        nearest = edge;
      }
    }
    best = nearest;
  }
  return { hz: best, clamped: best !== hz };
}

/**
 * Turns wheel events into whole steps: a notch (or a line/page event) is one step; the small
 * deltas of a touchpad add up until they make one. Wheel up (negative deltaY) tunes up.
 */
export class WheelSteps {
  constructor() {
    this._pixels = 0;
  }

  /**
   * @param {{deltaY: number, deltaMode: number}} event
   * @returns {number} steps to move (may be 0)
   */
  steps(event) {
    if (event.deltaY === 0) return 0;
    const up = event.deltaY < 0 ? 1 : -1;
    if (event.deltaMode !== 0 || Math.abs(event.deltaY) >= WHEEL_PIXELS_PER_STEP) {
      this._pixels = 0;
      return up;
    }
    if (Math.sign(this._pixels) === Math.sign(event.deltaY) || this._pixels === 0) {
      this._pixels += event.deltaY;
    } else {
      this._pixels = event.deltaY; // turned the other way: start over
    }
    const whole = Math.trunc(Math.abs(this._pixels) / WHEEL_PIXELS_PER_STEP);
    if (whole === 0) return 0;
    this._pixels -= Math.sign(this._pixels) * whole * WHEEL_PIXELS_PER_STEP;
    return up * whole;
  }
}

/**
 * Sends the latest requested frequency at most once every `intervalMs`: the first of a burst
 * at once, the last one when the interval is over, none in between.
 */
export class CoalescingSender {
  /**
   * @param {{
   *   send: (hz: number) => void,
   *   intervalMs?: number,
   *   now?: () => number,
   *   setTimeout?: (fn: () => void, ms: number) => any,
   *   clearTimeout?: (id: any) => void,
   * }} options
   */
  constructor({
    send,
    intervalMs = SEND_INTERVAL_MS,
    now = () => performance.now(),
    setTimeout = globalThis.setTimeout.bind(globalThis),
    clearTimeout = globalThis.clearTimeout.bind(globalThis),
  }) {
    this._send = send;
    this._interval = intervalMs;
    this._now = now;
    this._setTimeout = setTimeout;
    this._clearTimeout = clearTimeout;
    /** @type {number | null} waiting to go out */
    this.pending = null;
    this._lastSent = -Infinity;
    /** @type {any} */
    this._timer = null;
  }

  /** @param {number} hz */
  request(hz) {
    this.pending = hz;
    if (this._timer !== null) return;
    const wait = this._lastSent + this._interval - this._now();
    if (wait <= 0) this.flush();
    else this._timer = this._setTimeout(() => this.flush(), wait);
  }

  flush() {
    this._timer = null;
    const hz = this.pending;
    if (hz === null) return;
    this.pending = null;
    this._lastSent = this._now();
    this._send(hz);
  }

  /** Forgets a value not sent yet. */
  cancel() {
    if (this._timer !== null) this._clearTimeout(this._timer);
    this._timer = null;
    this.pending = null;
  }
}

/**
 * What the display shows: the operator's target from the moment it is asked for, until the
 * rig reports it (or `SETTLE_MS` after it went out without the rig getting there, or a
 * refusal), then the rig's frequency.
 */
export class DialState {
  /** @param {{now?: () => number, settleMs?: number}} [options] */
  constructor({ now = () => performance.now(), settleMs = SETTLE_MS } = {}) {
    this._now = now;
    this._settleMs = settleMs;
    /** @type {number | null} the rig's last reported frequency */
    this.rig = null;
    /** @type {number | null} where the operator is tuning to */
    this.target = null;
    this._targetAt = 0;
  }

  /** @returns {number | null} */
  get shown() {
    return this.target ?? this.rig;
  }

  /** @param {number} hz the operator asked for it (it goes out now or soon) */
  aim(hz) {
    this.target = hz;
    this._targetAt = this._now();
  }

  /**
   * The rig's frequency from a status.
   * @param {number} hz
   * @param {boolean} sending a value is still waiting to go out
   */
  report(hz, sending) {
    this.rig = hz;
    if (this.target === null || sending) return;
    if (hz === this.target || this._now() - this._targetAt >= this._settleMs) this.target = null;
  }

  /** The station refused the target (or it was never sent): show the rig's again. */
  drop() {
    this.target = null;
  }
}

/**
 * @typedef {{
 *   display: HTMLElement,
 *   hint: HTMLElement,
 *   note: HTMLElement,
 *   controls: HTMLFieldSetElement,
 *   step: HTMLSelectElement,
 *   bands: HTMLElement,
 * }} DialElements
 */

/**
 * @param {Document} doc
 * @returns {DialElements}
 */
export function findDialElements(doc) {
  const get = (/** @type {string} */ id) => {
    const element = doc.getElementById(id);
    if (element === null) throw new Error(`index.html lacks #${id}`);
    return element;
  };
  return {
    display: get("freq"),
    hint: get("dial-hint"),
    note: get("dial-note"),
    controls: /** @type {HTMLFieldSetElement} */ (get("vfo-controls")),
    step: /** @type {HTMLSelectElement} */ (get("tuning-step")),
    bands: get("bands"),
  };
}

/** The dial on the page: display, wheel, keys, step and band buttons. */
export class DialControl {
  /**
   * @param {{
   *   elements: DialElements,
   *   send: (hz: number) => void,
   *   storage?: Storage | null,
   * }} options
   */
  constructor({ elements, send, storage = null }) {
    this._els = elements;
    this._storage = storage;
    this._state = new DialState();
    this._sender = new CoalescingSender({ send });
    this._wheel = new WheelSteps();
    this._enabled = false;
    this._described = false;
    /** @type {ReadonlyArray<FrequencyRange>} */
    this._ranges = [];
    /** @type {Map<string, number>} the last frequency seen in each band */
    this._bandMemory = new Map();
    /** @type {Map<string, HTMLButtonElement>} */
    this._bandButtons = new Map();

    this.step = parseStep(this._load());
    const stepSelect = elements.step;
    stepSelect.replaceChildren(
      ...TUNING_STEPS.map((step) => new Option(stepLabel(step), String(step))),
    );
    stepSelect.value = String(this.step);
    stepSelect.addEventListener("change", () => {
      this.step = parseStep(stepSelect.value);
      this._save(String(this.step));
      this._describe();
    });

    const display = elements.display;
    display.addEventListener(
      "wheel",
      (event) => {
        if (!this._enabled) return;
        event.preventDefault(); // the page does not scroll under the dial
        const steps = this._wheel.steps(event);
        if (steps !== 0) this.move(steps);
      },
      { passive: false },
    );
    display.addEventListener("keydown", (event) => {
      const steps = { ArrowUp: 1, ArrowDown: -1, PageUp: PAGE_STEPS, PageDown: -PAGE_STEPS }[
        event.key
      ];
      if (steps === undefined || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      if (this._enabled) this.move(steps);
    });
    this.setEnabled(false);
    this._render();
  }

  /** @param {boolean} enabled the operator may tune now */
  setEnabled(enabled) {
    if (enabled === this._enabled && this._described) return;
    this._described = true;
    this._enabled = enabled;
    this._els.controls.disabled = !enabled;
    const display = this._els.display;
    display.setAttribute("aria-disabled", String(!enabled));
    if (!enabled) {
      this._sender.cancel();
      this._state.drop();
      this._render();
    }
    this._describe();
  }

  /** Empties the dial for a newly joined station. */
  reset() {
    this._sender.cancel();
    this._state = new DialState();
    this._bandMemory.clear();
    this.showCapabilities(null);
    this._note("");
    this._render();
  }

  /** @param {{freq_ranges: ReadonlyArray<FrequencyRange>} | null} capabilities */
  showCapabilities(capabilities) {
    this._ranges = capabilities?.freq_ranges ?? [];
    const doc = this._els.bands.ownerDocument;
    this._bandButtons.clear();
    const buttons = offeredBands(this._ranges).map((offer) => {
      const button = doc.createElement("button");
      button.type = "button";
      button.className = "band";
      button.dataset.band = offer.band.name;
      button.textContent = offer.band.name;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        const remembered = this._bandMemory.get(offer.band.name);
        this.tuneTo(bandTarget(offer, remembered, this._ranges));
      });
      this._bandButtons.set(offer.band.name, button);
      return button;
    });
    this._els.bands.replaceChildren(...buttons);
    this._render();
  }

  /** @param {number} hz the rig's frequency from its status */
  sync(hz) {
    this._state.report(hz, this._sender.pending !== null);
    const band = bandOf(hz);
    if (band !== null) this._bandMemory.set(band.name, hz);
    this._render();
  }

  /** The station refused a `freq`: back to the rig's frequency. */
  refused() {
    this._sender.cancel();
    this._state.drop();
    this._render();
  }

  /** @param {number} count steps up (positive) or down */
  move(count) {
    const from = this._state.shown;
    if (from === null) return; // no status yet: nothing to tune from
    this.tuneTo(stepFrequency(from, this.step, count));
  }

  /** @param {number} hz where to tune (kept within the rig's ranges) */
  tuneTo(hz) {
    if (!this._enabled) return;
    const { hz: target, clamped } = clampToRanges(hz, this._ranges);
    this._note(clamped ? `The rig tunes no further: ${formatFrequency(target)} MHz.` : "");
    this._state.aim(target);
    this._sender.request(target);
    this._render();
  }

  _render() {
    const { display } = this._els;
    const shown = this._state.shown;
    const text = shown === null ? "—" : `${formatFrequency(shown)} MHz`;
    setText(display, text);
    display.classList.toggle("pending", this._state.target !== null);
    if (shown === null) {
      display.removeAttribute("aria-valuenow");
      display.setAttribute("aria-valuetext", "no frequency yet");
    } else {
      display.setAttribute("aria-valuenow", String(shown));
      display.setAttribute("aria-valuetext", text);
    }
    const current = bandOf(shown ?? 0)?.name ?? null;
    for (const [name, button] of this._bandButtons) {
      button.setAttribute("aria-pressed", String(name === current));
    }
  }

  _describe() {
    setText(
      this._els.hint,
      this._enabled
        ? `Wheel or ↑/↓ tune ${stepLabel(this.step)}; Page Up/Down ${stepLabel(this.step * PAGE_STEPS)}.`
        : "",
    );
  }

  /** @param {string} text */
  _note(text) {
    setText(this._els.note, text);
  }

  _load() {
    try {
      return this._storage?.getItem(STEP_STORAGE_KEY) ?? null;
    } catch {
      return null; // storage blocked
    }
  }

  /** @param {string} value */
  _save(value) {
    try {
      this._storage?.setItem(STEP_STORAGE_KEY, value);
    } catch {
      // storage blocked or full: the step lasts for this page only
    }
  }
}
