// Who is on the station (docs/protocol.md, `roster`): the operators connected to the joined
// board, the one transmitting and those waiting to talk; the "Ask to talk" toggle
// (`floor_request`) for an operator who may transmit but does not hold the floor; and, for the
// holder, a notice naming who waits. Callsigns are public (they go out on the air): the server
// shows them to everyone in the room. Text goes in as text, never as HTML.

import { byId, el } from "./dom.js";

/**
 * @typedef {{callsign: string, transmitting: boolean, waiting: boolean}} RosterEntry
 * @typedef {{listeners: readonly RosterEntry[], count: number, holder: string | null}} Roster
 * @typedef {{callsign: string | null, canTransmit: boolean, floorIsMine: boolean}} RosterContext
 *   who this page is: its account's callsign, whether it may transmit, whether it holds the floor
 */

/**
 * The `roster` message's fields, checked; null when malformed.
 * @param {any} m the parsed message
 * @returns {Readonly<Roster> | null}
 */
export function parseRoster(m) {
  if (!Array.isArray(m?.listeners) || !Number.isSafeInteger(m.count) || m.count < 0) return null;
  if (m.holder !== undefined && m.holder !== null && typeof m.holder !== "string") return null;
  /** @type {RosterEntry[]} */
  const listeners = [];
  for (const entry of m.listeners) {
    if (typeof entry?.callsign !== "string" || entry.callsign === "") return null;
    listeners.push(
      Object.freeze({
        callsign: entry.callsign,
        transmitting: entry.transmitting === true,
        waiting: entry.waiting === true,
      }),
    );
  }
  if (listeners.length > m.count) return null;
  return Object.freeze({
    listeners: Object.freeze(listeners),
    count: m.count,
    holder: typeof m.holder === "string" ? m.holder : null,
  });
}

/**
 * "DL1ABC", "DL1ABC and G4XYZ", "DL1ABC, G4XYZ and F5AAA".
 * @param {string[]} names
 * @returns {string}
 */
export function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * Callsigns of those waiting to talk, each once, in roster order.
 * @param {Readonly<Roster>} roster
 * @returns {string[]}
 */
export function waitingCallsigns(roster) {
  const names = roster.listeners.filter((e) => e.waiting && !e.transmitting).map((e) => e.callsign);
  return [...new Set(names)];
}

/**
 * The holder's notice: who waits to talk ("" when nobody does, or this page does not hold the
 * floor).
 * @param {Readonly<Roster> | null} roster
 * @param {boolean} floorIsMine
 * @returns {string}
 */
export function waitingNotice(roster, floorIsMine) {
  if (roster === null || !floorIsMine) return "";
  const names = waitingCallsigns(roster);
  if (names.length === 0) return "";
  return `${joinNames(names)} ${names.length === 1 ? "is" : "are"} waiting to talk`;
}

/**
 * What one entry says after its callsign.
 * @param {RosterEntry} entry
 * @returns {string}
 */
export function entryState(entry) {
  if (entry.transmitting) return "on the air";
  if (entry.waiting) return "waiting to talk";
  return "";
}

/**
 * Whether the roster shows this page's account waiting (the roster names callsigns, not
 * connections: another connection of the same account counts too).
 * @param {Readonly<Roster> | null} roster
 * @param {string | null} callsign
 * @returns {boolean}
 */
export function showsWaiting(roster, callsign) {
  if (roster === null || callsign === null) return false;
  return roster.listeners.some((e) => e.callsign === callsign && e.waiting && !e.transmitting);
}

/**
 * The "Ask to talk" toggle: shown to an operator who may transmit and does not hold the floor;
 * pressed while the request stands (as sent and not yet contradicted, then as the roster says).
 * @param {RosterContext} context
 * @param {boolean} asked what the page believes its request is
 * @param {boolean} channelOpen a request can go out now
 * @returns {{shown: boolean, pressed: boolean, disabled: boolean, text: string}}
 */
export function askButton(context, asked, channelOpen) {
  const shown = context.canTransmit && !context.floorIsMine;
  const pressed = shown && asked;
  return {
    shown,
    pressed,
    disabled: !channelOpen,
    text: pressed ? "Waiting to talk (withdraw)" : "Ask to talk",
  };
}

/**
 * The `<section id="roster">` of the station card.
 */
export class RosterPanel {
  /**
   * @param {{
   *   document: Document,
   *   send: (message: {type: string, state: boolean}) => boolean,
   *   context: () => RosterContext,
   *   channelOpen: () => boolean,
   * }} options `send` puts a message on the control channel (false: it could not go out)
   */
  constructor({ document, send, context, channelOpen }) {
    this._doc = document;
    this._send = send;
    this._context = context;
    this._channelOpen = channelOpen;
    this.els = {
      section: byId(document, "roster"),
      count: byId(document, "roster-count"),
      list: byId(document, "roster-list"),
      more: byId(document, "roster-more"),
      notice: byId(document, "roster-notice"),
      ask: /** @type {HTMLButtonElement} */ (byId(document, "roster-ask")),
    };
    /** @type {Readonly<Roster> | null} */
    this.roster = null;
    /** @type {boolean | null} a request sent and not yet seen in a roster (null: none) */
    this._pending = null;
    this.els.ask.addEventListener("click", () => this.toggle());
  }

  /** Whether the page's request to talk stands (as far as it knows). */
  get asked() {
    return this._pending ?? showsWaiting(this.roster, this._context().callsign);
  }

  /** Sends `floor_request` for the opposite of the current state. */
  toggle() {
    const state = !this.asked;
    if (!this._send({ type: "floor_request", state })) return;
    this._pending = state;
    this.render();
  }

  /** @param {Readonly<Roster>} roster a `roster` received */
  update(roster) {
    this.roster = roster;
    if (this._pending !== null && showsWaiting(roster, this._context().callsign) === this._pending) {
      this._pending = null; // the server has it
    }
    this.render();
  }

  /** The server refused the request (`error` with `ref` `floor_request`): it does not stand. */
  refused() {
    this._pending = null;
    this.render();
  }

  /** Leaving the station: nothing to show. */
  reset() {
    this.roster = null;
    this._pending = null;
    this.render();
  }

  /** Shows the roster, the toggle and the holder's notice as they are now. */
  render() {
    const { els } = this;
    const roster = this.roster;
    const context = this._context();
    if (context.floorIsMine) this._pending = null; // granted: the server cleared the request
    els.section.hidden = roster === null;
    if (roster === null) {
      els.list.replaceChildren();
      els.notice.hidden = true;
      els.notice.textContent = "";
      els.ask.hidden = true;
      return;
    }
    els.count.textContent = String(roster.count);
    els.list.replaceChildren(...roster.listeners.map((entry) => this._item(entry)));
    const unlisted = roster.count - roster.listeners.length;
    els.more.hidden = unlisted <= 0;
    els.more.textContent = unlisted > 0 ? `and ${unlisted} more` : "";
    const notice = waitingNotice(roster, context.floorIsMine);
    if (els.notice.textContent !== notice) els.notice.textContent = notice; // read out once
    els.notice.hidden = notice === "";
    const ask = askButton(context, this.asked, this._channelOpen());
    els.ask.hidden = !ask.shown;
    els.ask.disabled = ask.disabled;
    els.ask.setAttribute("aria-pressed", String(ask.pressed));
    els.ask.textContent = ask.text;
  }

  /**
   * @param {RosterEntry} entry
   * @returns {HTMLElement}
   */
  _item(entry) {
    const state = entryState(entry);
    const className = entry.transmitting
      ? "roster-item roster-tx"
      : entry.waiting
        ? "roster-item roster-waiting"
        : "roster-item";
    const item = el(this._doc, "li", { className }, el(this._doc, "span", { text: entry.callsign }));
    if (state !== "") {
      item.append(" ", el(this._doc, "span", { className: "roster-state", text: state }));
    }
    return item;
  }
}
