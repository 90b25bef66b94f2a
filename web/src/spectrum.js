// The received audio's spectrum and waterfall, 0–4 kHz (where SSB and CW voice is), drawn on two
// canvases from a Web Audio AnalyserNode in the browser (no server cost). A frame is drawn per
// animation frame while the page is visible; nothing runs while it is hidden or no audio is
// attached. The scaling and the colour map are pure functions, unit tested in node.

import { FrameLoop } from "./frameloop.js";

/** The highest frequency shown. */
export const MAX_HZ = 4_000;
/** dB (of the analyser's float spectrum) drawn as the bottom and the top of the scale. */
export const MIN_DB = -110;
export const MAX_DB = -30;
/** A new waterfall row at most this often (ms): ~8 s of history on a 160-row canvas. */
export const ROW_INTERVAL_MS = 50;
/** The spectrum is redrawn at most this often (ms): 25 a second is smooth and keeps it cheap. */
export const FRAME_INTERVAL_MS = 40;

/**
 * The colour map's stops: position 0..1 → [r, g, b]. Dark blue floor, through blue, cyan,
 * yellow and red, to white for the strongest signals.
 * @type {ReadonlyArray<readonly [number, readonly [number, number, number]]>}
 */
export const COLOUR_STOPS = Object.freeze([
  [0, [0, 0, 24]],
  [0.2, [0, 24, 120]],
  [0.4, [0, 150, 200]],
  [0.6, [240, 220, 40]],
  [0.8, [230, 60, 20]],
  [1, [255, 255, 255]],
]);

/**
 * A level in dB as a position on the scale: 0 at `minDb` (and below, and for silence, -Infinity
 * or NaN), 1 at `maxDb` and above.
 * @param {number} db
 * @param {number} [minDb]
 * @param {number} [maxDb]
 * @returns {number}
 */
export function scaleDb(db, minDb = MIN_DB, maxDb = MAX_DB) {
  if (!Number.isFinite(db)) return db === Infinity ? 1 : 0;
  const t = (db - minDb) / (maxDb - minDb);
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

/**
 * The colour of a position 0..1 on the scale (clamped), interpolated between the stops.
 * @param {number} t
 * @returns {[number, number, number]}
 */
export function colourOf(t) {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  for (let i = 1; i < COLOUR_STOPS.length; i++) {
    const [at, to] = COLOUR_STOPS[i];
    if (x <= at) {
      const [from, fromColour] = COLOUR_STOPS[i - 1];
      const f = (x - from) / (at - from);
      return [
        Math.round(fromColour[0] + (to[0] - fromColour[0]) * f),
        Math.round(fromColour[1] + (to[1] - fromColour[1]) * f),
        Math.round(fromColour[2] + (to[2] - fromColour[2]) * f),
      ];
    }
  }
  const last = COLOUR_STOPS[COLOUR_STOPS.length - 1][1];
  return [last[0], last[1], last[2]];
}

/**
 * The 256-entry lookup table of `colourOf`, RGBA, for drawing rows fast.
 * @returns {Uint8ClampedArray}
 */
export function colourTable() {
  const table = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = colourOf(i / 255);
    table.set([r, g, b, 255], i * 4);
  }
  return table;
}

/**
 * Which analyser bins each of `width` pixel columns covers, 0 Hz to `maxHz`: `[start, end)`
 * pairs, at least one bin each.
 * @param {number} binCount the analyser's frequencyBinCount (fftSize / 2)
 * @param {number} sampleRate the AudioContext's, Hz
 * @param {number} width columns
 * @param {number} [maxHz]
 * @returns {Uint32Array} 2 × width: start0, end0, start1, end1, …
 */
export function columnBins(binCount, sampleRate, width, maxHz = MAX_HZ) {
  const binHz = sampleRate / 2 / binCount;
  const lastBin = Math.max(1, Math.min(binCount, Math.ceil(maxHz / binHz)));
  const ranges = new Uint32Array(width * 2);
  for (let x = 0; x < width; x++) {
    const start = Math.min(lastBin - 1, Math.floor((x * lastBin) / width));
    const end = Math.max(start + 1, Math.min(lastBin, Math.floor(((x + 1) * lastBin) / width)));
    ranges[2 * x] = start;
    ranges[2 * x + 1] = end;
  }
  return ranges;
}

/**
 * Each column's position on the scale (0..1): the strongest bin it covers, so a narrow CW
 * signal is not averaged away.
 * @param {ArrayLike<number>} spectrum dB per bin (getFloatFrequencyData)
 * @param {Uint32Array} ranges from `columnBins`
 * @param {number} [minDb]
 * @param {number} [maxDb]
 * @returns {Float32Array}
 */
export function columnLevels(spectrum, ranges, minDb = MIN_DB, maxDb = MAX_DB) {
  const width = ranges.length / 2;
  const levels = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    let best = -Infinity;
    for (let bin = ranges[2 * x]; bin < ranges[2 * x + 1]; bin++) {
      const db = spectrum[bin];
      if (db > best) best = db;
    }
    levels[x] = scaleDb(best, minDb, maxDb);
  }
  return levels;
}

/**
 * One waterfall row (RGBA) from column levels.
 * @param {Float32Array} levels 0..1 per column
 * @param {Uint8ClampedArray} table from `colourTable`
 * @param {Uint8ClampedArray} [into] reused row buffer (4 × levels.length)
 * @returns {Uint8ClampedArray}
 */
export function waterfallRow(levels, table, into = new Uint8ClampedArray(levels.length * 4)) {
  for (let x = 0; x < levels.length; x++) {
    const i = Math.round(levels[x] * 255) * 4;
    into[4 * x] = table[i];
    into[4 * x + 1] = table[i + 1];
    into[4 * x + 2] = table[i + 2];
    into[4 * x + 3] = 255;
  }
  return into;
}

/**
 * Draws the spectrum line and the waterfall of an analyser's input while the page is visible.
 */
export class SpectrumView {
  /**
   * @param {{
   *   spectrum: HTMLCanvasElement,
   *   waterfall: HTMLCanvasElement,
   *   window: Window,
   * }} options
   */
  constructor({ spectrum, waterfall, window }) {
    this._spectrum = spectrum;
    this._waterfall = waterfall;
    this._table = colourTable();
    /** @type {AnalyserNode | null} */
    this._analyser = null;
    /** @type {Float32Array<ArrayBuffer>} */
    this._bins = new Float32Array(0);
    /** @type {Uint32Array} */
    this._ranges = new Uint32Array(0);
    /** @type {ImageData | null} */
    this._row = null;
    this._lastRow = -Infinity;
    this._loop = new FrameLoop({
      window,
      intervalMs: FRAME_INTERVAL_MS,
      wanted: () => this._analyser !== null,
      draw: (now) => this._draw(now),
    });
    this.clear();
  }

  /**
   * Starts drawing what `analyser` hears (null: stop and clear).
   * @param {AnalyserNode | null} analyser
   */
  attach(analyser) {
    this._analyser = analyser;
    if (analyser !== null) {
      this._bins = new Float32Array(analyser.frequencyBinCount);
      this._ranges = columnBins(
        analyser.frequencyBinCount,
        analyser.context.sampleRate,
        this._waterfall.width,
      );
    } else {
      this.clear();
    }
    this._loop.update();
  }

  /** Both canvases back to the floor colour. */
  clear() {
    const [r, g, b] = colourOf(0);
    for (const canvas of [this._spectrum, this._waterfall]) {
      const ctx = canvas.getContext("2d");
      if (ctx === null) continue;
      ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
  }

  /**
   * One frame: the spectrum, and a waterfall row every `ROW_INTERVAL_MS` (the loop runs while
   * there is an analyser and the page is seen, at most every `FRAME_INTERVAL_MS`).
   * @param {number} now
   */
  _draw(now) {
    const analyser = this._analyser;
    if (analyser === null) return;
    analyser.getFloatFrequencyData(this._bins);
    const levels = columnLevels(this._bins, this._ranges);
    this._drawSpectrum(levels);
    if (now - this._lastRow >= ROW_INTERVAL_MS) {
      this._lastRow = now;
      this._drawRow(levels);
    }
  }

  /** @param {Float32Array} levels */
  _drawSpectrum(levels) {
    const canvas = this._spectrum;
    const ctx = canvas.getContext("2d");
    if (ctx === null) return;
    const { width, height } = canvas;
    const [r, g, b] = colourOf(0);
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(0, 0, width, height);
    // 1 kHz grid lines
    ctx.fillStyle = "rgba(255, 255, 255, 0.18)";
    for (let hz = 1000; hz < MAX_HZ; hz += 1000) {
      ctx.fillRect(Math.round((hz / MAX_HZ) * width), 0, 1, height);
    }
    ctx.beginPath();
    ctx.moveTo(0, height);
    const step = width / levels.length;
    for (let x = 0; x < levels.length; x++) {
      ctx.lineTo(x * step, height - 1 - levels[x] * (height - 2));
    }
    ctx.lineTo(width, height);
    ctx.closePath();
    ctx.fillStyle = "rgba(0, 150, 200, 0.45)";
    ctx.fill();
    ctx.strokeStyle = "rgb(240, 220, 40)";
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  /** @param {Float32Array} levels */
  _drawRow(levels) {
    const canvas = this._waterfall;
    const ctx = canvas.getContext("2d");
    if (ctx === null) return;
    const { width, height } = canvas;
    if (this._row === null || this._row.width !== levels.length) {
      this._row = ctx.createImageData(levels.length, 1);
    }
    waterfallRow(levels, this._table, this._row.data);
    // the history moves down one row; the newest is on top
    ctx.drawImage(canvas, 0, 0, width, height - 1, 0, 1, width, height - 1);
    ctx.putImageData(this._row, 0, 0);
  }
}
