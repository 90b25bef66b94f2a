// Public stations (docs/protocol.md, REST: `GET /api/stations?grid=…&bands=…`) and booking one
// (`POST /api/stations/{id}/book`): filters by Maidenhead grid prefix and bands, the list, and
// a booking form whose start is typed in local time and sent in UTC. An overlap with another
// booking (409 `conflict`, decided by the database) is said plainly. The requests and texts
// are pure (node:test covers them); `PublicStationsPage` keeps the page in step.

import { segment } from "./api.js";
import { button, byId, el } from "./dom.js";
import { FormErrors } from "./forms.js";
import {
  localInputToUtc,
  localInputValue,
  localWindow,
  nextQuarterHour,
  parseLocalInput,
  parseMinutes,
  utcOffsetText,
} from "./localtime.js";
import { parseBandList, priceText, renderPresence } from "./mystations.js";
import { ERROR_CODES } from "./protocol.js";
import { setText } from "./view.js";

/**
 * @typedef {import("./api.js").ApiRequest} ApiRequest
 * @typedef {{
 *   id: string, name: string, owner_callsign: string, locator: string | null, bands: string[],
 *   price_eur: string | null, online: boolean, last_seen: string | null,
 * }} StationView `GET /api/stations`' entries
 * @typedef {{
 *   booking_id: string, board_id: string, start: string, end: string, price_eur: string | null,
 * }} BookingReply
 */

/** The filter form's fields (the query's names) -> the inputs' ids. */
export const FILTER_FIELDS = Object.freeze({ grid: "filter-grid", bands: "filter-bands" });
/** The booking form's fields -> the inputs' ids. */
export const BOOK_FIELDS = Object.freeze({ start: "book-start", duration_minutes: "book-duration" });

/**
 * The stations request for the filters as typed (empty ones left out; bands comma-separated).
 * @param {string} grid
 * @param {string} bands
 * @returns {ApiRequest}
 */
export function stationsRequest(grid, bands) {
  return {
    method: "GET",
    path: "/api/stations",
    query: { grid: grid.trim(), bands: parseBandList(bands).join(",") },
  };
}

/**
 * The booking request for the form's start (local time) and duration, or the problems first.
 * @param {string} boardId
 * @param {string} startLocal a `datetime-local` value
 * @param {string} duration minutes, as typed
 * @returns {{request: ApiRequest} | {problems: Record<string, string>}}
 */
export function bookRequest(boardId, startLocal, duration) {
  /** @type {Record<string, string>} */
  const problems = {};
  const start = localInputToUtc(startLocal);
  if ("error" in start) problems.start = start.error;
  const minutes = parseMinutes(duration);
  if ("error" in minutes) problems.duration_minutes = minutes.error;
  if ("error" in start || "error" in minutes) return { problems };
  return {
    request: {
      method: "POST",
      path: `/api/stations/${segment(boardId)}/book`,
      body: { start: start.utc, duration_minutes: minutes.minutes },
    },
  };
}

/**
 * A refusal in the operator's words: an overlap says the time is taken.
 * @param {import("./api.js").ApiError} error
 * @param {string} stationName
 * @returns {import("./api.js").ApiError}
 */
export function bookingError(error, stationName) {
  if (error.code === ERROR_CODES.CONFLICT) {
    error.message =
      `Already booked: “${stationName}” is booked for part of that time. ` +
      "Choose another start or a shorter duration.";
  } else if (error.code === ERROR_CODES.FORBIDDEN) {
    error.message = `The owner of “${stationName}” does not let you book it.`;
  } else if (error.code === ERROR_CODES.NOT_FOUND) {
    error.message = `“${stationName}” is no longer public: it cannot be booked.`;
  }
  return error;
}

/**
 * What a booking is, for the operator: "“Name”, 2026-12-01 19:00–19:30 (your time), free".
 * @param {{start: string, end: string, price_eur: string | null}} booking
 * @param {string} stationName
 */
export function bookingText(booking, stationName) {
  const price = booking.price_eur === null ? "free" : `${booking.price_eur} €`;
  return `“${stationName}”, ${localWindow(booking.start, booking.end)} (your time), ${price}`;
}

/**
 * One line about a public station: "DL1ABC · JO62qm · 20m, 40m · free".
 * @param {StationView} station
 */
export function stationSummary(station) {
  return [
    station.owner_callsign,
    station.locator ?? "no locator",
    station.bands.length > 0 ? station.bands.join(", ") : "no bands",
    priceText(station.price_eur),
  ].join(" · ");
}

/**
 * @typedef {{
 *   send: (request: ApiRequest) => Promise<any>,
 *   now?: () => Date,
 * }} PublicStationsActions `now`: the clock the booking form's default start is read on
 */

export class PublicStationsPage {
  /**
   * @param {Document} doc
   * @param {PublicStationsActions} actions
   */
  constructor(doc, actions) {
    this._doc = doc;
    this._actions = actions;
    this._now = actions.now ?? (() => new Date());
    const get = (/** @type {string} */ id) => byId(doc, id);
    this.els = {
      filterForm: /** @type {HTMLFormElement} */ (get("stations-filter")),
      grid: /** @type {HTMLInputElement} */ (get("filter-grid")),
      bands: /** @type {HTMLInputElement} */ (get("filter-bands")),
      status: get("public-status"),
      list: get("public-list"),
      book: get("book"),
      bookName: get("book-name"),
      bookForm: /** @type {HTMLFormElement} */ (get("book-form")),
      start: /** @type {HTMLInputElement} */ (get("book-start")),
      startHint: get("book-start-hint"),
      duration: /** @type {HTMLInputElement} */ (get("book-duration")),
      bookSubmit: /** @type {HTMLButtonElement} */ (get("book-submit")),
      bookClose: /** @type {HTMLButtonElement} */ (get("book-close")),
      bookResult: get("book-result"),
    };
    this._filterErrors = new FormErrors(doc, FILTER_FIELDS, "filter-error");
    this._bookErrors = new FormErrors(doc, BOOK_FIELDS, "book-error");
    /** @type {Map<string, StationView>} */
    this._stations = new Map();
    /** @type {StationView | null} the station the booking form is for */
    this._booking = null;
    this._generation = 0;

    this.els.filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.search();
    });
    this.els.bookForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this._book();
    });
    this.els.bookClose.addEventListener("click", () => this._closeBooking());
    this.els.start.addEventListener("input", () => this._renderOffset());
  }

  /** Lists the stations the filters select. */
  async search() {
    const generation = ++this._generation;
    const els = this.els;
    this._filterErrors.clear();
    setText(els.status, "Searching…");
    try {
      const reply = await this._actions.send(stationsRequest(els.grid.value, els.bands.value));
      if (generation !== this._generation) return;
      const stations = Array.isArray(reply?.stations) ? reply.stations : [];
      this._stations = new Map(stations.map((/** @type {StationView} */ s) => [s.id, s]));
      this._render();
      const count = stations.length;
      setText(
        els.status,
        count === 0
          ? "No public station matches."
          : `${count} public station${count === 1 ? "" : "s"}.`,
      );
    } catch (err) {
      if (generation !== this._generation) return;
      setText(els.status, "");
      this._filterErrors.show(err);
    }
  }

  /** Forgets everything (signed out). */
  clear() {
    this._generation += 1;
    this._stations.clear();
    this._render();
    this._closeBooking();
    setText(this.els.status, "");
  }

  /**
   * @param {string} boardId
   * @param {boolean} online
   */
  presence(boardId, online) {
    const station = this._stations.get(boardId);
    if (station === undefined) return;
    station.online = online;
    this._render();
  }

  _render() {
    const doc = this._doc;
    const items = [...this._stations.values()].map((station) => {
      const presence = el(doc, "span");
      renderPresence(presence, station.online);
      return el(
        doc,
        "li",
        { className: "public-station", data: { boardId: station.id } },
        el(doc, "span", { className: "board-name", text: station.name }),
        presence,
        el(doc, "span", { className: "board-summary muted", text: stationSummary(station) }),
        button(doc, "Book", () => this._openBooking(station), {
          className: "secondary",
          attrs: { "aria-label": `Book ${station.name}` },
        }),
      );
    });
    this.els.list.replaceChildren(...items);
    if (this._booking !== null && !this._stations.has(this._booking.id)) this._closeBooking();
  }

  /** @param {StationView} station */
  _openBooking(station) {
    const els = this.els;
    const changed = this._booking?.id !== station.id;
    this._booking = station;
    setText(els.bookName, station.name);
    if (changed || els.start.value === "") {
      els.start.value = localInputValue(nextQuarterHour(this._now()));
      this._bookErrors.clear();
      setText(els.bookResult, "");
    }
    this._renderOffset();
    els.book.hidden = false;
    els.start.focus();
  }

  _closeBooking() {
    this._booking = null;
    this.els.book.hidden = true;
    this._bookErrors.clear();
    setText(this.els.bookResult, "");
  }

  /** The hint says which clock the start is read on (its offset on that day). */
  _renderOffset() {
    const date = parseLocalInput(this.els.start.value) ?? this._now();
    setText(this.els.startHint, `Your local time (${utcOffsetText(date)}).`);
  }

  async _book() {
    const station = this._booking;
    if (station === null) return;
    const els = this.els;
    setText(els.bookResult, "");
    const built = bookRequest(station.id, els.start.value, els.duration.value);
    if ("problems" in built) {
      this._bookErrors.showFields(built.problems);
      return;
    }
    this._bookErrors.clear();
    els.bookSubmit.disabled = true;
    try {
      /** @type {BookingReply} */
      const booking = await this._actions.send(built.request);
      setText(els.bookResult, `Booked: ${bookingText(booking, station.name)}. See “My bookings”.`);
    } catch (err) {
      this._bookErrors.show(bookingError(/** @type {any} */ (err), station.name));
    } finally {
      els.bookSubmit.disabled = false;
    }
  }
}
