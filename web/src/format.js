// Pure formatting of station readings for display. No DOM here, so node:test can check it.

/** dBm at S9 on HF (IARU Region 1 recommendation; the seed's Hamlib STRENGTH uses it too). */
export const S9_DBM = -73;
/** One S-unit is 6 dB. */
export const DB_PER_S_UNIT = 6;

/**
 * A frequency in Hz as MHz with kHz grouping, the way a transceiver shows it:
 * 14205000 -> "14.205.000", 7074000 -> "7.074.000", 144800000 -> "144.800.000".
 * @param {number} hz
 * @returns {string}
 */
export function formatFrequency(hz) {
  if (!Number.isSafeInteger(hz) || hz < 0) return "—";
  const mhz = Math.floor(hz / 1_000_000);
  const khz = Math.floor(hz / 1000) % 1000;
  const rest = hz % 1000;
  return `${mhz}.${String(khz).padStart(3, "0")}.${String(rest).padStart(3, "0")}`;
}

/**
 * An S-meter reading from dBm: "S7", "S9", "S9+20 dB"; null when there is no reading.
 * Below S9 the reading rounds to the nearest S-unit (never under S0).
 * @param {number | null | undefined} dbm
 * @returns {string | null}
 */
export function formatSMeter(dbm) {
  if (typeof dbm !== "number" || !Number.isFinite(dbm)) return null;
  const over = Math.round(dbm - S9_DBM);
  if (over > 0) return `S9+${over} dB`;
  const units = Math.max(0, Math.round(9 + (dbm - S9_DBM) / DB_PER_S_UNIT));
  return `S${units}`;
}

/**
 * @param {boolean | null | undefined} open
 * @returns {string}
 */
export function formatSquelch(open) {
  if (open === true) return "open";
  if (open === false) return "closed";
  return "—";
}

/**
 * @param {number | null | undefined} percent
 * @returns {string}
 */
export function formatPower(percent) {
  return typeof percent === "number" ? `${percent} %` : "—";
}
