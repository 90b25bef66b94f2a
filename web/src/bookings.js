// My bookings (docs/protocol.md, REST: `GET /api/bookings`, `DELETE /api/bookings/{id}`): the
// operator's bookings that are neither over nor cancelled, in local time, each with a button
// that cancels it. Requests and texts are pure (node:test covers them).

import { segment } from "./api.js";
import { button, byId, el } from "./dom.js";
import { localWindow } from "./localtime.js";
import { setText } from "./view.js";

/**
 * @typedef {import("./api.js").ApiRequest} ApiRequest
 * @typedef {{
 *   booking_id: string, board_id: string, board_name: string, user_id: string,
 *   callsign: string, start: string, end: string, price_eur: string | null,
 * }} BookingView
 */

/** @type {ApiRequest} */
export const MY_BOOKINGS_REQUEST = Object.freeze({ method: "GET", path: "/api/bookings" });

/**
 * @param {string} bookingId
 * @returns {ApiRequest}
 */
export function cancelBookingRequest(bookingId) {
  return { method: "DELETE", path: `/api/bookings/${segment(bookingId)}` };
}

/**
 * A booking as listed: the station, the window in local time, the price.
 * @param {BookingView} booking
 * @returns {{station: string, when: string, price: string}}
 */
export function bookingLine(booking) {
  return {
    station: booking.board_name,
    when: `${localWindow(booking.start, booking.end)} (your time)`,
    price: booking.price_eur === null ? "free" : `${booking.price_eur} €`,
  };
}

export class BookingsPage {
  /**
   * @param {Document} doc
   * @param {{send: (request: ApiRequest) => Promise<any>}} actions
   */
  constructor(doc, actions) {
    this._doc = doc;
    this._actions = actions;
    this.els = { status: byId(doc, "bookings-status"), list: byId(doc, "bookings-list") };
    this._generation = 0;
  }

  /** Reads the bookings again. */
  async load() {
    const generation = ++this._generation;
    try {
      const reply = await this._actions.send(MY_BOOKINGS_REQUEST);
      if (generation !== this._generation) return;
      this._render(Array.isArray(reply?.bookings) ? reply.bookings : []);
    } catch (err) {
      if (generation === this._generation) {
        setText(this.els.status, `Cannot list your bookings: ${/** @type {Error} */ (err).message}`);
      }
    }
  }

  /** Forgets everything (signed out). */
  clear() {
    this._generation += 1;
    this.els.list.replaceChildren();
    setText(this.els.status, "");
  }

  /** @param {BookingView[]} bookings */
  _render(bookings) {
    const doc = this._doc;
    const items = bookings.map((booking) => {
      const line = bookingLine(booking);
      return el(
        doc,
        "li",
        { className: "booking", data: { bookingId: booking.booking_id } },
        el(doc, "span", { className: "board-name", text: line.station }),
        el(doc, "span", { text: line.when }),
        el(doc, "span", { className: "muted", text: line.price }),
        button(doc, "Cancel", () => void this._cancel(booking), {
          className: "secondary",
          attrs: { "aria-label": `Cancel the booking of ${line.station} at ${line.when}` },
        }),
      );
    });
    this.els.list.replaceChildren(...items);
    setText(this.els.status, items.length === 0 ? "No bookings." : "");
  }

  /** @param {BookingView} booking */
  async _cancel(booking) {
    const generation = ++this._generation;
    try {
      await this._actions.send(cancelBookingRequest(booking.booking_id));
    } catch (err) {
      setText(this.els.status, `Cannot cancel: ${/** @type {Error} */ (err).message}`);
      return;
    }
    let left = "";
    try {
      const reply = await this._actions.send(MY_BOOKINGS_REQUEST);
      if (generation !== this._generation) return;
      const bookings = Array.isArray(reply?.bookings) ? reply.bookings : [];
      this._render(bookings);
      if (bookings.length === 0) left = " No bookings left.";
    } catch {
      // the list stays as it was (without the cancelled one); the next visit reads it again
      this.els.list.querySelector(`[data-booking-id="${CSS.escape(booking.booking_id)}"]`)?.remove();
    }
    setText(this.els.status, `Cancelled: ${booking.board_name}.${left}`);
  }
}
