// The page: finds index.html's elements and renders into them (sign-in, stations, the station's
// readout and S-meter, floor, access, the transmit panel, errors, notices and banners). It keeps
// no state of the console's own, only what the DOM needs (list items, the countdown's timer).

import { formatPower, formatSMeter, formatSquelch } from "./format.js";
import { SMeterBar } from "./meter.js";

const MAX_SHOWN_ERRORS = 5;

const STATE_LABELS = Object.freeze({
  "signed-out": "signed out",
  "signing-in": "signing in…",
  signaling: "connecting to the server…",
  reconnecting: "reconnecting to the server…",
  ready: "ready",
  joining: "joining…",
  negotiating: "negotiating…",
  new: "negotiating…",
  connecting: "connecting…",
  connected: "connected",
  disconnected: "interrupted, retrying…",
  failed: "failed",
  closed: "closed",
});

/**
 * The words for a console state (the page's own or a peer connection's).
 * @param {string} state
 */
export function stateLabel(state) {
  return STATE_LABELS[/** @type {keyof typeof STATE_LABELS} */ (state)] ?? state;
}

/**
 * The S-meter reading as shown: "S9+20 dB (-53 dBm)", or "—" without a reading.
 * @param {number | null | undefined} dbm
 */
export function sMeterText(dbm) {
  const units = formatSMeter(dbm);
  return units === null ? "—" : `${units} (${dbm} dBm)`;
}

/**
 * Writes text only when it changed, so live regions announce changes and not every update.
 * @param {Element} element
 * @param {string} text
 */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/**
 * @param {Document} doc
 * @param {string} id
 */
function byId(doc, id) {
  const element = doc.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

/** @param {Document} doc */
function findElements(doc) {
  const get = (/** @type {string} */ id) => byId(doc, id);
  return {
    whoami: get("whoami"),
    callsign: get("callsign"),
    logout: get("logout"),
    errors: get("errors"),
    errorList: get("error-list"),
    clearErrors: get("clear-errors"),
    login: get("login"),
    loginForm: /** @type {HTMLFormElement} */ (get("login-form")),
    email: /** @type {HTMLInputElement} */ (get("email")),
    password: /** @type {HTMLInputElement} */ (get("password")),
    loginError: get("login-error"),
    loginSubmit: /** @type {HTMLButtonElement} */ (get("login-submit")),
    console: get("console"),
    boards: get("boards"),
    boardsEmpty: get("boards-empty"),
    station: get("station"),
    stationName: get("station-name"),
    txIndicator: get("tx-indicator"),
    connState: get("conn-state"),
    freq: get("freq"),
    mode: get("mode"),
    squelch: get("squelch"),
    power: get("power"),
    floor: get("floor"),
    access: get("access"),
    smeter: get("smeter"),
    smeterBar: get("smeter-bar"),
    statusCount: get("status-count"),
    audio: /** @type {HTMLAudioElement} */ (get("rx-audio")),
    leave: /** @type {HTMLButtonElement} */ (get("leave")),
    rigOffline: get("rig-offline"),
    transmit: get("transmit"),
    ptt: /** @type {HTMLButtonElement} */ (get("ptt")),
    pttHint: get("ptt-hint"),
    micStatus: get("mic-status"),
    txWarning: get("tx-warning"),
    txNotice: get("tx-notice"),
    tuning: /** @type {HTMLFieldSetElement} */ (get("tuning")),
    freqForm: /** @type {HTMLFormElement} */ (get("freq-form")),
    freqInput: /** @type {HTMLInputElement} */ (get("freq-input")),
    freqHint: get("freq-hint"),
    freqError: get("freq-error"),
    modeSelect: /** @type {HTMLSelectElement} */ (get("mode-select")),
    powerInput: /** @type {HTMLInputElement} */ (get("power-input")),
    powerOutput: /** @type {HTMLOutputElement} */ (get("power-output")),
  };
}

/** @typedef {{id: string, name: string, online: boolean}} Board */

export class ConsoleView {
  /**
   * @param {Document} doc
   * @param {{chooseBoard: (boardId: string) => void}} actions
   */
  constructor(doc, actions) {
    this.els = findElements(doc);
    this._doc = doc;
    this._actions = actions;
    /** @type {Map<string, HTMLLIElement>} */
    this._boardItems = new Map();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this._warningTimer = undefined;
    /** the S-meter's bar, S-unit scaled */
    this.sMeterBar = new SMeterBar(this.els.smeterBar);
  }

  /** @param {string} state */
  setState(state) {
    setText(this.els.connState, stateLabel(state));
  }

  // --- signing in -----------------------------------------------------------------------------

  /** What the operator typed into the sign-in form (the email trimmed). */
  credentials() {
    return { email: this.els.email.value.trim(), password: this.els.password.value };
  }

  /** @param {string} message */
  showLoginError(message) {
    setText(this.els.loginError, message);
  }

  /** @param {boolean} busy */
  setSigningIn(busy) {
    this.els.loginSubmit.disabled = busy;
  }

  /** @param {string} callsign */
  showSignedIn(callsign) {
    this.els.password.value = "";
    setText(this.els.callsign, callsign);
    this.els.whoami.hidden = false;
    this.els.login.hidden = true;
    this.els.console.hidden = false;
  }

  /** @param {string} message shown on the sign-in form */
  showSignedOut(message) {
    this.els.station.hidden = true;
    this.els.console.hidden = true;
    this.els.whoami.hidden = true;
    this.els.login.hidden = false;
    this.showLoginError(message);
    this.els.email.focus();
  }

  // --- errors ---------------------------------------------------------------------------------

  /**
   * @param {string} code
   * @param {string} message
   * @param {string | null} [ref]
   */
  showError(code, message, ref = null) {
    const list = this.els.errorList;
    const item = this._doc.createElement("li");
    const codeElement = this._doc.createElement("code");
    codeElement.textContent = code;
    item.append(codeElement, `: ${message}`);
    if (ref) item.append(` (refused: ${ref})`);
    list.append(item);
    while (list.childElementCount > MAX_SHOWN_ERRORS) list.firstElementChild?.remove();
    this.els.errors.hidden = false;
  }

  clearErrors() {
    this.els.errorList.replaceChildren();
    this.els.errors.hidden = true;
  }

  // --- stations -------------------------------------------------------------------------------

  /**
   * @param {Iterable<Board>} boards
   * @param {string | null} joinedId
   */
  renderBoards(boards, joinedId) {
    const listed = new Map([...boards].map((board) => [board.id, board]));
    for (const [id, item] of this._boardItems) {
      if (!listed.has(id)) {
        item.remove();
        this._boardItems.delete(id);
      }
    }
    const sorted = [...listed.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const board of sorted) this.els.boards.append(this.renderBoard(board, joinedId));
    this.els.boardsEmpty.hidden = listed.size > 0;
  }

  /**
   * @param {Board} board
   * @param {string | null} joinedId
   * @returns {HTMLLIElement}
   */
  renderBoard(board, joinedId) {
    let item = this._boardItems.get(board.id);
    if (item === undefined) {
      item = this._doc.createElement("li");
      const button = this._doc.createElement("button");
      button.type = "button";
      button.className = "board";
      button.dataset.boardId = board.id;
      const name = this._doc.createElement("span");
      name.className = "board-name";
      const presence = this._doc.createElement("span");
      presence.className = "presence";
      button.append(name, presence);
      button.addEventListener("click", () => this._actions.chooseBoard(board.id));
      item.append(button);
      this._boardItems.set(board.id, item);
    }
    const button = /** @type {HTMLButtonElement} */ (item.querySelector("button"));
    setText(/** @type {Element} */ (button.querySelector(".board-name")), board.name);
    const presence = /** @type {Element} */ (button.querySelector(".presence"));
    setText(presence, board.online ? "online" : "offline");
    presence.classList.toggle("online", board.online);
    presence.classList.toggle("offline", !board.online);
    const joined = board.id === joinedId;
    button.setAttribute("aria-pressed", String(joined));
    button.disabled = !board.online && !joined;
    return item;
  }

  // --- the station ----------------------------------------------------------------------------

  /** @param {boolean} shown */
  showStation(shown) {
    this.els.station.hidden = !shown;
  }

  /** @param {{name: string, online: boolean}} board */
  renderStationName(board) {
    setText(this.els.stationName, board.online ? board.name : `${board.name} (offline)`);
  }

  /** Empties the station panel for a newly joined station. */
  resetStation() {
    const els = this.els;
    els.rigOffline.hidden = true;
    this.setMicrophone("Microphone: —");
    this.showNotice("");
    this.clearTxWarning();
    // the frequency is the dial's (dial.js)
    for (const element of [els.mode, els.squelch, els.power, els.access, els.smeter]) {
      setText(element, "—");
    }
    setText(els.floor, "nobody");
    setText(els.statusCount, "0");
    this._renderTxIndicator(false);
    this.sMeterBar.show(null);
  }

  /** @param {boolean} canTransmit */
  renderAccess(canTransmit) {
    setText(this.els.access, canTransmit ? "may transmit" : "listen only");
  }

  /**
   * @param {import("./messages.js").StatusMessage} status
   * @param {number} count status messages since joining
   */
  renderStatus(status, count) {
    const els = this.els;
    // the frequency is shown by the dial (dial.js), which settles to the rig's from status
    setText(els.mode, status.mode);
    setText(els.smeter, sMeterText(status.smeter));
    this.sMeterBar.show(status.smeter);
    setText(els.squelch, formatSquelch(status.squelch));
    setText(els.power, formatPower(status.power));
    this._renderTxIndicator(status.ptt);
    setText(els.statusCount, String(count));
    els.rigOffline.hidden = status.rig_online !== false;
  }

  /**
   * @param {string | null} holder
   * @param {boolean} mine this connection holds the floor
   */
  renderFloor(holder, mine) {
    setText(this.els.floor, holder === null ? "nobody" : mine ? `${holder} (you)` : holder);
  }

  /** @param {boolean} transmitting */
  _renderTxIndicator(transmitting) {
    const indicator = this.els.txIndicator;
    setText(indicator, transmitting ? "TX" : "RX");
    indicator.classList.toggle("tx", transmitting);
    indicator.classList.toggle("rx", !transmitting);
    indicator.setAttribute("aria-label", transmitting ? "transmitting" : "receiving");
  }

  // --- transmitting ---------------------------------------------------------------------------

  /** @param {ReturnType<typeof import("./ptt.js").transmitControls>} controls */
  renderTransmit(controls) {
    const els = this.els;
    els.transmit.hidden = !controls.visible;
    els.ptt.disabled = controls.buttonDisabled;
    els.ptt.setAttribute("aria-pressed", String(controls.keyed));
    setText(els.ptt, controls.keyed ? "ON AIR" : "Push to talk");
    setText(els.pttHint, controls.hint);
    els.tuning.disabled = controls.tuningDisabled;
  }

  /** @param {string} text */
  setMicrophone(text) {
    setText(this.els.micStatus, text);
  }

  /** @param {string} text an announcement about transmitting (assertive live region) */
  showNotice(text) {
    setText(this.els.txNotice, text);
  }

  /**
   * Counts down to the TX time-out.
   * @param {number} remaining seconds
   */
  showTxWarning(remaining) {
    const deadline = Date.now() + remaining * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      setText(this.els.txWarning, `TX time-out in ${left} s`);
      if (left === 0) clearInterval(this._warningTimer);
    };
    clearInterval(this._warningTimer);
    tick();
    this.els.txWarning.hidden = false;
    this._warningTimer = setInterval(tick, 250);
  }

  clearTxWarning() {
    clearInterval(this._warningTimer);
    this._warningTimer = undefined;
    this.els.txWarning.hidden = true;
    setText(this.els.txWarning, "");
  }
}
