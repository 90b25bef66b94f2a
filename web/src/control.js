// Station control without the DOM: frequency entry, capabilities, TX stop reasons, and the
// push-to-talk state machine with its keep-alives. node:test checks all of it.

import {
  KEEPALIVE_INTERVAL_MS,
  MAX_FREQUENCY_HZ,
  MIN_FREQUENCY_HZ,
  RIG_MODES,
} from "./protocol.js";

export { KEEPALIVE_INTERVAL_MS, MAX_FREQUENCY_HZ, MIN_FREQUENCY_HZ, RIG_MODES };

/**
 * @typedef {{low: number, high: number}} FrequencyRange
 * @typedef {{modes: string[], freq_ranges: FrequencyRange[]}} Capabilities
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
 * @param {FrequencyRange[]} ranges
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
 * A `capabilities` message as the protocol defines it, or null if it is malformed.
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
    ranges.push({ low: r.low, high: r.high });
  }
  return { modes: [...m.modes], freq_ranges: ranges };
}

const RELEASE_REASONS = {
  released: "PTT released.",
  deadman: "dead-man (no keep-alive from this page in time)",
  timeout: "time-out (the longest continuous transmission was reached)",
  override: "the station owner took over",
  link_lost: "your connection to the server dropped",
  station_lost: "the station went offline",
  rig_error: "the rig reported an error",
};

/**
 * What to tell the operator when the server released their PTT (`ptt_released`).
 * @param {string} reason one of the protocol's `TxEndReason`s
 * @param {string | null | undefined} by callsign of who overrode
 */
export function describeRelease(reason, by) {
  if (reason === "released") return RELEASE_REASONS.released;
  if (reason === "override") {
    return `Transmission released by the server: owner ${by ?? "(unknown)"} took over.`;
  }
  const why = RELEASE_REASONS[/** @type {keyof typeof RELEASE_REASONS} */ (reason)];
  return `Transmission released by the server: ${why ?? reason}.`;
}

/**
 * Why the station ended a transmission by itself (`tx_stopped`).
 * @param {string} reason
 */
export function describeStationStop(reason) {
  const why = {
    deadman: "its dead-man timer ran out",
    timeout: "its TX time-out was reached",
    rig_error: "the rig reported an error",
  }[reason];
  return `The station stopped transmitting: ${why ?? reason}.`;
}

/**
 * Push-to-talk: keys with `{"type":"ptt","state":true}`, sends `keepalive` every
 * `intervalMs` while keyed, and unkeys with `{"type":"ptt","state":false}`.
 *
 * `send(message)` returns false when the message could not be sent (channel not open): a press
 * then does not key, and a failed keep-alive drops the local state (the server's dead-man
 * releases the floor on its side). `onChange(keyed, why)` runs on every change of state.
 */
export class PttController {
  /**
   * @param {{
   *   send: (message: object) => boolean,
   *   onChange?: (keyed: boolean, why: string) => void,
   *   intervalMs?: number,
   *   setInterval?: (fn: () => void, ms: number) => any,
   *   clearInterval?: (id: any) => void,
   * }} options
   */
  constructor({
    send,
    onChange = () => {},
    intervalMs = KEEPALIVE_INTERVAL_MS,
    setInterval = globalThis.setInterval.bind(globalThis),
    clearInterval = globalThis.clearInterval.bind(globalThis),
  }) {
    this._send = send;
    this._onChange = onChange;
    this._intervalMs = intervalMs;
    this._setInterval = setInterval;
    this._clearInterval = clearInterval;
    /** @type {any} */
    this._timer = null;
    this.keyed = false;
    this.keepalivesSent = 0;
  }

  /** Keys the transmitter; true when `ptt` true went out (or it already had). `onChange` runs
   * after it went out, so the microphone is live only once `ptt` true was sent. */
  press() {
    if (this.keyed) return true;
    if (!this._send({ type: "ptt", state: true })) return false;
    this.keyed = true;
    this._timer = this._setInterval(() => this._keepalive(), this._intervalMs);
    this._onChange(true, "pressed");
    return true;
  }

  /**
   * Unkeys and tells the server (when keyed; a release while unkeyed sends nothing).
   * `onChange` runs first, so the microphone is muted before `ptt` false goes out.
   * @param {string} [why]
   */
  release(why = "released") {
    if (!this.keyed) return;
    this._stop();
    this._onChange(false, why);
    this._send({ type: "ptt", state: false });
  }

  /**
   * Forgets the local PTT state without sending anything: the server already released it,
   * or the channel is gone.
   * @param {string} why
   */
  drop(why) {
    if (!this.keyed) return;
    this._stop();
    this._onChange(false, why);
  }

  _stop() {
    this.keyed = false;
    if (this._timer !== null) this._clearInterval(this._timer);
    this._timer = null;
  }

  _keepalive() {
    if (!this.keyed) return;
    if (this._send({ type: "keepalive" })) {
      this.keepalivesSent += 1;
    } else {
      this.drop("keepalive_failed");
    }
  }
}
