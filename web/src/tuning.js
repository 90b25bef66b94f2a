// Tuning: frequency (typed in kHz), mode and power, checked against the protocol's bounds and
// the station's `capabilities` before anything is sent. The parsing and checks are pure (node:test
// covers them); `TuningControls` keeps the form in step with the station's status.

import { formatPower } from "./format.js";
import { MAX_FREQUENCY_HZ, MIN_FREQUENCY_HZ, RIG_MODES } from "./protocol.js";
import { setText } from "./view.js";

/** A control the operator just changed is not overwritten by station status for this long. */
export const USER_EDIT_HOLD_MS = 2000;

/**
 * @typedef {{low: number, high: number}} FrequencyRange
 * @typedef {{modes: readonly string[], freq_ranges: readonly FrequencyRange[]}} Capabilities
 */

/**
 * A frequency typed in kHz ("14205", "14205.5", "14 205,250", "7074.000") as whole Hz.
 * Parsed as text, not as a float, so "14205.001" is exactly 14205001 Hz.
 * @param {string} text
 * @returns {{hz: number} | {error: string}}
 */
export function parseKhz(text) {
  const compact = text.trim().replace(/[\s_']/g, "").replace(",", ".");
  if (compact === "") return { error: "Enter a frequency in kHz." };
  const match = /^(\d+)(?:\.(\d*))?$/.exec(compact);
  if (match === null) return { error: `“${text.trim()}” is not a frequency in kHz (e.g. 14205.000).` };
  const [, whole, fraction = ""] = match;
  if (fraction.length > 3) return { error: "Give at most 3 decimals in kHz (1 Hz steps)." };
  if (whole.length > 9) return { error: "That frequency is out of range." };
  const hz = Number(whole) * 1000 + Number(fraction.padEnd(3, "0"));
  return { hz };
}

/**
 * Hz as kHz text for the entry field: 14205000 -> "14205.000".
 * @param {number} hz
 */
export function formatKhz(hz) {
  if (!Number.isSafeInteger(hz) || hz < 0) return "";
  return `${Math.floor(hz / 1000)}.${String(hz % 1000).padStart(3, "0")}`;
}

/**
 * kHz for a range description, without needless decimals: 1800000 -> "1800", 475500 -> "475.5".
 * @param {number} hz
 */
function khzLabel(hz) {
  return String(hz / 1000);
}

/**
 * The frequency ranges a station accepts, as text: "1800–29700 kHz, 50000–54000 kHz".
 * @param {readonly FrequencyRange[]} ranges
 */
export function describeRanges(ranges) {
  return ranges.map((r) => `${khzLabel(r.low)}–${khzLabel(r.high)} kHz`).join(", ");
}

/**
 * Why `hz` may not be sent, or null when it may: within one of the station's ranges
 * (inclusive) when its capabilities are known, else within the protocol's bounds.
 * @param {number} hz
 * @param {Capabilities | null} capabilities
 * @returns {string | null}
 */
export function frequencyProblem(hz, capabilities) {
  if (!Number.isSafeInteger(hz) || hz < MIN_FREQUENCY_HZ || hz > MAX_FREQUENCY_HZ) {
    return `The frequency must be between 0.001 kHz and ${khzLabel(MAX_FREQUENCY_HZ)} kHz.`;
  }
  const ranges = capabilities?.freq_ranges ?? [];
  if (ranges.length > 0 && !ranges.some((r) => hz >= r.low && hz <= r.high)) {
    return `The station cannot tune to ${formatKhz(hz)} kHz; it accepts ${describeRanges(ranges)}.`;
  }
  return null;
}

/**
 * Parses and checks a typed frequency in one go.
 * @param {string} text
 * @param {Capabilities | null} capabilities
 * @returns {{hz: number} | {error: string}}
 */
export function frequencyFromInput(text, capabilities) {
  const parsed = parseKhz(text);
  if ("error" in parsed) return parsed;
  const problem = frequencyProblem(parsed.hz, capabilities);
  return problem === null ? parsed : { error: problem };
}

/**
 * The modes to offer: the station's (in its order, only protocol modes) or the protocol's list.
 * @param {Capabilities | null} capabilities
 * @returns {string[]}
 */
export function availableModes(capabilities) {
  const modes = capabilities?.modes?.filter((m) => RIG_MODES.includes(m)) ?? [];
  return modes.length > 0 ? [...new Set(modes)] : [...RIG_MODES];
}

/**
 * A `capabilities` message as the protocol defines it (frozen), or null if it is malformed.
 * @param {any} m
 * @returns {Capabilities | null}
 */
export function parseCapabilities(m) {
  if (!Array.isArray(m?.modes) || !Array.isArray(m?.freq_ranges)) return null;
  if (!m.modes.every((/** @type {unknown} */ mode) => typeof mode === "string")) return null;
  /** @type {FrequencyRange[]} */
  const ranges = [];
  for (const r of m.freq_ranges) {
    if (!Number.isSafeInteger(r?.low) || !Number.isSafeInteger(r?.high) || r.low > r.high) {
      return null;
    }
    ranges.push(Object.freeze({ low: r.low, high: r.high }));
  }
  return Object.freeze({ modes: Object.freeze([...m.modes]), freq_ranges: Object.freeze(ranges) });
}

/**
 * @typedef {{
 *   freqForm: HTMLFormElement,
 *   freqInput: HTMLInputElement,
 *   freqHint: HTMLElement,
 *   freqError: HTMLElement,
 *   modeSelect: HTMLSelectElement,
 *   powerInput: HTMLInputElement,
 *   powerOutput: HTMLOutputElement,
 * }} TuningElements
 */

/**
 * The tuning form: sends `freq`, `mode` and `power` as the operator changes them, and shows the
 * station's values from its status, except in a field the operator is editing (or just
 * changed: the station's next status may still predate the change).
 */
export class TuningControls {
  /**
   * @param {{
   *   elements: TuningElements,
   *   send: (message: {type: "freq" | "mode" | "power", value: number | string}) => void,
   *   capabilities: () => Capabilities | null,
   *   window: Window,
   *   now?: () => number,
   *   modeButtons?: HTMLElement | null,
   * }} options `modeButtons`: where one button per mode goes (the same choice as the select)
   */
  constructor({ elements, send, capabilities, window: win, now = Date.now, modeButtons = null }) {
    this._els = elements;
    this._now = now;
    this._send = send;
    this._modeButtons = modeButtons;
    /** When the operator last changed each control. */
    this._editedAt = new WeakMap();
    this._powerDragging = false;
    const els = elements;

    els.freqForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const result = frequencyFromInput(els.freqInput.value, capabilities());
      if ("error" in result) {
        this._setFreqError(result.error);
        return;
      }
      this._setFreqError("");
      this._editedAt.delete(els.freqInput);
      send({ type: "freq", value: result.hz });
    });
    els.freqInput.addEventListener("input", () => {
      this._edited(els.freqInput);
      if (els.freqError.textContent) this._setFreqError("");
    });
    els.modeSelect.addEventListener("change", () => {
      this._edited(els.modeSelect);
      this._selectMode(els.modeSelect.value);
      send({ type: "mode", value: els.modeSelect.value });
    });
    els.powerInput.addEventListener("pointerdown", () => {
      this._powerDragging = true;
    });
    // The pointer may come up anywhere.
    win.addEventListener("pointerup", () => {
      this._powerDragging = false;
    });
    els.powerInput.addEventListener("input", () => {
      this._edited(els.powerInput);
      setText(els.powerOutput, formatPower(Number(els.powerInput.value)));
    });
    els.powerInput.addEventListener("change", () => {
      this._edited(els.powerInput);
      send({ type: "power", value: Number(els.powerInput.value) });
    });
  }

  /** Empties the form for a newly joined station. */
  reset() {
    this._els.freqInput.value = "";
    this._setFreqError("");
    this._els.modeSelect.replaceChildren();
    this.showCapabilities(null, undefined);
  }

  /**
   * Offers the station's modes and says which frequencies it accepts.
   * @param {Capabilities | null} capabilities
   * @param {string | undefined} rigMode the rig's mode from its last status, if any
   */
  showCapabilities(capabilities, rigMode) {
    const els = this._els;
    const current = els.modeSelect.value || rigMode;
    const modes = availableModes(capabilities);
    els.modeSelect.replaceChildren(...modes.map((mode) => new Option(mode, mode)));
    this._renderModeButtons(modes);
    if (current) this._selectMode(current);
    const ranges = capabilities?.freq_ranges ?? [];
    setText(
      els.freqHint,
      ranges.length > 0
        ? `The station accepts ${describeRanges(ranges)}.`
        : "1 Hz steps, e.g. 14205.000",
    );
  }

  /** @param {{freq: number, mode: string, power?: number | null}} status */
  sync(status) {
    const els = this._els;
    const focused = els.freqInput.ownerDocument.activeElement === els.freqInput;
    if (!focused && !this._recentlyEdited(els.freqInput)) {
      els.freqInput.value = formatKhz(status.freq);
    }
    if (!this._recentlyEdited(els.modeSelect)) this._selectMode(status.mode);
    if (
      typeof status.power === "number" &&
      !this._powerDragging &&
      !this._recentlyEdited(els.powerInput)
    ) {
      els.powerInput.value = String(status.power);
      setText(els.powerOutput, formatPower(status.power));
    }
  }

  /** @param {Element} element */
  _edited(element) {
    this._editedAt.set(element, this._now());
  }

  /** @param {Element} element */
  _recentlyEdited(element) {
    return this._now() - (this._editedAt.get(element) ?? 0) < USER_EDIT_HOLD_MS;
  }

  /** @param {string} mode selects it, adding it when the list lacks it (the rig is in it) */
  _selectMode(mode) {
    const select = this._els.modeSelect;
    if (![...select.options].some((o) => o.value === mode)) select.append(new Option(mode, mode));
    select.value = mode;
    for (const button of this._modeButtons?.querySelectorAll("button") ?? []) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    }
  }

  /** @param {string[]} modes one button each, pressed for the selected mode */
  _renderModeButtons(modes) {
    const container = this._modeButtons;
    if (container === null) return;
    const doc = container.ownerDocument;
    const buttons = modes.map((mode) => {
      const button = doc.createElement("button");
      button.type = "button";
      button.className = "mode-button";
      button.dataset.mode = mode;
      button.textContent = mode;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        this._edited(this._els.modeSelect);
        this._selectMode(mode);
        this._send({ type: "mode", value: mode });
      });
      return button;
    });
    container.replaceChildren(...buttons);
  }

  /** Tuned another way (dial, band): an error about the typed entry no longer applies. */
  clearFreqError() {
    if (this._els.freqError.textContent) this._setFreqError("");
  }

  /** @param {string} message */
  _setFreqError(message) {
    setText(this._els.freqError, message);
    if (message) this._els.freqInput.setAttribute("aria-invalid", "true");
    else this._els.freqInput.removeAttribute("aria-invalid");
  }
}
