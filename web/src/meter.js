// Level meters: the S-meter bar (S-unit scaled: S0..S9 over the first 60 %, S9+0..+60 dB over
// the rest, ticks at S1..S9, +20, +40) and the microphone level (dBFS from samples). The
// arithmetic is pure (node:test); `SMeterBar` draws the bar with elements, no inline styles.

import { DB_PER_S_UNIT, S9_DBM } from "./format.js";

/** dBm at S0 (9 S-units of 6 dB below S9). */
export const S0_DBM = S9_DBM - 9 * DB_PER_S_UNIT;
/** The bar's top: S9+60 dB. */
export const TOP_OVER_S9_DB = 60;
/** The share of the bar that S0..S9 takes. */
export const S9_FRACTION = 0.6;

/**
 * Where a reading sits on the bar, 0..1 (null: no reading, the bar is empty).
 * @param {number | null | undefined} dbm
 */
export function sMeterFraction(dbm) {
  if (typeof dbm !== "number" || !Number.isFinite(dbm)) return 0;
  let fraction;
  if (dbm <= S9_DBM) fraction = (S9_FRACTION * (dbm - S0_DBM)) / (S9_DBM - S0_DBM);
  else fraction = S9_FRACTION + ((1 - S9_FRACTION) * (dbm - S9_DBM)) / TOP_OVER_S9_DB;
  return Math.min(1, Math.max(0, fraction));
}

/**
 * The bar's ticks: S1, S3, S5, S7, S9 labelled (every S-unit ticked), +20 and +40.
 * @returns {{label: string, fraction: number, major: boolean}[]}
 */
export function sMeterTicks() {
  const ticks = [];
  for (let unit = 1; unit <= 9; unit += 1) {
    ticks.push({
      label: unit % 2 === 1 ? `S${unit}` : "",
      fraction: sMeterFraction(S9_DBM - (9 - unit) * DB_PER_S_UNIT),
      major: unit % 2 === 1,
    });
  }
  for (const over of [20, 40]) {
    ticks.push({ label: `+${over}`, fraction: sMeterFraction(S9_DBM + over), major: true });
  }
  return ticks;
}

/** Below this the microphone counts as silent. */
export const MIC_FLOOR_DBFS = -60;

/**
 * The RMS level of samples in -1..1, in dBFS (-Infinity for silence).
 * @param {ArrayLike<number>} samples
 */
export function rmsDbfs(samples) {
  if (samples.length === 0) return -Infinity;
  let sum = 0;
  for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / samples.length);
  return rms > 0 ? 20 * Math.log10(rms) : -Infinity;
}

/**
 * A microphone level in dBFS as 0..1 for the meter: MIC_FLOOR_DBFS and below is 0, 0 dBFS is 1.
 * @param {number} dbfs
 */
export function micFraction(dbfs) {
  if (!Number.isFinite(dbfs) || dbfs <= MIC_FLOOR_DBFS) return 0;
  return Math.min(1, (dbfs - MIC_FLOOR_DBFS) / -MIC_FLOOR_DBFS);
}

/** The S-meter bar: a track with ticks and a fill whose width follows the reading. */
export class SMeterBar {
  /** @param {HTMLElement} container the bar's element (its content is made here) */
  constructor(container) {
    const doc = container.ownerDocument;
    container.replaceChildren();
    container.classList.add("smeter-scale");
    const track = doc.createElement("div");
    track.className = "smeter-track";
    this._fill = doc.createElement("div");
    this._fill.className = "smeter-fill";
    track.append(this._fill);
    const ticks = doc.createElement("div");
    ticks.className = "smeter-ticks";
    for (const tick of sMeterTicks()) {
      const mark = doc.createElement("span");
      mark.className = tick.major ? "tick major" : "tick";
      if (tick.fraction > S9_FRACTION) mark.classList.add("over");
      mark.textContent = tick.label;
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy
      mark.style.left = `${(tick.fraction * 100).toFixed(2)}%`;
      ticks.append(mark);
    }
    container.append(track, ticks);
    this._container = container;
    this.fraction = 0;
    this.show(null);
  }

  /** @param {number | null | undefined} dbm */
  show(dbm) {
    const fraction = sMeterFraction(dbm);
    this.fraction = fraction;
    this._fill.style.width = `${(fraction * 100).toFixed(2)}%`;
    this._fill.classList.toggle("over", fraction > S9_FRACTION);
    this._container.dataset.fraction = fraction.toFixed(3);
  }
}
