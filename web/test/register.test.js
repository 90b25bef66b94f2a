// Unit tests of registration: what is sent, and where refusals are shown. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { placeError } from "../src/forms.js";
import { ERROR_CODES } from "../src/protocol.js";
import {
  REGISTER_FIELDS,
  register,
  registerRequest,
  registrationError,
  registrationProblems,
} from "../src/register.js";

const FIELDS = Object.keys(REGISTER_FIELDS);

test("empty fields are caught before anything is sent, each by name", () => {
  assert.deepEqual(registrationProblems({ email: " ", password: "", callsign: "" }), {
    email: "Enter your email address.",
    password: "Choose a password.",
    callsign: "Enter your callsign.",
  });
  assert.deepEqual(registrationProblems({ email: "a@b.c", password: " ", callsign: "x" }), {});
});

test("the request: email and callsign trimmed, the callsign upper-case, the password as typed", () => {
  assert.deepEqual(
    registerRequest({ email: " ham@example.org ", password: " secret pw ", callsign: " dl1abc/p " }),
    {
      method: "POST",
      path: "/api/auth/register",
      body: { email: "ham@example.org", password: " secret pw ", callsign: "DL1ABC/P" },
    },
  );
});

test("a taken email is said so, next to the email field", () => {
  const error = registrationError(
    new ApiError(ERROR_CODES.CONFLICT, "email already registered", { status: 409 }),
  );
  assert.deepEqual(placeError(error, FIELDS), {
    field: "email",
    message: "An account with this email already exists: sign in instead.",
  });
});

/** A fetch stand-in answering one reply. */
function answering(status, body) {
  const sent = [];
  const fetchFn = async (url, init) => {
    sent.push({ url, body: JSON.parse(init.body) });
    return {
      ok: status < 300,
      status,
      headers: { get: () => null },
      json: async () => body,
    };
  };
  return { fetchFn, sent };
}

test("a registration signs in: the reply is a sign-in", async () => {
  const { fetchFn, sent } = answering(201, {
    token: "jwt",
    expires_in: 900,
    callsign: "DL1ABC",
    user_id: "u1",
    refresh_token: "r",
    refresh_expires_in: 2592000,
  });
  const session = await register({ email: "a@b.c", password: "0123456789", callsign: "dl1abc" }, fetchFn);
  assert.deepEqual(session, {
    token: "jwt",
    expiresIn: 900,
    callsign: "DL1ABC",
    refreshToken: "r",
    refreshExpiresIn: 2592000,
  });
  assert.equal(sent[0].url, "/api/auth/register");
});

test("a 422 is shown next to the field it names", async () => {
  const { fetchFn } = answering(422, {
    error: {
      code: "bad_request",
      message: "callsign must be an amateur radio callsign such as DL1ABC",
      field: "callsign",
    },
  });
  const refused = await register({ email: "a@b.c", password: "0123456789", callsign: "ABC" }, fetchFn).then(
    () => assert.fail("accepted"),
    (err) => err,
  );
  assert.deepEqual(placeError(refused, FIELDS), {
    field: "callsign",
    message: "callsign must be an amateur radio callsign such as DL1ABC",
  });
  // a field the form does not have goes above the button
  const other = new ApiError(ERROR_CODES.BAD_REQUEST, "x: no", { status: 422, field: "x" });
  assert.deepEqual(placeError(other, FIELDS), { field: null, message: "x: no" });
  assert.deepEqual(placeError(new Error("boom"), FIELDS), { field: null, message: "boom" });
});
