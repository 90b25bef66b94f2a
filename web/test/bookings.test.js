// Unit tests of "my bookings". `npm test`.

process.env.TZ = "Europe/Berlin";

import assert from "node:assert/strict";
import { test } from "node:test";

import { MY_BOOKINGS_REQUEST, bookingLine, cancelBookingRequest } from "../src/bookings.js";

test("listing and cancelling: the requests", () => {
  assert.deepEqual(MY_BOOKINGS_REQUEST, { method: "GET", path: "/api/bookings" });
  assert.deepEqual(cancelBookingRequest("b-1"), { method: "DELETE", path: "/api/bookings/b-1" });
  assert.equal(cancelBookingRequest("../x").path, "/api/bookings/..%2Fx");
});

test("a booking as listed, in local time", () => {
  const booking = {
    booking_id: "b-1",
    board_id: "s-1",
    board_name: "Home",
    user_id: "u-1",
    callsign: "DL2XYZ",
    start: "2026-12-01T18:00:00Z",
    end: "2026-12-01T19:00:00Z",
    price_eur: "12.50",
  };
  assert.deepEqual(bookingLine(booking), {
    station: "Home",
    when: "2026-12-01 19:00–20:00 (your time)",
    price: "12.50 €",
  });
  assert.equal(bookingLine({ ...booking, price_eur: null }).price, "free");
});
