// Unit tests of signing in and staying signed in, with stand-ins for fetch, the clock and timers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConsoleError } from "../src/errors.js";
import {
  Credentials,
  RENEW_AT,
  RETRY_MS,
  loginReply,
  refreshSession,
  signIn,
} from "../src/login.js";

const SIGNED_IN = {
  token: "t",
  expires_in: 900,
  callsign: "DL1ABC",
  user_id: "u1",
  refresh_token: "r0",
  refresh_expires_in: 2592000,
};

test("a good login gives the tokens, their lifetimes and the callsign", () => {
  assert.deepEqual(loginReply({ ok: true, status: 200 }, SIGNED_IN), {
    token: "t",
    expiresIn: 900,
    callsign: "DL1ABC",
    refreshToken: "r0",
    refreshExpiresIn: 2592000,
  });
  // an older server's reply: no refresh token, no lifetime
  assert.deepEqual(loginReply({ ok: true, status: 200 }, { token: "t" }), {
    token: "t",
    expiresIn: 900,
    callsign: null,
    refreshToken: null,
    refreshExpiresIn: null,
  });
  const odd = loginReply({ ok: true, status: 200 }, { token: "t", expires_in: -5 });
  assert.equal(odd.expiresIn, 900);
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
  const limited = { error: { code: "rate_limited", message: "Too many sign-in attempts." } };
  assert.throws(() => loginReply({ ok: false, status: 429 }, limited), { code: "rate_limited" });
});

/** A fetch stand-in: answers from `answer(url, body)` ({status, body} or a thrown error). */
function fakeFetch(answer) {
  const requests = [];
  const fetchFn = async (url, init) => {
    const body = init.body === undefined ? null : JSON.parse(init.body);
    requests.push({ url, init, body });
    const reply = await answer(url, body);
    return {
      ok: reply.status >= 200 && reply.status < 300,
      status: reply.status,
      json: async () => {
        if (reply.body === undefined) throw new SyntaxError("no JSON");
        return reply.body;
      },
    };
  };
  return { fetchFn, requests };
}

test("signing in posts the credentials as JSON, uncached", async () => {
  const { fetchFn, requests } = fakeFetch(async () => ({ status: 200, body: SIGNED_IN }));
  const session = await signIn("a@b.c", "pw", fetchFn);
  assert.equal(session.refreshToken, "r0");
  assert.equal(requests[0].url, "/api/auth/login");
  assert.equal(requests[0].init.method, "POST");
  assert.equal(requests[0].init.cache, "no-store");
  assert.deepEqual(requests[0].body, { email: "a@b.c", password: "pw" });
  const notJson = async () => ({ ok: false, status: 500, json: async () => JSON.parse("<html>") });
  await assert.rejects(signIn("a@b.c", "pw", notJson), { code: "login_failed" });
});

test("a refused refresh is `unauthorized`; a failed one is not a verdict", async () => {
  const refused = fakeFetch(async () => ({
    status: 401,
    body: { error: { code: "unauthorized", message: "this refresh token was revoked" } },
  }));
  await assert.rejects(refreshSession("r0", refused.fetchFn), {
    code: "unauthorized",
    message: "this refresh token was revoked",
  });
  assert.deepEqual(refused.requests[0].body, { refresh_token: "r0" });
  assert.equal(refused.requests[0].url, "/api/auth/refresh");
  const bare = fakeFetch(async () => ({ status: 401 }));
  await assert.rejects(refreshSession("r0", bare.fetchFn), { code: "unauthorized" });
  const broken = fakeFetch(async () => ({ status: 502 }));
  await assert.rejects(refreshSession("r0", broken.fetchFn), (err) => {
    assert.ok(!(err instanceof ConsoleError));
    return true;
  });
});

/** Timers and a clock the test moves: `advance(ms)` runs what falls due, in order. */
function fakeTime() {
  let now = 1_000_000;
  let next = 1;
  const pending = new Map();
  return {
    now: () => now,
    timers: {
      setTimeout(fn, ms) {
        const id = next++;
        pending.set(id, { fn, at: now + ms });
        return id;
      },
      clearTimeout(id) {
        pending.delete(id);
      },
    },
    pending,
    /** Moves the clock (without running timers: a sleeping laptop). */
    jump(ms) {
      now += ms;
    },
    async advance(ms) {
      const until = now + ms;
      for (let i = 0; i < 1000; i += 1) {
        const due = [...pending.entries()]
          .filter(([, t]) => t.at <= until)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        pending.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
        await settle();
      }
      now = until;
    },
  };
}

async function settle() {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

/** A server stand-in for `/api/auth/refresh`: rotates r<n> to r<n+1> and t<n+1>. */
function refreshingServer() {
  let n = 0;
  const spent = new Set();
  const server = fakeFetch(async (url, body) => {
    if (url === "/api/auth/logout") return { status: 204 };
    if (spent.has(body.refresh_token) || body.refresh_token !== `r${n}`) {
      return { status: 401, body: { error: { code: "unauthorized", message: "refused" } } };
    }
    spent.add(body.refresh_token);
    n += 1;
    return { status: 200, body: { ...SIGNED_IN, token: `t${n}`, refresh_token: `r${n}` } };
  });
  return { ...server, refreshes: () => n };
}

function signedIn(overrides = {}) {
  return loginReply({ ok: true, status: 200 }, { ...SIGNED_IN, token: "t0", ...overrides });
}

test("the access token is renewed by a timer before it runs out", async () => {
  const time = fakeTime();
  const server = refreshingServer();
  const endings = [];
  const credentials = new Credentials(signedIn(), {
    ended: (message) => endings.push(message),
    fetchFn: server.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  assert.equal(await credentials.accessToken(), "t0"); // fresh: no request
  assert.equal(server.requests.length, 0);
  await time.advance(900_000 * RENEW_AT - 1);
  assert.equal(server.refreshes(), 0);
  await time.advance(1);
  assert.equal(server.refreshes(), 1);
  assert.equal(await credentials.accessToken(), "t1");
  // and again, a lifetime later: each refresh token spent once
  await time.advance(900_000 * RENEW_AT);
  assert.equal(await credentials.accessToken(), "t2");
  assert.deepEqual(
    server.requests.map((r) => r.body.refresh_token),
    ["r0", "r1"],
  );
  assert.deepEqual(endings, []);
});

test("a token past its renewal time is renewed before it is handed out (after sleep)", async () => {
  const time = fakeTime();
  const server = refreshingServer();
  const credentials = new Credentials(signedIn(), {
    ended: () => {},
    fetchFn: server.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  time.jump(3_600_000); // the laptop slept; no timer ran
  assert.equal(await credentials.accessToken(), "t1");
  assert.equal(server.refreshes(), 1);
});

test("only one refresh is in flight: a refresh token is never spent twice", async () => {
  const time = fakeTime();
  const server = refreshingServer();
  const credentials = new Credentials(signedIn(), {
    ended: () => assert.fail("the sign-in must not end"),
    fetchFn: server.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  time.jump(900_000);
  const tokens = await Promise.all([
    credentials.accessToken(),
    credentials.accessToken(),
    credentials.refresh(),
  ]);
  assert.deepEqual(tokens, ["t1", "t1", "t1"]);
  assert.equal(server.requests.length, 1);
});

test("a refused refresh ends the sign-in once, with a message", async () => {
  const time = fakeTime();
  const revoked = fakeFetch(async () => ({
    status: 401,
    body: { error: { code: "unauthorized", message: "this refresh token was already used" } },
  }));
  const endings = [];
  const credentials = new Credentials(signedIn(), {
    ended: (message) => endings.push(message),
    fetchFn: revoked.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  await time.advance(900_000);
  assert.equal(endings.length, 1);
  assert.match(endings[0], /sign-in has ended.*already used.*sign in again/i);
  assert.equal(credentials.active, false);
  await assert.rejects(credentials.accessToken(), { code: "unauthorized" });
  assert.equal(time.pending.size, 0, "no timer is left");
  assert.equal(endings.length, 1);
});

test("a refresh that cannot reach the server keeps the token while valid and retries", async () => {
  const time = fakeTime();
  let reachable = false;
  const server = refreshingServer();
  const flaky = async (url, init) => {
    if (!reachable) throw new TypeError("Failed to fetch");
    return server.fetchFn(url, init);
  };
  const endings = [];
  const credentials = new Credentials(signedIn(), {
    ended: (message) => endings.push(message),
    fetchFn: flaky,
    timers: time.timers,
    now: time.now,
  });
  await time.advance(900_000 * RENEW_AT); // the timer's attempt fails
  assert.equal(await credentials.accessToken(), "t0", "still valid: handed out");
  assert.deepEqual(endings, []);
  time.jump(900_000); // now expired, and still no server
  await assert.rejects(credentials.accessToken(), { name: "TypeError" });
  reachable = true;
  await time.advance(RETRY_MS); // the retry timer
  assert.equal(server.refreshes(), 1);
  assert.equal(await credentials.accessToken(), "t1");
  assert.deepEqual(endings, []);
});

test("signing out revokes the refresh token and stops renewing", async () => {
  const time = fakeTime();
  const server = refreshingServer();
  const credentials = new Credentials(signedIn(), {
    ended: () => assert.fail("signing out is not an ending"),
    fetchFn: server.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  credentials.close();
  await settle();
  assert.deepEqual(
    server.requests.map((r) => [r.url, r.body]),
    [["/api/auth/logout", { refresh_token: "r0" }]],
  );
  assert.equal(time.pending.size, 0);
  await assert.rejects(credentials.accessToken(), { code: "unauthorized" });
  credentials.close(); // twice: nothing more
  await settle();
  assert.equal(server.requests.length, 1);
});

test("a refresh that lands after sign-out is given back at once", async () => {
  const time = fakeTime();
  let release;
  const server = refreshingServer();
  const slow = async (url, init) => {
    if (url === "/api/auth/refresh") await new Promise((resolve) => (release = resolve));
    return server.fetchFn(url, init);
  };
  const credentials = new Credentials(signedIn(), {
    ended: () => {},
    fetchFn: slow,
    timers: time.timers,
    now: time.now,
  });
  time.jump(900_000);
  const pending = credentials.accessToken();
  await settle();
  credentials.close(); // revokes r0 (the server does not know yet it is spent)
  release();
  await assert.rejects(pending, { code: "unauthorized" });
  await settle();
  const logouts = server.requests.filter((r) => r.url === "/api/auth/logout");
  assert.deepEqual(
    logouts.map((r) => r.body.refresh_token),
    ["r0", "r1"],
  );
});

test("without a refresh token (an older server) the sign-in lasts as long as the token", async () => {
  const time = fakeTime();
  const server = refreshingServer();
  const endings = [];
  const credentials = new Credentials(signedIn({ refresh_token: undefined }), {
    ended: (message) => endings.push(message),
    fetchFn: server.fetchFn,
    timers: time.timers,
    now: time.now,
  });
  time.jump(900_000 * RENEW_AT);
  assert.equal(await credentials.accessToken(), "t0");
  await time.advance(900_000);
  assert.equal(endings.length, 1);
  assert.match(endings[0], /expired/);
  assert.equal(server.requests.length, 0);
});
