// The amateur bands from 160 m to 70 cm (IARU, widest regional edges), and which of them a
// rig can tune: a band is offered when it overlaps one of the station's `freq_ranges`. Pure:
// node:test covers it.

/**
 * @typedef {{name: string, low: number, high: number, start: number}} Band
 *   `start`: where a band button tunes first (a usual voice frequency), in Hz
 */

/** @type {ReadonlyArray<Readonly<Band>>} */
export const AMATEUR_BANDS = Object.freeze(
  [
    { name: "160m", low: 1_800_000, high: 2_000_000, start: 1_840_000 },
    { name: "80m", low: 3_500_000, high: 4_000_000, start: 3_700_000 },
    { name: "60m", low: 5_351_500, high: 5_366_500, start: 5_357_000 },
    { name: "40m", low: 7_000_000, high: 7_300_000, start: 7_100_000 },
    { name: "30m", low: 10_100_000, high: 10_150_000, start: 10_136_000 },
    { name: "20m", low: 14_000_000, high: 14_350_000, start: 14_200_000 },
    { name: "17m", low: 18_068_000, high: 18_168_000, start: 18_130_000 },
    { name: "15m", low: 21_000_000, high: 21_450_000, start: 21_300_000 },
    { name: "12m", low: 24_890_000, high: 24_990_000, start: 24_950_000 },
    { name: "10m", low: 28_000_000, high: 29_700_000, start: 28_500_000 },
    { name: "6m", low: 50_000_000, high: 54_000_000, start: 50_150_000 },
    { name: "4m", low: 70_000_000, high: 70_500_000, start: 70_200_000 },
    { name: "2m", low: 144_000_000, high: 148_000_000, start: 144_300_000 },
    { name: "70cm", low: 420_000_000, high: 450_000_000, start: 432_200_000 },
  ].map((band) => Object.freeze(band)),
);

/**
 * Where a band's button tunes on this rig: the band's usual start when the rig covers it, else
 * the lowest frequency of the band the rig covers; null when the rig has none of the band.
 * Without known ranges every band is offered at its start.
 * @param {Readonly<Band>} band
 * @param {ReadonlyArray<{low: number, high: number}>} ranges the station's `freq_ranges`
 * @returns {number | null}
 */
export function bandEntry(band, ranges) {
  if (ranges.length === 0) return band.start;
  if (ranges.some((r) => band.start >= r.low && band.start <= r.high)) return band.start;
  let best = null;
  for (const r of ranges) {
    const low = Math.max(band.low, r.low);
    if (low <= Math.min(band.high, r.high) && (best === null || low < best)) best = low;
  }
  return best;
}

/**
 * The bands to offer for a rig's ranges, in band order, with where each tunes first.
 * @param {ReadonlyArray<{low: number, high: number}>} ranges
 * @returns {{band: Readonly<Band>, entry: number}[]}
 */
export function offeredBands(ranges) {
  /** @type {{band: Readonly<Band>, entry: number}[]} */
  const offered = [];
  for (const band of AMATEUR_BANDS) {
    const entry = bandEntry(band, ranges);
    if (entry !== null) offered.push({ band, entry });
  }
  return offered;
}

/**
 * The band a frequency is in, or null (outside every amateur band).
 * @param {number} hz
 * @returns {Readonly<Band> | null}
 */
export function bandOf(hz) {
  return AMATEUR_BANDS.find((band) => hz >= band.low && hz <= band.high) ?? null;
}

/**
 * Where a band button tunes: the last frequency used in that band (if the rig still accepts
 * it), else the band's entry on this rig.
 * @param {{band: Readonly<Band>, entry: number}} offer
 * @param {number | undefined} remembered the last frequency seen in the band
 * @param {ReadonlyArray<{low: number, high: number}>} ranges
 */
export function bandTarget(offer, remembered, ranges) {
  if (
    remembered !== undefined &&
    remembered >= offer.band.low &&
    remembered <= offer.band.high &&
    (ranges.length === 0 || ranges.some((r) => remembered >= r.low && remembered <= r.high))
  ) {
    return remembered;
  }
  return offer.entry;
}
