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
