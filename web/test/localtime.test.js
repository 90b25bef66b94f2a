// Unit tests of local time <-> UTC for bookings, on a clock with summer time: `npm test`.

// Before any date is made: Central European Time, UTC+1 in winter, UTC+2 in summer.
process.env.TZ = "Europe/Berlin";

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  localInputToUtc,
  localInputValue,
  localText,
  localWindow,
  nextQuarterHour,
  parseLocalInput,
  parseMinutes,
  utcOffsetText,
  utcText,
} from "../src/localtime.js";

test("the test runs on Berlin's clock", () => {
  assert.equal(new Date("2026-01-15T12:00:00Z").getTimezoneOffset(), -60);
  assert.equal(new Date("2026-07-15T12:00:00Z").getTimezoneOffset(), -120);
});

test("a local start is sent in UTC, with the offset of its own day", () => {
  assert.deepEqual(localInputToUtc("2026-12-01T19:00"), { utc: "2026-12-01T18:00:00Z" });
  assert.deepEqual(localInputToUtc("2026-07-01T19:00"), { utc: "2026-07-01T17:00:00Z" });
  assert.deepEqual(localInputToUtc(" 2026-07-01T00:30 "), { utc: "2026-06-30T22:30:00Z" });
  assert.deepEqual(localInputToUtc("2026-12-31T23:45:30"), { utc: "2026-12-31T22:45:30Z" });
  // either side of the change to summer time (29 March 2026, 02:00 -> 03:00)
  assert.deepEqual(localInputToUtc("2026-03-29T01:59"), { utc: "2026-03-29T00:59:00Z" });
  assert.deepEqual(localInputToUtc("2026-03-29T03:00"), { utc: "2026-03-29T01:00:00Z" });
});

test("a start that is not a time on this clock is refused, saying why", () => {
  assert.deepEqual(localInputToUtc(""), { error: "Choose when the booking starts." });
  const skipped = localInputToUtc("2026-03-29T02:30");
  assert.match(skipped.error, /^2026-03-29 02:30 does not exist on your clock/);
  assert.ok("error" in localInputToUtc("2026-02-30T10:00"), "no 30 February");
  assert.ok("error" in localInputToUtc("2026-12-01 19:00"), "a datetime-local value has a T");
  assert.ok("error" in localInputToUtc("tomorrow"));
  assert.equal(parseLocalInput("2026-13-01T10:00"), null);
});

test("times from the API are shown on the local clock", () => {
  assert.equal(localText("2026-12-01T18:00:00Z"), "2026-12-01 19:00");
  assert.equal(localText("2026-07-01T17:00:00+00:00"), "2026-07-01 19:00");
  assert.equal(localText("nonsense"), "nonsense");
  assert.equal(localWindow("2026-12-01T18:00:00Z", "2026-12-01T18:30:00Z"), "2026-12-01 19:00–19:30");
  assert.equal(
    localWindow("2026-12-01T22:30:00Z", "2026-12-01T23:30:00Z"),
    "2026-12-01 23:30 – 2026-12-02 00:30",
  );
});

test("the form's default start: the next quarter of an hour, as a field value", () => {
  const now = new Date(2026, 11, 1, 18, 7, 42);
  assert.equal(localInputValue(nextQuarterHour(now)), "2026-12-01T18:15");
  assert.equal(localInputValue(nextQuarterHour(new Date(2026, 11, 1, 18, 0, 0))), "2026-12-01T18:15");
  assert.equal(localInputValue(nextQuarterHour(new Date(2026, 11, 31, 23, 50))), "2027-01-01T00:00");
  // a field value read back is the same instant
  const value = localInputValue(now);
  assert.equal(value, "2026-12-01T18:07");
  assert.equal(utcText(/** @type {Date} */ (parseLocalInput(value))), "2026-12-01T17:07:00Z");
});

test("the clock's offset for the hint, on the day chosen", () => {
  assert.equal(utcOffsetText(new Date(2026, 0, 15)), "UTC+01:00");
  assert.equal(utcOffsetText(new Date(2026, 6, 15)), "UTC+02:00");
});

test("a duration in whole minutes", () => {
  assert.deepEqual(parseMinutes(" 30 "), { minutes: 30 });
  for (const bad of ["", "0", "-15", "1.5", "abc", "15m"]) {
    assert.ok("error" in parseMinutes(bad), bad);
  }
});
