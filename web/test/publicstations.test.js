// Unit tests of public stations and booking: filters, local time to UTC, refusals. `npm test`.

process.env.TZ = "Europe/Berlin";

import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, requestUrl } from "../src/api.js";
import { placeError } from "../src/forms.js";
import { ERROR_CODES } from "../src/protocol.js";
import {
  BOOK_FIELDS,
  bookRequest,
  bookingError,
  bookingText,
  stationSummary,
  stationsRequest,
} from "../src/publicstations.js";

const ID = "4f0c8e4e-9b1a-4c1e-8d55-3b0f1f7f2a10";

test("the filters as the stations query; empty ones left out", () => {
  const request = stationsRequest(" JO62 ", "20m 40m");
  assert.deepEqual(request, {
    method: "GET",
    path: "/api/stations",
    query: { grid: "JO62", bands: "20m,40m" },
  });
  assert.equal(requestUrl(request.path, request.query), "/api/stations?grid=JO62&bands=20m%2C40m");
  const all = stationsRequest("", " ");
  assert.equal(requestUrl(all.path, all.query), "/api/stations");
});

test("a booking starts at the local time typed, sent in UTC", () => {
  assert.deepEqual(bookRequest(ID, "2026-12-01T19:00", "30"), {
    request: {
      method: "POST",
      path: `/api/stations/${ID}/book`,
      body: { start: "2026-12-01T18:00:00Z", duration_minutes: 30 },
    },
  });
  assert.equal(bookRequest(ID, "2026-07-01T19:00", "15").request.body.start, "2026-07-01T17:00:00Z");
  const both = bookRequest(ID, "", "x");
  assert.deepEqual(Object.keys(both.problems).sort(), ["duration_minutes", "start"]);
  assert.deepEqual(Object.keys(bookRequest(ID, "2026-03-29T02:30", "30").problems), ["start"]);
});

test("an overlap says plainly that the time is taken", () => {
  const conflict = bookingError(
    new ApiError(ERROR_CODES.CONFLICT, "the window overlaps another booking", { status: 409 }),
    "Home",
  );
  assert.deepEqual(placeError(conflict, Object.keys(BOOK_FIELDS)), {
    field: null,
    message:
      "Already booked: “Home” is booked for part of that time. " +
      "Choose another start or a shorter duration.",
  });
  assert.match(bookingError(new ApiError(ERROR_CODES.FORBIDDEN, "blocked"), "Home").message, /does not let you/);
  assert.match(bookingError(new ApiError(ERROR_CODES.NOT_FOUND, "no such station"), "Home").message, /no longer public/);
  // a start the server refuses is shown at the start field
  const past = bookingError(
    new ApiError(ERROR_CODES.BAD_REQUEST, "start must not be in the past", { field: "start" }),
    "Home",
  );
  assert.deepEqual(placeError(past, Object.keys(BOOK_FIELDS)), {
    field: "start",
    message: "start must not be in the past",
  });
});

test("a booking and a station as shown", () => {
  const booking = { start: "2026-12-01T18:00:00Z", end: "2026-12-01T18:30:00Z", price_eur: "6.25" };
  assert.equal(bookingText(booking, "Home"), "“Home”, 2026-12-01 19:00–19:30 (your time), 6.25 €");
  assert.equal(bookingText({ ...booking, price_eur: null }, "Home").endsWith("(your time), free"), true);
  assert.equal(
    stationSummary({
      id: ID,
      name: "Home",
      owner_callsign: "DL1ABC",
      locator: "JO62qm",
      bands: ["40m", "20m"],
      price_eur: null,
      online: true,
      last_seen: null,
    }),
    "DL1ABC · JO62qm · 40m, 20m · free",
  );
});
