// The microphone for transmitting: opened as a voice input (the browser's echo canceller keeps
// the received audio out of it), muted until PTT by whoever holds its track, and the words
// that tell the operator where it stands.

/** How long joining waits for the microphone before it starts listening without it. */
export const MIC_WAIT_MS = 1500;

export const MIC_CONSTRAINTS = Object.freeze({
  audio: Object.freeze({ echoCancellation: true, noiseSuppression: true, autoGainControl: true }),
  video: false,
});

/**
 * @typedef {"none" | "pending" | "ready" | "refused" | "ended"} MicrophoneState
 */

/**
 * Why `getUserMedia` failed, in the operator's words.
 * @param {unknown} error
 */
export function describeMicrophoneError(error) {
  const name = error instanceof Error ? error.name : "";
  if (name === "NotAllowedError") return "access was refused";
  if (name === "NotFoundError") return "no microphone was found";
  if (name === "NotReadableError") return "the microphone is in use or failed";
  const detail = error instanceof Error ? error.message || name : String(error);
  return `it could not be opened (${detail})`;
}

/**
 * Opens the microphone as a voice input: the stream, or why there is none.
 * @param {MediaDevices | undefined} mediaDevices `navigator.mediaDevices`
 * @returns {Promise<{stream: MediaStream} | {refused: string}>}
 */
export async function openMicrophone(mediaDevices) {
  if (typeof mediaDevices?.getUserMedia !== "function") {
    // Browsers offer getUserMedia only in a secure context (HTTPS or localhost).
    return { refused: "this page has no microphone access (it needs HTTPS)" };
  }
  let stream;
  try {
    stream = await mediaDevices.getUserMedia(MIC_CONSTRAINTS);
  } catch (err) {
    return { refused: describeMicrophoneError(err) };
  }
  if (stream.getAudioTracks().length === 0) {
    stopStream(stream);
    return { refused: "the browser gave no audio track" };
  }
  return { stream };
}

/**
 * Lets go of the stream's tracks (the browser's recording indicator goes off).
 * @param {MediaStream | null | undefined} stream
 */
export function stopStream(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

/** The microphone line of the transmit panel, by state. */
const MICROPHONE_LINES = Object.freeze({
  none: () => "Microphone: —",
  // pending: before listening started
  asking: () => "Microphone: asking the browser…",
  // pending: listening started without it
  waiting: () => "Microphone: waiting for your permission…",
  ready: () => "Microphone: ready, muted until you press PTT.",
  // ready, while keyed
  live: () => "Microphone: live.",
  refused: (/** @type {string} */ why) =>
    `Microphone: ${why}. Listening only: transmitting is off.`,
  ended: () => "Microphone: disconnected. Transmitting is off; rejoin to use it.",
});

/**
 * The microphone line of the transmit panel.
 * @param {keyof typeof MICROPHONE_LINES} line
 * @param {string} [why] for "refused": the reason
 */
export function describeMicrophone(line, why = "") {
  return MICROPHONE_LINES[line](why);
}

/**
 * What the transmit panel says on a page the browser gives no microphone because it is not a
 * secure context (plain HTTP from a host other than this machine); null on a secure page.
 * @param {boolean} isSecureContext `window.isSecureContext`
 * @param {string} origin `location.origin`
 * @returns {string | null}
 */
export function insecureContextProblem(isSecureContext, origin) {
  if (isSecureContext) return null;
  return (
    `Transmitting is off: this page (${origin}) is not secure, and browsers give the ` +
    "microphone only to secure pages. Open the console over HTTPS (https://…), or as " +
    "http://localhost on the machine that runs the server."
  );
}

/** How often the microphone meter reads its analyser. */
export const MIC_METER_INTERVAL_MS = 50;

/**
 * The microphone's level on a meter while the microphone is open, keyed or not: a Web Audio
 * analyser on a clone of the track (the sent track is disabled while released, and a disabled
 * track reads as silence).
 */
export class MicLevelMeter {
  /**
   * @param {{
   *   meter: HTMLMeterElement,
   *   toFraction: (samples: Float32Array) => number,
   *   audioContext?: () => AudioContext,
   * }} options
   */
  constructor({ meter, toFraction, audioContext = () => new AudioContext() }) {
    this._meter = meter;
    /** what is hidden without a microphone: the meter's row (with its label), or the meter */
    this._box = /** @type {HTMLElement} */ (meter.closest(".mic-level") ?? meter);
    this._toFraction = toFraction;
    this._newContext = audioContext;
    /** @type {MediaStreamTrack | null} the track followed */
    this._track = null;
    /** @type {{context: AudioContext, clone: MediaStreamTrack, timer: any} | null} */
    this._running = null;
    /** the highest level shown since the track was followed (0..1) */
    this.peak = 0;
  }

  /**
   * Meters `track` (null: nothing); the same track again changes nothing.
   * @param {MediaStreamTrack | null} track
   */
  follow(track) {
    if (track === this._track) return;
    this._stop();
    this._track = track;
    this.peak = 0;
    this._meter.value = 0;
    this._box.hidden = track === null;
    if (track === null) return;
    try {
      const context = this._newContext();
      const clone = track.clone();
      clone.enabled = true;
      const source = context.createMediaStreamSource(new MediaStream([clone]));
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser); // not to the speakers
      const samples = new Float32Array(analyser.fftSize);
      const timer = setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        const level = this._toFraction(samples);
        this.peak = Math.max(this.peak, level);
        this._meter.value = level;
      }, MIC_METER_INTERVAL_MS);
      this._running = { context, clone, timer };
      void context.resume().catch(() => {});
    } catch {
      this._box.hidden = true; // no Web Audio here: no meter, transmitting still works
    }
  }

  _stop() {
    const running = this._running;
    this._running = null;
    if (running === null) return;
    clearInterval(running.timer);
    running.clone.stop();
    void running.context.close().catch(() => {});
  }
}
