// The wire protocol's constants, generated from radiocore_protocol (Python); do not edit.
// Regenerate: python -m radiocore_protocol.javascript > web/src/protocol.js

export const OPERATOR_NAMESPACE = "/operator";
export const CONTROL_CHANNEL_LABEL = "control";
export const KEEPALIVE_INTERVAL_MS = 250;
export const MIN_DEADMAN_MS = 500;
export const MIN_FREQUENCY_HZ = 1;
export const MAX_FREQUENCY_HZ = 300000000000;
export const MAX_DATA_MESSAGE_BYTES = 4096;
export const MAX_MESSAGES_PER_SECOND = 1000;
export const RIG_MODES = Object.freeze(["USB", "LSB", "CW", "CWR", "AM", "FM", "WFM", "RTTY", "RTTYR", "PKTUSB", "PKTLSB", "PKTFM"]);
export const ERROR_CODES = Object.freeze({"BAD_REQUEST": "bad_request", "TOO_LARGE": "too_large", "UNKNOWN_EVENT": "unknown_event", "UNKNOWN_MESSAGE": "unknown_message", "UNAUTHORIZED": "unauthorized", "FORBIDDEN": "forbidden", "NOT_FOUND": "not_found", "NOT_JOINED": "not_joined", "STATION_OFFLINE": "station_offline", "FLOOR_BUSY": "floor_busy", "BAD_SDP": "bad_sdp", "RATE_LIMITED": "rate_limited", "RIG_ERROR": "rig_error", "MEDIA_FAILED": "media_failed", "CONFLICT": "conflict", "UNAVAILABLE": "unavailable", "PLACED_ELSEWHERE": "placed_elsewhere", "INTERNAL": "internal"});
export const TX_END_REASONS = Object.freeze(["released", "deadman", "timeout", "override", "link_lost", "station_lost", "rig_error", "watchdog", "server_shutdown", "server_restart", "access_ended"]);
export const OPERATOR_MESSAGE_TYPES = Object.freeze(["floor_request", "freq", "keepalive", "mode", "power", "ptt"]);
export const STATION_MESSAGE_TYPES = Object.freeze(["capabilities", "error", "heartbeat", "status", "tx_stopped"]);
export const SERVER_MESSAGE_TYPES = Object.freeze(["error", "floor", "ptt_released", "roster", "tx_warning"]);
