// The REST API under `/api` (docs/protocol.md, REST): one request at a time, the access token
// as `Authorization: Bearer …`, JSON both ways, and every refusal turned into an `ApiError` that
// keeps what the page needs to show it — the error code, the server's message, the field a 422
// names (shown next to that field) and a 429's Retry-After. The request shapes themselves are
// built by the page modules (`{method, path, query?, body?}`), so node:test checks them without
// a server.

import { ConsoleError } from "./errors.js";
import { ERROR_CODES } from "./protocol.js";

/** An API call that does not answer within this long has failed. */
export const API_TIMEOUT_MS = 15_000;
/** The code of a refusal whose body does not say its own (a proxy's error page, …). */
export const NO_CODE = "http_error";
/** The code of a request that never reached the server (offline, DNS, refused, timed out). */
export const UNREACHABLE = "unreachable";

/**
 * @typedef {{
 *   method: string,
 *   path: string,
 *   query?: Record<string, string | null | undefined>,
 *   body?: unknown,
 * }} ApiRequest
 */

/** A refusal by the server (or no answer from it), as the page shows it. */
export class ApiError extends ConsoleError {
  /**
   * @param {string} code a protocol error code (docs/protocol.md) or `NO_CODE`/`UNREACHABLE`
   * @param {string} message
   * @param {{status?: number, field?: string | null, retryAfterS?: number | null}} [details]
   *   `status`: the HTTP status (0: no answer); `field`: the request field a 422 names;
   *   `retryAfterS`: a 429's wait
   */
  constructor(code, message, { status = 0, field = null, retryAfterS = null } = {}) {
    super(code, message);
    this.name = "ApiError";
    this.status = status;
    this.field = field;
    this.retryAfterS = retryAfterS;
  }
}

/**
 * A Retry-After header's seconds (the API sends whole seconds), or null.
 * @param {string | null | undefined} header
 */
export function retryAfterSeconds(header) {
  if (typeof header !== "string" || !/^\s*\d+\s*$/.test(header)) return null;
  return Number(header.trim());
}

/**
 * A wait in words: "40 s", "2 min", "1 h 5 min".
 * @param {number} seconds
 */
export function waitText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.ceil(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

/**
 * The `ApiError` an error answer stands for: `{"error": {"code", "message"[, "field"]}}` as the
 * API sends it, or what the status says when the body is something else.
 * @param {number} status
 * @param {any} body the answer's JSON, or null
 * @param {string | null} [retryAfter] the Retry-After header
 * @returns {ApiError}
 */
export function apiError(status, body, retryAfter = null) {
  const error = body?.error;
  const code = typeof error?.code === "string" ? error.code : NO_CODE;
  let message =
    typeof error?.message === "string" && error.message !== ""
      ? error.message
      : `The server refused the request (HTTP ${status}).`;
  const field = typeof error?.field === "string" && error.field !== "" ? error.field : null;
  const retryAfterS = retryAfterSeconds(retryAfter);
  if (code === ERROR_CODES.RATE_LIMITED && retryAfterS !== null) {
    message = `${message} (try again in ${waitText(retryAfterS)})`;
  }
  return new ApiError(code, message, { status, field, retryAfterS });
}

/**
 * The URL of a request: its path, and its query without the parameters left empty.
 * @param {string} path
 * @param {ApiRequest["query"]} [query]
 */
export function requestUrl(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === "string" && value.trim() !== "") params.set(name, value.trim());
  }
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

/**
 * What `fetch` is given for a request: JSON in and out, the token when there is one, and no
 * HTTP cache (answers carry tokens and personal data).
 * @param {ApiRequest} request
 * @param {string | null} token
 * @returns {{url: string, init: RequestInit}}
 */
export function fetchArguments(request, token) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  /** @type {RequestInit} */
  const init = { method: request.method, headers, cache: "no-store" };
  if (request.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(request.body);
  }
  return { url: requestUrl(request.path, request.query), init };
}

/**
 * A path segment from an id (ids are UUIDs; anything else must not change the path).
 * @param {string} id
 */
export function segment(id) {
  return encodeURIComponent(id);
}

const defaultFetch = /** @type {typeof fetch} */ ((input, init) => fetch(input, init));

/**
 * @typedef {{
 *   setTimeout: (fn: () => void, ms: number) => any,
 *   clearTimeout: (id: any) => void,
 * }} Timers
 */

/**
 * Sends one request; its JSON answer (null for 204), or throws `ApiError`.
 * @param {ApiRequest} request
 * @param {{token?: string | null, fetchFn?: typeof fetch, timers?: Timers}} [options]
 * @returns {Promise<any>}
 */
export async function send(
  request,
  { token = null, fetchFn = defaultFetch, timers = globalThis } = {},
) {
  const { url, init } = fetchArguments(request, token);
  const abort = new AbortController();
  const timer = timers.setTimeout(() => abort.abort(), API_TIMEOUT_MS);
  let response;
  let body = null;
  try {
    response = await fetchFn(url, { ...init, signal: abort.signal });
    if (response.status !== 204) body = await response.json().catch(() => null);
  } catch (err) {
    const why = abort.signal.aborted
      ? `no answer within ${API_TIMEOUT_MS / 1000} s`
      : err instanceof Error
        ? err.message
        : String(err);
    throw new ApiError(UNREACHABLE, `Cannot reach the server: ${why}.`);
  } finally {
    timers.clearTimeout(timer);
  }
  if (!response.ok) {
    throw apiError(response.status, body, response.headers?.get?.("Retry-After") ?? null);
  }
  return body;
}

/**
 * The signed-in operator's API: each request carries a fresh access token; a 401 (the token
 * expired in between, or the server restarted with another key) is retried once with a renewed
 * one before it counts.
 */
export class ApiClient {
  /**
   * @param {{
   *   token: () => Promise<string>,
   *   renew: () => Promise<string>,
   *   fetchFn?: typeof fetch,
   * }} options `token`: the current access token (renewed when due); `renew`: a new one now
   */
  constructor({ token, renew, fetchFn = defaultFetch }) {
    this._token = token;
    this._renew = renew;
    this._fetch = fetchFn;
  }

  /**
   * @param {ApiRequest} request
   * @returns {Promise<any>}
   */
  async send(request) {
    const first = await this._token();
    try {
      return await send(request, { token: first, fetchFn: this._fetch });
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== ERROR_CODES.UNAUTHORIZED) throw err;
    }
    return send(request, { token: await this._renew(), fetchFn: this._fetch });
  }
}
