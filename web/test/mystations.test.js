// Unit tests of "my stations": the requests and what is shown. `npm test`.

process.env.TZ = "Europe/Berlin";

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MY_BOARDS_REQUEST,
  accessText,
  boardSummary,
  grantRequest,
  grantsRequest,
  parseBandList,
  parsePrice,
  releaseRequest,
  releaseWarning,
  removeGrantRequest,
  settingsForm,
  settingsRequest,
  txLogRequest,
  txLogRow,
} from "../src/mystations.js";

const ID = "4f0c8e4e-9b1a-4c1e-8d55-3b0f1f7f2a10";
const BOARD = {
  id: ID,
  name: "Home",
  access: "owner",
  online: false,
  locator: "JO62qm",
  bands: ["40m", "20m"],
  public: true,
  price_eur: "12.50",
  last_seen: null,
  paired_at: "2026-12-01T10:00:00Z",
};

test("bands and prices as typed", () => {
  assert.deepEqual(parseBandList(" 20m, 40m;2m  70cm,, "), ["20m", "40m", "2m", "70cm"]);
  assert.deepEqual(parseBandList("  "), []);
  assert.equal(parsePrice(""), null);
  assert.equal(parsePrice(" 12,5 "), "12.5");
  assert.equal(parsePrice("12.50"), "12.50");
  assert.equal(parsePrice("0"), "0");
  for (const bad of ["12.505", "-1", "€5", "1e3", "5 EUR"]) assert.equal(parsePrice(bad), undefined, bad);
});

test("the settings request: every field, empty ones as null", () => {
  const form = { name: " Home ", locator: " jo62QM ", bands: "20m, 40m", public: true, price: "" };
  assert.deepEqual(settingsRequest(ID, form), {
    request: {
      method: "PUT",
      path: `/api/boards/${ID}`,
      body: { name: "Home", locator: "jo62QM", bands: ["20m", "40m"], public: true, price_eur: null },
    },
  });
  const cleared = settingsRequest(ID, { ...form, locator: "", bands: "", public: false, price: "3" });
  assert.deepEqual(cleared.request.body, {
    name: "Home",
    locator: null,
    bands: [],
    public: false,
    price_eur: "3",
  });
  assert.deepEqual(settingsRequest(ID, { ...form, name: "", price: "abc" }), {
    problems: {
      name: "Give the station a name.",
      price_eur: "Give the price in euros an hour, like 12.50 (empty: free).",
    },
  });
});

test("a board's stored settings fill the form and read back as the same request", () => {
  const form = settingsForm(BOARD);
  assert.deepEqual(form, { name: "Home", locator: "JO62qm", bands: "40m, 20m", public: true, price: "12.50" });
  assert.deepEqual(settingsRequest(ID, form).request.body, {
    name: "Home",
    locator: "JO62qm",
    bands: ["40m", "20m"],
    public: true,
    price_eur: "12.50",
  });
  const bare = settingsForm({ ...BOARD, locator: null, bands: [], price_eur: null });
  assert.deepEqual([bare.locator, bare.bands, bare.price], ["", "", ""]);
});

test("grants, the TX log and releasing: their requests", () => {
  assert.deepEqual(grantRequest(ID, " friend@example.org ", "transmit"), {
    request: {
      method: "POST",
      path: `/api/boards/${ID}/grants`,
      body: { email: "friend@example.org", right: "transmit" },
    },
  });
  assert.deepEqual(grantRequest(ID, "", "listen"), {
    problems: { email: "Enter the email of their account." },
  });
  assert.deepEqual(grantRequest(ID, "a@b.c", "own"), { problems: { right: "Choose listen or transmit." } });
  assert.deepEqual(grantsRequest(ID), { method: "GET", path: `/api/boards/${ID}/grants` });
  assert.deepEqual(removeGrantRequest(ID, "u/1"), {
    method: "DELETE",
    path: `/api/boards/${ID}/grants/u%2F1`,
  });
  assert.deepEqual(txLogRequest(ID), { method: "GET", path: `/api/boards/${ID}/tx-log` });
  assert.deepEqual(releaseRequest(ID), { method: "DELETE", path: `/api/boards/${ID}` });
  assert.deepEqual(MY_BOARDS_REQUEST, { method: "GET", path: "/api/boards" });
});

test("what the list says about a board", () => {
  assert.equal(boardSummary(BOARD), "JO62qm · 40m, 20m · public · 12.50 € an hour");
  assert.equal(
    boardSummary({ ...BOARD, locator: null, bands: [], public: false, price_eur: null }),
    "no locator · no bands · private · free",
  );
  assert.equal(accessText("owner"), "yours");
  assert.equal(accessText("listen"), "shared with you: listen");
  assert.equal(accessText("transmit"), "shared with you: listen and transmit");
});

test("TX log rows in local time; a transmission going on is on air", () => {
  assert.deepEqual(
    txLogRow({
      callsign: "DL1ABC",
      user_id: "u1",
      started_at: "2026-12-01T18:00:00Z",
      ended_at: "2026-12-01T18:02:00Z",
      reason: "released",
    }),
    ["DL1ABC", "2026-12-01 19:00", "2026-12-01 19:02", "released"],
  );
  assert.deepEqual(
    txLogRow({ callsign: "DL1ABC", user_id: null, started_at: "2026-07-01T18:00:00Z", ended_at: null, reason: null }),
    ["DL1ABC", "2026-07-01 20:00", "on air", "—"],
  );
});

test("the release confirmation says what is lost", () => {
  const text = releaseWarning("Home");
  assert.match(text, /^Release “Home”\?/);
  for (const word of ["settings", "grants", "bookings", "TX log", "new pairing code", "new agent secret"]) {
    assert.ok(text.includes(word), word);
  }
});
