// Unit tests of the REST client: request building, error mapping, the 401 retry. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  API_TIMEOUT_MS,
  ApiClient,
  ApiError,
  NO_CODE,
  UNREACHABLE,
  apiError,
  fetchArguments,
  requestUrl,
  retryAfterSeconds,
  segment,
  send,
  waitText,
} from "../src/api.js";
import { ConsoleError } from "../src/errors.js";
import { ERROR_CODES } from "../src/protocol.js";

/** A fetch stand-in answering from `answer(url, init)` ({status, body, headers}); records calls. */
function fakeFetch(answer) {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, init, body: init.body === undefined ? undefined : JSON.parse(init.body) });
    const reply = await answer(url, init);
    const headers = new Map(Object.entries(reply.headers ?? {}));
    return {
      ok: reply.status >= 200 && reply.status < 300,
      status: reply.status,
      headers: { get: (name) => headers.get(name) ?? null },
      json: async () => {
        if (reply.body === undefined) throw new SyntaxError("no JSON");
        return reply.body;
      },
    };
  };
  return { fetchFn, calls };
}

test("an error answer keeps its code, message and the field a 422 names", () => {
  const refused = apiError(422, {
    error: { code: "bad_request", message: "callsign must be …", field: "callsign" },
  });
  assert.ok(refused instanceof ApiError && refused instanceof ConsoleError);
  assert.equal(refused.code, ERROR_CODES.BAD_REQUEST);
  assert.equal(refused.message, "callsign must be …");
  assert.equal(refused.field, "callsign");
  assert.equal(refused.status, 422);

  const conflict = apiError(409, { error: { code: "conflict", message: "overlaps" } });
  assert.equal(conflict.code, ERROR_CODES.CONFLICT);
  assert.equal(conflict.field, null);
});

test("an error answer that is not the API's says the HTTP status", () => {
  for (const body of [null, "<html>", { error: "x" }, { error: { code: 5, message: "" } }]) {
    const error = apiError(502, body);
    assert.equal(error.code, NO_CODE);
    assert.equal(error.message, "The server refused the request (HTTP 502).");
    assert.equal(error.field, null);
  }
});

test("a 429 says how long to wait", () => {
  const limited = apiError(
    429,
    { error: { code: "rate_limited", message: "too many pairing attempts; try again later" } },
    "125",
  );
  assert.equal(limited.retryAfterS, 125);
  assert.equal(limited.message, "too many pairing attempts; try again later (try again in 3 min)");
  assert.equal(apiError(429, { error: { code: "rate_limited", message: "m" } }).message, "m");
  assert.equal(retryAfterSeconds(" 7 "), 7);
  assert.equal(retryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT"), null);
  assert.equal(retryAfterSeconds(null), null);
  assert.deepEqual(
    [0, 1.2, 59, 60, 61, 3599, 3600, 3900].map(waitText),
    ["0 s", "2 s", "59 s", "1 min", "2 min", "1 h", "1 h", "1 h 5 min"],
  );
});

test("the URL leaves empty query parameters out; ids cannot change the path", () => {
  assert.equal(requestUrl("/api/stations", { grid: " JO62 ", bands: "" }), "/api/stations?grid=JO62");
  assert.equal(requestUrl("/api/stations", { grid: "", bands: null }), "/api/stations");
  assert.equal(
    requestUrl("/api/stations", { grid: "jo", bands: "20m,40m" }),
    "/api/stations?grid=jo&bands=20m%2C40m",
  );
  assert.equal(segment("../x?y#z"), "..%2Fx%3Fy%23z");
});

test("what fetch is given: method, JSON, the token, no cache", () => {
  const { url, init } = fetchArguments(
    { method: "PUT", path: "/api/boards/b1", body: { name: "Home" } },
    "jwt",
  );
  assert.equal(url, "/api/boards/b1");
  assert.deepEqual(init, {
    method: "PUT",
    headers: {
      Accept: "application/json",
      Authorization: "Bearer jwt",
      "Content-Type": "application/json",
    },
    cache: "no-store",
    body: '{"name":"Home"}',
  });
  const bare = fetchArguments({ method: "GET", path: "/api/bookings" }, null).init;
  assert.deepEqual(bare, { method: "GET", headers: { Accept: "application/json" }, cache: "no-store" });
});

test("send: the JSON answer, null for 204, ApiError for a refusal", async () => {
  const { fetchFn, calls } = fakeFetch((url) => {
    if (url === "/ok") return { status: 200, body: { boards: [] } };
    if (url === "/none") return { status: 204 };
    return { status: 404, body: { error: { code: "not_found", message: "no such board" } } };
  });
  assert.deepEqual(await send({ method: "GET", path: "/ok" }, { token: "t", fetchFn }), { boards: [] });
  assert.equal(await send({ method: "DELETE", path: "/none" }, { fetchFn }), null);
  await assert.rejects(send({ method: "GET", path: "/gone" }, { fetchFn }), {
    name: "ApiError",
    code: ERROR_CODES.NOT_FOUND,
    message: "no such board",
    status: 404,
  });
  assert.equal(calls[0].init.headers.Authorization, "Bearer t");
  assert.equal(calls[1].init.headers.Authorization, undefined);
  assert.ok(calls[0].init.signal instanceof AbortSignal);
});

test("send: a server that cannot be reached, or does not answer, is `unreachable`", async () => {
  const { fetchFn } = fakeFetch(() => {
    throw new TypeError("Failed to fetch");
  });
  await assert.rejects(send({ method: "GET", path: "/x" }, { fetchFn }), {
    code: UNREACHABLE,
    message: "Cannot reach the server: Failed to fetch.",
    status: 0,
  });

  // a request that hangs is aborted by the timer
  let fire = () => {};
  const timers = {
    setTimeout: (fn, ms) => {
      assert.equal(ms, API_TIMEOUT_MS);
      fire = fn;
      return 1;
    },
    clearTimeout: () => {},
  };
  const hanging = (url, init) =>
    new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted"))));
  const pending = send({ method: "GET", path: "/x" }, { fetchFn: hanging, timers });
  fire();
  await assert.rejects(pending, {
    code: UNREACHABLE,
    message: `Cannot reach the server: no answer within ${API_TIMEOUT_MS / 1000} s.`,
  });
});

test("ApiClient: a 401 is retried once with a renewed token, other refusals are not", async () => {
  let valid = "fresh";
  const { fetchFn, calls } = fakeFetch((url, init) => {
    if (init.headers.Authorization !== `Bearer ${valid}`) {
      return { status: 401, body: { error: { code: "unauthorized", message: "expired" } } };
    }
    if (url === "/forbidden") return { status: 403, body: { error: { code: "forbidden", message: "no" } } };
    return { status: 200, body: { ok: 1 } };
  });
  let renewals = 0;
  const client = new ApiClient({
    token: async () => "stale",
    renew: async () => {
      renewals += 1;
      return "fresh";
    },
    fetchFn,
  });
  assert.deepEqual(await client.send({ method: "GET", path: "/ok" }), { ok: 1 });
  assert.equal(renewals, 1);
  assert.deepEqual(
    calls.map((c) => c.init.headers.Authorization),
    ["Bearer stale", "Bearer fresh"],
  );

  valid = "never";
  await assert.rejects(client.send({ method: "GET", path: "/ok" }), { code: ERROR_CODES.UNAUTHORIZED });
  assert.equal(renewals, 2, "one renewal per request, not a loop");

  valid = "stale";
  await assert.rejects(client.send({ method: "GET", path: "/forbidden" }), { code: ERROR_CODES.FORBIDDEN });
  assert.equal(renewals, 2);
});
