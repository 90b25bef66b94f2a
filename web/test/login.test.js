// Unit tests of signing in, with a stand-in for fetch.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConsoleError } from "../src/errors.js";
import { loginReply, signIn } from "../src/login.js";

test("a good login gives the token and callsign", () => {
  assert.deepEqual(loginReply({ ok: true, status: 200 }, { token: "t", callsign: "DL1ABC" }), {
    token: "t",
    callsign: "DL1ABC",
  });
  assert.deepEqual(loginReply({ ok: true, status: 200 }, { token: "t" }), {
    token: "t",
    callsign: null,
  });
});

test("a refused login is the server's error, or says the HTTP status", () => {
  const refused = { error: { code: "unauthorized", message: "Wrong email or password." } };
  assert.throws(() => loginReply({ ok: false, status: 401 }, refused), {
    name: "ConsoleError",
    code: "unauthorized",
    message: "Wrong email or password.",
  });
  for (const [response, body] of [
    [{ ok: false, status: 502 }, null],
    [{ ok: true, status: 200 }, { token: 5 }],
  ]) {
    assert.throws(() => loginReply(response, body), (err) => {
      assert.ok(err instanceof ConsoleError);
      assert.equal(err.code, "login_failed");
      assert.equal(err.message, `Sign-in failed (HTTP ${response.status}).`);
      return true;
    });
  }
});

test("signing in posts the credentials as JSON", async () => {
  const requests = [];
  const fetchFn = async (url, init) => {
    requests.push([url, init]);
    return { ok: true, status: 200, json: async () => ({ token: "t", callsign: "DL1ABC" }) };
  };
  assert.deepEqual(await signIn("a@b.c", "pw", fetchFn), { token: "t", callsign: "DL1ABC" });
  assert.equal(requests[0][0], "/api/auth/login");
  assert.equal(requests[0][1].method, "POST");
  assert.deepEqual(JSON.parse(requests[0][1].body), { email: "a@b.c", password: "pw" });
  const notJson = async () => ({ ok: false, status: 500, json: async () => JSON.parse("<html>") });
  await assert.rejects(signIn("a@b.c", "pw", notJson), { code: "login_failed" });
});
