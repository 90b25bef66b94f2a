// The messages the `control` data channel brings (docs/protocol.md, "station → operators" and
// "server → operator"): decoded and checked one by one, then handed to one handler per `type`.
// A malformed or unknown message is logged and ignored; nothing here touches the DOM.

import { parseRoster } from "./roster.js";
import { parseCapabilities } from "./tuning.js";

/**
 * @typedef {{type: "status", ptt: boolean, freq: number, mode: string,
 *            smeter?: number | null, squelch?: boolean | null, power?: number | null,
 *            rig_online?: boolean}} StatusMessage
 * @typedef {{type: "heartbeat"}} HeartbeatMessage
 * @typedef {{type: "floor", holder: string | null, you: boolean, tx_limit_s: number | null}}
 *   FloorMessage `tx_limit_s`: to the holder, the server's limit on one transmission (s)
 * @typedef {import("./tuning.js").Capabilities} Capabilities
 * @typedef {{type: "capabilities", capabilities: Capabilities}} CapabilitiesMessage
 * @typedef {{type: "ptt_released", reason: string, by: string | null}} PttReleasedMessage
 * @typedef {{type: "tx_warning", remaining_s: number}} TxWarningMessage
 * @typedef {{type: "tx_stopped", reason: string}} TxStoppedMessage
 * @typedef {{type: "error", code: string, message: string, ref: string | null}} ErrorMessage
 * @typedef {{type: "roster"} & import("./roster.js").Roster} RosterMessage
 * @typedef {StatusMessage | HeartbeatMessage | FloorMessage | CapabilitiesMessage
 *   | PttReleasedMessage | TxWarningMessage | TxStoppedMessage | ErrorMessage
 *   | RosterMessage} ControlMessage
 * @typedef {{
 *   status: (message: StatusMessage) => void,
 *   heartbeat: (message: HeartbeatMessage) => void,
 *   floor: (message: FloorMessage) => void,
 *   capabilities: (message: CapabilitiesMessage) => void,
 *   ptt_released: (message: PttReleasedMessage) => void,
 *   tx_warning: (message: TxWarningMessage) => void,
 *   tx_stopped: (message: TxStoppedMessage) => void,
 *   error: (message: ErrorMessage) => void,
 *   roster: (message: RosterMessage) => void,
 * }} ControlHandlers
 */

/** @param {any} m */
function isStatus(m) {
  const optional = (/** @type {unknown} */ v, /** @type {string} */ kind) =>
    v === undefined || v === null || typeof v === kind;
  return (
    typeof m.ptt === "boolean" &&
    Number.isSafeInteger(m.freq) &&
    typeof m.mode === "string" &&
    optional(m.smeter, "number") &&
    optional(m.squelch, "boolean") &&
    optional(m.power, "number") &&
    optional(m.rig_online, "boolean")
  );
}

/**
 * @param {string} why
 * @param {unknown} [detail]
 */
function ignored(why, detail) {
  return { ignored: why, detail };
}

/**
 * One received message, checked, with defaults for what it may leave out; frozen, so whoever
 * keeps it cannot change it.
 * @param {string} text the channel message
 * @returns {Readonly<ControlMessage> | {ignored: string, detail: unknown}}
 */
export function decodeControlMessage(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return ignored("not JSON");
  }
  switch (m?.type) {
    case "status":
      return isStatus(m) ? Object.freeze({ ...m }) : ignored("malformed status", m);
    case "heartbeat":
      return Object.freeze({ type: "heartbeat" }); // the station is alive
    case "floor":
      return Object.freeze({
        type: "floor",
        holder: typeof m.holder === "string" ? m.holder : null,
        you: m.you === true,
        tx_limit_s: Number.isSafeInteger(m.tx_limit_s) && m.tx_limit_s > 0 ? m.tx_limit_s : null,
      });
    case "capabilities": {
      const capabilities = parseCapabilities(m);
      if (capabilities === null) return ignored("malformed capabilities", m);
      return Object.freeze({ type: "capabilities", capabilities });
    }
    case "ptt_released":
      return Object.freeze({
        type: "ptt_released",
        reason: typeof m.reason === "string" ? m.reason : "unknown",
        by: typeof m.by === "string" ? m.by : null,
      });
    case "tx_warning":
      if (!Number.isSafeInteger(m.remaining_s)) return ignored("malformed tx_warning", m);
      return Object.freeze({ type: "tx_warning", remaining_s: m.remaining_s });
    case "tx_stopped":
      return Object.freeze({
        type: "tx_stopped",
        reason: typeof m.reason === "string" ? m.reason : "unknown",
      });
    case "error":
      return Object.freeze({
        type: "error",
        code: typeof m.code === "string" ? m.code : "error",
        message: typeof m.message === "string" ? m.message : "The server refused a message.",
        ref: typeof m.ref === "string" ? m.ref : null,
      });
    case "roster": {
      const roster = parseRoster(m);
      if (roster === null) return ignored("malformed roster", m);
      return Object.freeze({ type: "roster", ...roster });
    }
    default:
      return ignored("unknown message type", m?.type);
  }
}

/**
 * Decodes one channel message and calls the handler for its type.
 * @param {string} text
 * @param {ControlHandlers} handlers
 * @param {(text: string, detail: unknown) => void} [warn]
 */
export function dispatchControlMessage(text, handlers, warn = console.warn) {
  const message = decodeControlMessage(text);
  if ("ignored" in message) {
    warn(`control channel: ${message.ignored}, ignored`, message.detail);
    return;
  }
  const handler = /** @type {(message: ControlMessage) => void} */ (handlers[message.type]);
  handler(message);
}
