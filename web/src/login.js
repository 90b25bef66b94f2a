// Signing in and staying signed in (docs/protocol.md, REST): `POST /api/auth/login` gives a
// short access token (the JWT that opens the `/operator` connection and authorizes API calls,
// ~15 minutes) and a refresh token. `Credentials` keeps both in memory only (never in
// localStorage, where any script on the page could read them), renews the access token with the
// refresh token before it runs out (`POST /api/auth/refresh`: each refresh token is spent once
// and replaced), and says when the sign-in has ended (refused refresh: revoked, expired, or
// spent twice because it was copied). Signing out revokes the refresh token on the server.

import { ConsoleError } from "./errors.js";
import { ERROR_CODES } from "./protocol.js";

/** An access token counts as fresh for this share of its lifetime; then it is renewed. */
export const RENEW_AT = 0.8;
/** After a refresh that failed for want of the network (not refused), try again after this. */
export const RETRY_MS = 15_000;
/** A refresh that does not answer within this long has failed (and is retried). */
export const REFRESH_TIMEOUT_MS = 15_000;

/**
 * @typedef {{
 *   token: string,
 *   expiresIn: number,
 *   callsign: string | null,
 *   refreshToken: string | null,
 *   refreshExpiresIn: number | null,
 * }} Session
 */

/**
 * What a sign-in (or refresh) reply means: the tokens and callsign, or the `ConsoleError` the
 * server's refusal stands for.
 * @param {{ok: boolean, status: number}} response
 * @param {any} body the reply's JSON, or null when it had none
 * @param {string} [failed] the code of a refusal that does not say its own
 * @returns {Session}
 */
export function loginReply(response, body, failed = "login_failed") {
  if (response.ok && typeof body?.token === "string") {
    const positive = (/** @type {unknown} */ value) =>
      typeof value === "number" && Number.isFinite(value) && value > 0 ? value : null;
    return {
      token: body.token,
      // an older server's reply has no lifetime: renew after the usual 15 minutes' share
      expiresIn: positive(body.expires_in) ?? 900,
      callsign: typeof body.callsign === "string" ? body.callsign : null,
      refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : null,
      refreshExpiresIn: positive(body.refresh_expires_in),
    };
  }
  throw new ConsoleError(
    typeof body?.error?.code === "string" ? body.error.code : failed,
    typeof body?.error?.message === "string"
      ? body.error.message
      : `Sign-in failed (HTTP ${response.status}).`,
  );
}

/**
 * POSTs `payload` as JSON to `path`; the response and its JSON body (null when none).
 * @param {string} path
 * @param {object} payload
 * @param {typeof fetch} fetchFn
 * @param {AbortSignal} [signal]
 */
async function postJson(path, payload, fetchFn, signal) {
  const response = await fetchFn(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(payload),
    // the refresh token must not linger in the HTTP cache or be replayed by the browser
    cache: "no-store",
    signal,
  });
  const body = await response.json().catch(() => null);
  return { response, body };
}

const defaultFetch = /** @type {typeof fetch} */ ((input, init) => fetch(input, init));

/**
 * Signs in. Throws `ConsoleError` when the server refuses, anything else when it cannot be
 * reached.
 * @param {string} email
 * @param {string} password
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<Session>}
 */
export async function signIn(email, password, fetchFn = defaultFetch) {
  const { response, body } = await postJson("/api/auth/login", { email, password }, fetchFn);
  return loginReply(response, body);
}

/**
 * Spends `refreshToken` for new tokens. A refusal (401: revoked, expired, spent before) is a
 * `ConsoleError` with code `unauthorized`; anything else thrown means the server could not be
 * asked (try again later).
 * @param {string} refreshToken
 * @param {typeof fetch} [fetchFn]
 * @param {AbortSignal} [signal]
 * @returns {Promise<Session>}
 */
export async function refreshSession(refreshToken, fetchFn = defaultFetch, signal) {
  const { response, body } = await postJson(
    "/api/auth/refresh",
    { refresh_token: refreshToken },
    fetchFn,
    signal,
  );
  if (!response.ok && response.status !== 401) {
    // the server is restarting, overloaded, behind a proxy that failed: not a verdict
    throw new Error(`the refresh failed (HTTP ${response.status})`);
  }
  return loginReply(response, body, ERROR_CODES.UNAUTHORIZED);
}

/**
 * @typedef {{
 *   setTimeout: (fn: () => void, ms: number) => any,
 *   clearTimeout: (id: any) => void,
 * }} Timers
 */

/**
 * The signed-in operator's tokens, in memory, kept fresh.
 *
 * `accessToken()` gives a token valid for a while yet, renewing it first when it is past
 * `RENEW_AT` of its lifetime (a laptop that slept, a throttled background tab). A timer renews
 * it at that point too. Only one refresh is ever in flight: a refresh token is spent once, and
 * spending it twice would revoke the sign-in. When the server refuses a refresh, `ended` is
 * called once with a message for the operator, and the tokens are dropped.
 */
export class Credentials {
  /**
   * @param {Session} session from `signIn`
   * @param {{
   *   ended: (message: string) => void,
   *   fetchFn?: typeof fetch,
   *   timers?: Timers,
   *   now?: () => number,
   * }} options `ended`: the sign-in is over (shown on the sign-in form); `now`: ms
   */
  constructor(session, { ended, fetchFn = defaultFetch, timers = globalThis, now = Date.now }) {
    this._ended = ended;
    this._fetch = fetchFn;
    this._timers = timers;
    this._now = now;
    /** @type {string | null} null once ended or closed */
    this._token = null;
    /** @type {string | null} */
    this._refreshToken = null;
    this._renewAt = 0;
    this._expiresAt = 0;
    /** @type {Promise<string> | null} the refresh in flight */
    this._refreshing = null;
    /** @type {any} */
    this._timer = null;
    /** @type {string | null} */
    this.callsign = session.callsign;
    this._take(session);
  }

  /** False once the sign-in ended or was closed. */
  get active() {
    return this._token !== null;
  }

  /**
   * An access token valid for a while yet (renewed first if due). Throws `ConsoleError`
   * `unauthorized` when the sign-in has ended; when the server cannot be reached, gives the
   * current token while it is still valid, else throws.
   * @returns {Promise<string>}
   */
  async accessToken() {
    if (this._token === null) throw ended();
    if (this._now() < this._renewAt) return this._token;
    try {
      return await this.refresh();
    } catch (err) {
      if (err instanceof ConsoleError || this._token === null) throw err;
      if (this._now() < this._expiresAt) return this._token; // the network failed: later
      throw err;
    }
  }

  /**
   * Renews the tokens now (or joins the renewal in flight); the new access token.
   * @returns {Promise<string>}
   */
  refresh() {
    if (this._token === null) return Promise.reject(ended());
    if (this._refreshing === null) {
      const spent = this._refreshToken;
      this._refreshing = this._renew(spent).finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  /**
   * Signs out: forgets the tokens and, unless `revoke` is false, revokes the refresh token on
   * the server (best effort: the page does not wait for it).
   * @param {{revoke?: boolean}} [options]
   */
  close({ revoke = true } = {}) {
    const refreshToken = this._refreshToken;
    this._drop();
    if (revoke && refreshToken !== null) {
      postJson("/api/auth/logout", { refresh_token: refreshToken }, this._fetch).catch(() => {});
    }
  }

  /**
   * @param {string | null} spent
   * @returns {Promise<string>}
   */
  async _renew(spent) {
    if (spent === null) {
      // an older server gave no refresh token: the sign-in lasts as long as its access token
      if (this._now() < this._expiresAt && this._token !== null) {
        this._schedule(this._expiresAt - this._now()); // then it ends
        return this._token;
      }
      this._end("Your sign-in has expired. Please sign in again.");
      throw ended();
    }
    const abort = new AbortController();
    const timer = this._timers.setTimeout(() => abort.abort(), REFRESH_TIMEOUT_MS);
    let session;
    try {
      session = await refreshSession(spent, this._fetch, abort.signal);
    } catch (err) {
      if (this._refreshToken !== spent) throw ended(); // closed meanwhile
      if (err instanceof ConsoleError) {
        this._end(`Your sign-in has ended (${err.message}). Please sign in again.`);
        throw err;
      }
      this._schedule(RETRY_MS); // the server could not be asked: try again soon
      throw err;
    } finally {
      this._timers.clearTimeout(timer);
    }
    if (this._refreshToken !== spent) {
      // signed out while the refresh was on its way: give the new sign-in back at once
      if (session.refreshToken !== null) {
        postJson("/api/auth/logout", { refresh_token: session.refreshToken }, this._fetch).catch(
          () => {},
        );
      }
      throw ended();
    }
    this._take(session);
    return session.token;
  }

  /** @param {Session} session */
  _take(session) {
    const now = this._now();
    const lifetimeMs = session.expiresIn * 1000;
    this._token = session.token;
    // a reply without a new refresh token (an older server) keeps none
    this._refreshToken = session.refreshToken;
    if (session.callsign !== null) this.callsign = session.callsign;
    this._expiresAt = now + lifetimeMs;
    this._renewAt = now + lifetimeMs * RENEW_AT;
    this._schedule(this._renewAt - now);
  }

  /** @param {number} ms */
  _schedule(ms) {
    if (this._timer !== null) this._timers.clearTimeout(this._timer);
    this._timer = this._timers.setTimeout(() => {
      this._timer = null;
      if (this._token !== null) this.refresh().catch(() => {}); // failures handled in _renew
    }, Math.max(0, ms));
  }

  /** @param {string} message */
  _end(message) {
    if (this._token === null) return;
    this._drop();
    this._ended(message);
  }

  _drop() {
    this._token = null;
    this._refreshToken = null;
    if (this._timer !== null) this._timers.clearTimeout(this._timer);
    this._timer = null;
  }
}

function ended() {
  return new ConsoleError(ERROR_CODES.UNAUTHORIZED, "Not signed in.");
}
