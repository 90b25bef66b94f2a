// The transmit clock: how long this operator has been on the air and, when the server said its
// limit (`floor.tx_limit_s`), how long until the time-out. The wording is pure (node:test).

/** How often the clock's text is refreshed while keyed. */
export const TX_CLOCK_TICK_MS = 250;
/** Under this many seconds left the countdown is shown as a warning. */
export const TX_CLOCK_WARN_S = 10;

/**
 * Seconds as "0:07", "2:58", "12:00".
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/**
 * The clock's line while keyed.
 * @param {number} elapsedMs since keying
 * @param {number | null} limitS the server's limit, if it said it
 * @returns {{text: string, remainingS: number | null, warn: boolean}}
 */
export function txClockLine(elapsedMs, limitS) {
  const elapsed = `On air ${formatDuration(elapsedMs / 1000)}`;
  if (limitS === null) return { text: elapsed, remainingS: null, warn: false };
  const remainingS = Math.max(0, Math.ceil(limitS - elapsedMs / 1000));
  return {
    text: `${elapsed} · time-out in ${formatDuration(remainingS)}`,
    remainingS,
    warn: remainingS <= TX_CLOCK_WARN_S,
  };
}

/**
 * The clock's line after a transmission.
 * @param {number} elapsedMs how long it lasted
 */
export function lastOverLine(elapsedMs) {
  return `Last transmission ${formatDuration(elapsedMs / 1000)}`;
}

/** Counts on the page while keyed: `start()` on keying, `stop()` on release. */
export class TxClock {
  /**
   * @param {{
   *   element: HTMLElement,
   *   now?: () => number,
   *   setInterval?: (fn: () => void, ms: number) => any,
   *   clearInterval?: (id: any) => void,
   * }} options
   */
  constructor({
    element,
    now = () => performance.now(),
    setInterval = globalThis.setInterval.bind(globalThis),
    clearInterval = globalThis.clearInterval.bind(globalThis),
  }) {
    this._el = element;
    this._now = now;
    this._setInterval = setInterval;
    this._clearInterval = clearInterval;
    /** @type {number | null} when keyed, else null */
    this._since = null;
    /** @type {number | null} the server's `tx_limit_s` for this transmission */
    this.limitS = null;
    /** @type {any} */
    this._timer = null;
  }

  get running() {
    return this._since !== null;
  }

  start() {
    if (this._since !== null) return;
    this._since = this._now();
    this._timer = this._setInterval(() => this._render(), TX_CLOCK_TICK_MS);
    this._el.hidden = false;
    this._render();
  }

  /** @param {number | null} limitS the server's limit (null: it did not say) */
  setLimit(limitS) {
    this.limitS = limitS;
    if (this._since !== null) this._render();
  }

  stop() {
    if (this._since === null) return;
    const lasted = this._now() - this._since;
    this._since = null;
    this.limitS = null;
    this._clearInterval(this._timer);
    this._timer = null;
    this._el.classList.remove("warn", "on-air");
    this._el.textContent = lastOverLine(lasted);
  }

  /** Back to nothing shown (a new station). */
  reset() {
    this.stop();
    this._el.textContent = "";
    this._el.hidden = true;
  }

  _render() {
    if (this._since === null) return;
    const line = txClockLine(this._now() - this._since, this.limitS);
    if (this._el.textContent !== line.text) this._el.textContent = line.text;
    this._el.classList.add("on-air");
    this._el.classList.toggle("warn", line.warn);
  }
}
