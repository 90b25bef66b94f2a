// Getting the audio back by itself. When the connection to a station is interrupted for longer
// than a moment, fails, or never comes up (no network path), the console joins the station
// again — a new peer connection, as after a network change (Wi-Fi to 4G) the old addresses are
// gone and aiortc has no ICE restart — after a pause that grows with each failed attempt, and
// says what it is doing. A short interruption (a few seconds) heals by itself: ICE keeps the
// pair and the audio resumes, so the console waits `DISCONNECTED_GRACE_MS` before it acts.

/** How long a `disconnected` peer connection may take to come back by itself. */
export const DISCONNECTED_GRACE_MS = 6_000;
/** The pause before each successive attempt; the last one repeats. */
export const RETRY_DELAYS_MS = Object.freeze([1_000, 3_000, 5_000, 10_000, 20_000, 30_000]);

/**
 * @typedef {{
 *   rejoin: () => void,
 *   notice: (text: string) => void,
 * }} RecoveryActions
 * @typedef {{
 *   setTimeout: (fn: () => void, ms: number) => any,
 *   clearTimeout: (id: any) => void,
 * }} Timers
 */

export class MediaRecovery {
  /**
   * @param {RecoveryActions} actions `rejoin` joins the current station again; `notice` shows
   *   the operator what is happening ("" clears it)
   * @param {Timers} [timers]
   */
  constructor(actions, timers = globalThis) {
    this._actions = actions;
    this._timers = timers;
    this.attempts = 0;
    /** @type {any} */
    this._grace = null;
    /** @type {any} */
    this._retry = null;
    /** Whether a notice of ours is showing (kept across `cancel`: a rejoin cancels). */
    this._saying = false;
  }

  /** True while an attempt is scheduled. */
  get pending() {
    return this._retry !== null;
  }

  /**
   * Feed every state of the station's peer connection.
   * @param {RTCPeerConnectionState} state
   */
  connection(state) {
    if (state === "connected") {
      this._clearGrace();
      // whatever was said (interrupted, reconnecting) is over, also after a short interruption
      // and after a rejoin (whose leave cancels, resetting `attempts`)
      if (this._saying) this._notice("");
      this.attempts = 0;
    } else if (state === "disconnected") {
      if (this._grace !== null || this._retry !== null) return;
      this._notice("The audio connection is interrupted; waiting for it to come back…");
      this._grace = this._timers.setTimeout(() => {
        this._grace = null;
        this.failed("The audio connection was interrupted");
      }, DISCONNECTED_GRACE_MS);
    } else if (state === "failed") {
      this.failed("The audio connection failed");
    }
  }

  /**
   * The connection is gone or never came up: join again after the next pause.
   * @param {string} why a sentence without a final full stop
   */
  failed(why) {
    this._clearGrace();
    if (this._retry !== null) return;
    const delay = RETRY_DELAYS_MS[Math.min(this.attempts, RETRY_DELAYS_MS.length - 1)];
    this.attempts += 1;
    this._notice(`${why}. Reconnecting the audio in ${Math.round(delay / 1000)} s…`);
    this._retry = this._timers.setTimeout(() => {
      this._retry = null;
      this._notice("Reconnecting the audio…");
      this._actions.rejoin();
    }, delay);
  }

  /** The operator left, signed out, or the server connection took over: stop trying. */
  cancel() {
    this._clearGrace();
    if (this._retry !== null) this._timers.clearTimeout(this._retry);
    this._retry = null;
    this.attempts = 0;
  }

  /** @param {string} text */
  _notice(text) {
    this._saying = text !== "";
    this._actions.notice(text);
  }

  _clearGrace() {
    if (this._grace !== null) this._timers.clearTimeout(this._grace);
    this._grace = null;
  }
}
