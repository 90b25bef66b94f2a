// Signaling: the Socket.IO connection to the server's `/operator` namespace (docs/protocol.md).
// Every client -> server event takes an ack, `{ok: true, ...}` or `{ok: false, error: {code,
// message}}`; `request` turns a refusal, a malformed reply or no reply into a `ConsoleError`.

import { io } from "socket.io-client";

import { ConsoleError } from "./errors.js";
import { ERROR_CODES, OPERATOR_NAMESPACE } from "./protocol.js";

export const ACK_TIMEOUT_MS = 10_000;
/** The longest a `shutdown` notice may make the console wait before it reconnects. */
export const MAX_RESTART_WAIT_S = 60;

/**
 * An ack's reply when it says `ok`, else the `ConsoleError` it stands for.
 * @param {string} event the event it answers
 * @param {unknown} reply
 * @returns {Record<string, any>}
 */
export function ackReply(event, reply) {
  if (reply !== null && typeof reply === "object" && /** @type {any} */ (reply).ok === true) {
    return /** @type {Record<string, any>} */ (reply);
  }
  const error = /** @type {any} */ (reply)?.error;
  throw new ConsoleError(
    typeof error?.code === "string" ? error.code : "bad_reply",
    typeof error?.message === "string" ? error.message : `Unexpected reply to “${event}”.`,
  );
}

/**
 * Emits a client -> server event and waits for its ack.
 * @param {{timeout: (ms: number) => {emitWithAck: (e: string, p: object) => Promise<unknown>}}} socket
 * @param {string} event
 * @param {object} payload
 * @param {number} timeoutMs
 * @returns {Promise<Record<string, any>>}
 */
export async function requestAck(socket, event, payload, timeoutMs) {
  let reply;
  try {
    reply = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw new ConsoleError("timeout", `The server did not answer “${event}” within ${timeoutMs / 1000} s.`);
  }
  return ackReply(event, reply);
}

/**
 * A `presence` event's fields, or null when it is malformed.
 * @param {any} event
 * @returns {{boardId: string, online: boolean} | null}
 */
export function parsePresence(event) {
  if (typeof event?.board_id !== "string" || typeof event?.online !== "boolean") return null;
  return { boardId: event.board_id, online: event.online };
}

/**
 * A `shutdown` notice (the server is stopping; come back after `retryAfterS`), or null when it
 * is malformed.
 * @param {any} event
 * @returns {{message: string, retryAfterS: number} | null}
 */
export function parseShutdown(event) {
  const retry = event?.retry_after_s;
  if (typeof event?.message !== "string" || !Number.isInteger(retry) || retry < 0) return null;
  return { message: event.message, retryAfterS: Math.min(retry, MAX_RESTART_WAIT_S) };
}

/**
 * A server -> client `error` event (or a data-channel `error` message) as code and message.
 * @param {any} event
 * @param {string} fallback the message when it has none
 * @returns {{code: string, message: string, boardId: string | null}}
 */
export function parseErrorEvent(event, fallback) {
  return {
    code: typeof event?.code === "string" ? event.code : "error",
    message: typeof event?.message === "string" ? event.message : fallback,
    // which station it concerns, when it concerns one (`media_failed`)
    boardId: typeof event?.board_id === "string" ? event.board_id : null,
  };
}

/**
 * The reason a refused connection gives (`connect_error` with `data: {code, message}`).
 * @param {any} error
 * @returns {string}
 */
export function refusalMessage(error) {
  const data = error?.data;
  return typeof data?.message === "string" ? data.message : String(error?.message ?? error);
}

/** Waits before connecting again after an `unavailable` refusal: doubling, at most the last. */
export const UNAVAILABLE_RETRY_MS = Object.freeze([2000, 4000, 8000, 15000]);

/**
 * @typedef {{
 *   connected: () => void,
 *   reconnecting: () => void,
 *   refused: (message: string) => void,
 *   lost: () => void,
 *   ended: () => void,
 *   presence: (presence: {boardId: string, online: boolean}) => void,
 *   error: (error: {code: string, message: string, boardId: string | null}) => void,
 *   shutdown: (notice: {message: string, retryAfterS: number}) => void,
 * }} SignalingEvents
 */

/**
 * One signed-in connection to `/operator`. socket.io-client reconnects by itself after a lost
 * link; a refusal (bad or expired token) or the server ending the session is final.
 *
 * The token is a string, or a function giving a fresh one: then it is asked for at every
 * connection attempt (the first, each reconnection, the one after a server restart), so a
 * reconnection never presents an access token that expired meanwhile (`Credentials` renews it
 * when due). If no token can be had, the connection is refused (`refused`).
 */
export class SignalingClient {
  /**
   * @param {string | (() => Promise<string>)} token the JWT from sign-in, or where to get one
   * @param {SignalingEvents} events
   * @param {typeof io} [connect]
   * @param {{setTimeout: (fn: () => void, ms: number) => unknown}} [timers]
   */
  constructor(token, events, connect = io, timers = globalThis) {
    /** @type {any} socket.io-client's `auth`: an object, or a function called per attempt */
    let auth = { token };
    if (typeof token === "function") {
      auth = (/** @type {(data: object) => void} */ send) => {
        token().then(
          (fresh) => {
            if (live()) send({ token: fresh });
          },
          (err) => {
            if (live()) events.refused(`cannot renew the sign-in: ${err?.message ?? err}`);
          },
        );
      };
    }
    const socket = connect(OPERATOR_NAMESPACE, { auth, transports: ["websocket"] });
    /** @type {import("socket.io-client").Socket | null} null once closed */
    this._socket = socket;

    const live = () => this._socket === socket; // false once closed by this page
    /** Set by a `shutdown` notice: the server's coming disconnect is a restart, not an end. */
    let restartAfterMs = /** @type {number | null} */ (null);

    /** `unavailable` refusals in a row (the server's database is down: not our sign-in). */
    let unavailable = 0;

    socket.on("connect", () => {
      unavailable = 0;
      if (live()) events.connected();
    });
    socket.on("connect_error", (err) => {
      if (!live()) return;
      // `active` is false when the server refused us: socket.io-client does not retry then.
      if (socket.active) events.reconnecting();
      else if (err?.data?.code === ERROR_CODES.UNAVAILABLE) {
        // nothing wrong with this sign-in: try again after a while, as after a restart
        const waits = UNAVAILABLE_RETRY_MS;
        const delay = waits[Math.min(unavailable, waits.length - 1)];
        unavailable += 1;
        events.reconnecting();
        timers.setTimeout(() => {
          if (live()) socket.connect();
        }, delay);
      } else events.refused(refusalMessage(err));
    });
    socket.on("disconnect", (reason) => {
      if (!live()) return;
      events.lost();
      if (reason === "io server disconnect" && restartAfterMs !== null) {
        // socket.io-client does not reconnect after a server disconnect by itself
        const delay = restartAfterMs;
        restartAfterMs = null;
        events.reconnecting();
        timers.setTimeout(() => {
          if (live()) socket.connect();
        }, delay);
      } else if (reason === "io server disconnect") events.ended();
      else if (reason !== "io client disconnect") events.reconnecting();
    });
    socket.on("shutdown", (event) => {
      const notice = parseShutdown(event);
      if (!live() || notice === null) return;
      restartAfterMs = notice.retryAfterS * 1000;
      events.shutdown(notice);
    });
    socket.on("presence", (event) => {
      const presence = parsePresence(event);
      if (live() && presence !== null) events.presence(presence);
    });
    socket.on("error", (event) => {
      if (live()) events.error(parseErrorEvent(event, "The server reported an error."));
    });
  }

  get connected() {
    return this._socket?.connected === true;
  }

  /**
   * Emits a client -> server event and waits for its ack; throws `ConsoleError` on refusal.
   * @param {string} event
   * @param {object} payload
   * @param {number} [timeoutMs]
   */
  request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
    if (this._socket === null) {
      return Promise.reject(new ConsoleError("not_connected", "Not connected to the server."));
    }
    return requestAck(this._socket, event, payload, timeoutMs);
  }

  /** Disconnects for good (the server forgets this operator's joins); no events after this. */
  close() {
    const socket = this._socket;
    this._socket = null;
    socket?.disconnect();
  }
}
