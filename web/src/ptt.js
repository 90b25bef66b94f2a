// Push to talk: the keying state machine with its keep-alives, what the transmit panel may
// offer from the page's state, the operator's input (pointer on the button, the space bar), and
// the words for why a transmission ended. Nothing here runs at import; node:test covers it.

import { KEEPALIVE_INTERVAL_MS } from "./protocol.js";

const RELEASE_REASONS = {
  released: "PTT released.",
  deadman: "dead-man (no keep-alive from this page in time)",
  timeout: "time-out (the longest continuous transmission was reached)",
  override: "the station owner took over",
  link_lost: "your connection to the server dropped",
  station_lost: "the station went offline",
  rig_error: "the rig reported an error",
  watchdog: "the station's PTT guard released it (the station's software stopped responding)",
  server_shutdown: "the server is restarting",
  server_restart: "the server restarted",
  access_ended: "your right to transmit here ended (booking over, or withdrawn by the owner)",
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
    watchdog: "its PTT guard released it (the station's software stopped responding)",
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

/**
 * What the page knows that decides whether the operator may key now.
 * @typedef {{
 *   joined: boolean,
 *   canTransmit: boolean,
 *   mic: "none" | "pending" | "ready" | "refused" | "ended",
 *   micAttached: boolean,
 *   channelOpen: boolean,
 *   rigOffline: boolean,
 *   keyed: boolean,
 *   holder: string | null,
 *   floorIsMine: boolean,
 *   isOwner: boolean,
 *   latching?: boolean,
 * }} TransmitState
 */

/**
 * The transmit panel for `state`: shown or not, the PTT button's hint and whether it can be
 * pressed, and whether tuning is open.
 * @param {TransmitState} state
 * @returns {{visible: boolean, keyed: boolean, usable: boolean, buttonDisabled: boolean,
 *            hint: string, tuningDisabled: boolean}}
 */
export function transmitControls(state) {
  const canTransmit = state.joined && state.canTransmit;
  const keyed = state.joined && state.keyed;
  const otherHolder = state.holder !== null && !keyed && !state.floorIsMine;
  /** @type {string} */
  let hint;
  let usable = false;
  if (!canTransmit) hint = "Listening only.";
  else if (!state.micAttached && state.mic === "pending") {
    hint = "Waiting for permission to use the microphone…";
  } else if (!state.micAttached) hint = "No microphone: transmitting is off.";
  else if (!state.channelOpen) hint = "Waiting for the connection to the station…";
  else if (state.rigOffline) hint = "The rig is offline.";
  else if (otherHolder && !state.isOwner) hint = `${state.holder} is transmitting.`;
  else {
    usable = true;
    if (keyed && state.latching) hint = "ON AIR: press the button (or the space bar) again to stop.";
    else if (keyed) hint = "ON AIR: release the button (or the space bar) to stop.";
    else if (otherHolder) hint = `${state.holder} is transmitting; as the owner you can take over.`;
    else if (state.latching) {
      hint = "Latching: press the button (or the space bar) and confirm to talk; press again to stop.";
    } else hint = "Hold the button, or hold the space bar, to talk.";
  }
  return {
    visible: canTransmit,
    keyed,
    usable,
    // Never disabled under a held pointer without unkeying first (every path above that makes
    // PTT unusable releases it): usable while keyed.
    buttonDisabled: !usable && !keyed,
    hint,
    tuningDisabled: !canTransmit || !state.channelOpen || state.rigOffline,
  };
}

/** @param {EventTarget | null} target */
function isTypingTarget(target) {
  const element = /** @type {any} */ (target);
  if (typeof element?.closest !== "function") return false; // the window, the document
  return element.isContentEditable === true || element.closest("input, textarea, select") !== null;
}

/**
 * The space bar, without modifiers, outside text entry, is the PTT key.
 * @param {KeyboardEvent} event
 */
export function isPttKey(event) {
  return (
    event.code === "Space" &&
    !event.ctrlKey &&
    !event.altKey &&
    !event.metaKey &&
    !isTypingTarget(event.target)
  );
}

/**
 * The operator's hands on PTT: pointer (mouse, touch, pen) on the button, or the space bar
 * anywhere outside text entry. Keys on a press, unkeys on the release of the same input (a
 * release anywhere counts: the pointer may come up outside the window's content); after any
 * other release (server, safety), `forget()` makes the eventual key-up or pointer-up a no-op.
 * An auto-repeating key never re-keys. A touch that slides off the button unkeys, as a mouse
 * leaving it does (the button does not keep the touch's pointer captured).
 *
 * Latching (`latching()` true): a press does not key but asks `confirm()`, whose yes calls
 * `latch()`; PTT then stays keyed without holding anything until the next press (button or
 * space bar) unkeys it.
 */
export class PttInput {
  /**
   * @param {{
   *   button: EventTarget,
   *   window: EventTarget,
   *   keyEnabled: () => boolean,
   *   canPress: () => boolean,
   *   press: () => boolean,
   *   release: (how: string) => void,
   *   latching?: () => boolean,
   *   confirm?: () => void,
   * }} options
   */
  constructor({
    button,
    window: win,
    keyEnabled,
    canPress,
    press,
    release,
    latching = () => false,
    confirm = () => {},
  }) {
    /** @type {"pointer" | "key" | "latch" | null} what holds PTT now */
    this.source = null;
    this._canPress = canPress;
    this._press = press;
    this._release = release;
    this._latching = latching;
    this._confirm = confirm;

    button.addEventListener("pointerdown", (event) => {
      const pointer = /** @type {PointerEvent} */ (event);
      if (pointer.pointerType === "mouse" && pointer.button !== 0) return;
      event.preventDefault(); // no text selection, no focus juggling, no emulated mouse events
      if (this._toggled()) return;
      // A touch captures its pointer to the button: let go, so sliding off it unkeys.
      const target = /** @type {any} */ (button);
      if (typeof target.hasPointerCapture === "function" && target.hasPointerCapture(pointer.pointerId)) {
        target.releasePointerCapture(pointer.pointerId);
      }
      this._pressed("pointer");
    });
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
      button.addEventListener(type, () => this._released("pointer", type));
    }
    for (const type of ["pointerup", "pointercancel"]) {
      win.addEventListener(type, () => this._released("pointer", type));
    }
    button.addEventListener("contextmenu", (event) => event.preventDefault()); // long touch

    win.addEventListener("keydown", (event) => {
      const key = /** @type {KeyboardEvent} */ (event);
      if (!isPttKey(key) || !keyEnabled()) return;
      event.preventDefault(); // no scrolling, no activation of a focused button
      if (key.repeat) return; // auto-repeat: never re-keys after a server release
      if (this._toggled()) return;
      this._pressed("key");
    });
    win.addEventListener("keyup", (event) => {
      if (/** @type {KeyboardEvent} */ (event).code !== "Space" || this.source !== "key") return;
      event.preventDefault();
      this._released("key", "keyup");
    });
  }

  /** PTT was released by something else than this input: its release must send nothing. */
  forget() {
    this.source = null;
  }

  /** The operator confirmed a latching key-up: keys, and stays keyed until the next press. */
  latch() {
    if (this.source !== null) return;
    this._pressed("latch");
  }

  /** Unkeys a latched PTT (latching turned off, say); anything else is left alone. */
  unlatch() {
    this._released("latch", "unlatched");
  }

  /** In latching mode a press toggles: unkeys when latched, else asks for confirmation.
   * @returns {boolean} the press was handled so */
  _toggled() {
    if (this.source === "latch") {
      this._released("latch", "unlatched");
      return true;
    }
    if (!this._latching()) return false;
    if (this.source === null && this._canPress()) this._confirm();
    return true;
  }

  /** @param {"pointer" | "key" | "latch"} source */
  _pressed(source) {
    if (!this._canPress()) return;
    this.source = source;
    if (!this._press()) this.source = null;
  }

  /**
   * @param {"pointer" | "key" | "latch"} source
   * @param {string} how the event that released it
   */
  _released(source, how) {
    if (this.source !== source) return;
    this.source = null;
    this._release(how);
  }
}
