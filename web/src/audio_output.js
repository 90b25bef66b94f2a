// What the operator hears of the station and how loud: plays the received track on the hidden
// `<audio id="rx-audio">` (Chromium decodes a remote WebRTC track only when a media element
// plays it), sets its volume and mute from the listening panel's slider and button (remembered
// in localStorage), and measures the received level (dBFS) with a Web Audio AnalyserNode on the
// same track for the RX meter. The analyser is lent to the spectrum; it is not connected to the
// speakers, so muting the element silences the audio but not the meter or the waterfall.

import { FrameLoop } from "./frameloop.js";

export const AUDIO_KEY = "radiocore-audio";
/** The RX meter's floor and top, dBFS. */
export const LEVEL_FLOOR_DB = -60;
export const LEVEL_TOP_DB = 0;
/** How fast the meter falls back (dB per second); it rises at once. */
export const LEVEL_RELEASE_DB_PER_S = 30;
/** The meter is updated at most this often (ms). */
export const METER_INTERVAL_MS = 50;
/** The meter's text changes at most this often (ms), so it can be read. */
export const LEVEL_TEXT_INTERVAL_MS = 250;
export const DEFAULT_PREFS = Object.freeze({ volume: 80, muted: false });
/** The analyser's FFT: ~11.7 Hz bins at 48 kHz. */
export const FFT_SIZE = 2 ** 12; // a power of two, as AnalyserNode requires

/** @typedef {{volume: number, muted: boolean}} AudioPrefs */

/**
 * The stored preferences, or the defaults for what is missing or broken.
 * @param {string | null | undefined} text what localStorage holds
 * @returns {AudioPrefs}
 */
export function parsePrefs(text) {
  /** @type {any} */
  let stored = null;
  try {
    stored = text ? JSON.parse(text) : null;
  } catch {
    stored = null;
  }
  const volume = Number(stored?.volume);
  return {
    volume: Number.isFinite(volume)
      ? Math.round(Math.min(100, Math.max(0, volume)))
      : DEFAULT_PREFS.volume,
    muted: stored?.muted === true,
  };
}

/**
 * The RMS level of samples in dBFS (-Infinity for digital silence).
 * @param {ArrayLike<number>} samples -1..1
 * @returns {number}
 */
export function rmsDbfs(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  if (samples.length === 0 || sum === 0) return -Infinity;
  return 10 * Math.log10(sum / samples.length);
}

/**
 * The meter's next reading: up at once to a louder level, down at most `LEVEL_RELEASE_DB_PER_S`,
 * kept within the floor and the top.
 * @param {number} shown the reading now
 * @param {number} measured the level just measured (dBFS; -Infinity for silence)
 * @param {number} elapsedMs since the last reading
 * @returns {number}
 */
export function meterReading(shown, measured, elapsedMs) {
  const db = Number.isNaN(measured) ? -Infinity : measured;
  const level = Math.min(LEVEL_TOP_DB, Math.max(LEVEL_FLOOR_DB, db));
  if (!(level < shown)) return level;
  const fallen = shown - (LEVEL_RELEASE_DB_PER_S * Math.max(0, elapsedMs)) / 1000;
  return Math.max(level, fallen);
}

/**
 * The meter's words: "-18 dBFS", or "—" at the floor (no signal).
 * @param {number} reading
 * @returns {string}
 */
export function levelText(reading) {
  if (!Number.isFinite(reading) || reading <= LEVEL_FLOOR_DB) return "—";
  return `${Math.round(reading)} dBFS`;
}

/**
 * @typedef {{
 *   audio: HTMLAudioElement,
 *   volume: HTMLInputElement,
 *   volumeOutput: HTMLOutputElement,
 *   mute: HTMLButtonElement,
 *   meter: HTMLMeterElement,
 *   meterText: Element,
 *   play: HTMLButtonElement,
 * }} AudioElements
 */

export class AudioOutput {
  /**
   * @param {{
   *   elements: AudioElements,
   *   window: Window & {AudioContext?: typeof AudioContext},
   *   storage: Storage | null,
   *   analyser?: (analyser: AnalyserNode | null) => void,
   * }} options `analyser` is told when the received track's analyser comes and goes
   */
  constructor({ elements, window, storage, analyser = () => {} }) {
    this.els = elements;
    this._win = window;
    this._storage = storage;
    this._onAnalyser = analyser;
    /** @type {AudioPrefs} */
    this.prefs = parsePrefs(this._read());
    /** @type {AudioContext | null} one for the page: browsers limit how many there may be */
    this._context = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this._source = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {Float32Array<ArrayBuffer>} */
    this._samples = new Float32Array(FFT_SIZE);
    this._reading = LEVEL_FLOOR_DB;
    this._lastText = -Infinity;
    this._meterLoop = new FrameLoop({
      window,
      intervalMs: METER_INTERVAL_MS,
      wanted: () => this.analyser !== null,
      draw: (now, elapsed) => this._tick(now, elapsed),
    });

    const els = this.els;
    els.volume.addEventListener("input", () => this.setVolume(Number(els.volume.value)));
    els.mute.addEventListener("click", () => this.setMuted(!this.prefs.muted));
    els.play.addEventListener("click", () => this._resume());
    this._render();
  }

  /**
   * Plays the station's audio and measures it; says so when the browser blocks playback.
   * @param {MediaStream} stream
   * @param {(code: string, message: string) => void} showError
   */
  play(stream, showError) {
    const audio = this.els.audio;
    audio.srcObject = stream;
    this._applyToElement();
    audio.play().then(
      () => {
        this.els.play.hidden = true;
      },
      (err) => {
        if (err?.name === "NotAllowedError") {
          this.els.play.hidden = false;
          showError("autoplay", "The browser blocked playback: press “Play audio”.");
        }
      },
    );
    this._measure(stream);
  }

  /** Stops the audio and the meter (the page's AudioContext stays for the next station). */
  stop() {
    this.els.audio.pause();
    this.els.audio.srcObject = null;
    this.els.play.hidden = true;
    this._source?.disconnect();
    this._source = null;
    this.analyser?.disconnect();
    this.analyser = null;
    this._onAnalyser(null);
    this._reading = LEVEL_FLOOR_DB;
    this._meterLoop.restart();
    this._renderLevel(true);
  }

  /** @param {number} volume 0..100 */
  setVolume(volume) {
    this.prefs = { ...this.prefs, volume: Math.round(Math.min(100, Math.max(0, volume))) };
    this._save();
    this._render();
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.prefs = { ...this.prefs, muted };
    this._save();
    this._render();
    this._resume(); // a click is a user gesture: the moment to start a suspended context
  }

  /** The element follows the preferences. */
  _applyToElement() {
    const audio = this.els.audio;
    audio.volume = this.prefs.volume / 100;
    audio.muted = this.prefs.muted;
  }

  _render() {
    const els = this.els;
    const { volume, muted } = this.prefs;
    this._applyToElement();
    if (els.volume.value !== String(volume)) els.volume.value = String(volume);
    els.volume.setAttribute("aria-valuetext", `${volume} %`);
    els.volumeOutput.textContent = `${volume} %`;
    els.mute.setAttribute("aria-pressed", String(muted));
    els.mute.textContent = muted ? "Unmute" : "Mute";
    els.mute.classList.toggle("muted", muted);
  }

  /**
   * An analyser on the received track (not connected to the speakers: the element plays it).
   * @param {MediaStream} stream
   */
  _measure(stream) {
    this._source?.disconnect();
    this.analyser?.disconnect();
    this._source = null;
    this.analyser = null;
    const AudioContextClass = this._win.AudioContext;
    if (typeof AudioContextClass !== "function" || stream.getAudioTracks().length === 0) {
      this._onAnalyser(null);
      return;
    }
    try {
      const context = (this._context ??= new AudioContextClass());
      this._source = context.createMediaStreamSource(stream);
      const analyser = context.createAnalyser();
      analyser.fftSize = FFT_SIZE;
      analyser.smoothingTimeConstant = 0.5;
      this._source.connect(analyser);
      this.analyser = analyser;
      if (context.state === "suspended") {
        // no user gesture yet: the next one starts it
        void context.resume().catch(() => {});
        this._win.addEventListener("pointerdown", () => this._resume(), { once: true });
        this._win.addEventListener("keydown", () => this._resume(), { once: true });
      }
    } catch {
      this._source = null;
      this.analyser = null; // no meter and no spectrum; the audio itself still plays
    }
    this._onAnalyser(this.analyser);
    this._meterLoop.update();
  }

  _resume() {
    if (this._context?.state === "suspended") void this._context.resume().catch(() => {});
    const audio = this.els.audio;
    if (audio.srcObject !== null && audio.paused) {
      audio.play().then(
        () => {
          this.els.play.hidden = true;
        },
        () => {},
      );
    }
  }

  /**
   * One reading of the RX meter (the loop runs while there is a track and the page is seen).
   * @param {number} now
   * @param {number} elapsed ms since the last reading
   */
  _tick(now, elapsed) {
    const analyser = this.analyser;
    if (analyser === null) return;
    analyser.getFloatTimeDomainData(this._samples);
    this._reading = meterReading(this._reading, rmsDbfs(this._samples), elapsed);
    this.els.meter.value = this._reading;
    if (now - this._lastText >= LEVEL_TEXT_INTERVAL_MS) {
      this._lastText = now;
      this._renderLevel(false);
    }
  }

  /** @param {boolean} reset */
  _renderLevel(reset) {
    if (reset) this.els.meter.value = LEVEL_FLOOR_DB;
    const text = levelText(this._reading);
    if (this.els.meterText.textContent !== text) this.els.meterText.textContent = text;
  }

  _read() {
    try {
      return this._storage?.getItem(AUDIO_KEY) ?? null;
    } catch {
      return null;
    }
  }

  _save() {
    try {
      this._storage?.setItem(AUDIO_KEY, JSON.stringify(this.prefs));
    } catch {
      // storage refused: the settings last for this page only
    }
  }
}
