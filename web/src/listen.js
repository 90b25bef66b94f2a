// The listening panel (`#listen-panel`): finds its elements and ties together what the
// operator hears and sees of the received audio — `audio_output` (volume, mute, RX meter),
// `spectrum` (spectrum and waterfall) and `linkstats` (the link line). console.js feeds it the
// station's track, its peer connection's state and what the recovery is doing.

import { AudioOutput } from "./audio_output.js";
import { LinkMonitor } from "./linkstats.js";
import { SpectrumView } from "./spectrum.js";
import { safeStorage } from "./theme.js";

/**
 * @param {Document} doc
 * @param {string} id
 */
function byId(doc, id) {
  const element = doc.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

export class ListenPanel {
  /** @param {Window} win */
  constructor(win) {
    const doc = win.document;
    const get = (/** @type {string} */ id) => byId(doc, id);
    this.spectrum = new SpectrumView({
      spectrum: /** @type {HTMLCanvasElement} */ (get("spectrum")),
      waterfall: /** @type {HTMLCanvasElement} */ (get("waterfall")),
      window: win,
    });
    this.output = new AudioOutput({
      elements: {
        audio: /** @type {HTMLAudioElement} */ (get("rx-audio")),
        volume: /** @type {HTMLInputElement} */ (get("rx-volume")),
        volumeOutput: /** @type {HTMLOutputElement} */ (get("rx-volume-output")),
        mute: /** @type {HTMLButtonElement} */ (get("rx-mute")),
        meter: /** @type {HTMLMeterElement} */ (get("rx-level")),
        meterText: get("rx-level-text"),
        play: /** @type {HTMLButtonElement} */ (get("rx-play")),
      },
      window: win,
      storage: safeStorage(win),
      analyser: (analyser) => this.spectrum.attach(analyser),
    });
    this.link = new LinkMonitor({
      line: get("link-quality"),
      figures: get("link-figures"),
      activity: get("link-activity"),
      document: doc,
    });
  }

  /**
   * The station's audio arrived: play it, measure it, watch its link.
   * @param {MediaStream} stream
   * @param {RTCPeerConnection | null} pc
   * @param {(code: string, message: string) => void} showError
   */
  play(stream, pc, showError) {
    this.output.play(stream, showError);
    if (pc !== null) this.link.start(pc);
  }

  /** The session closed. */
  stop() {
    this.output.stop();
    this.link.stop();
  }

  /** A station joined afresh (not by the recovery). */
  reset() {
    this.link.reset();
  }

  /** @param {string} state the peer connection's */
  connection(state) {
    this.link.connection(state);
  }

  /** @param {string} text what the recovery is doing ("" : nothing) */
  recovering(text) {
    this.link.recovering(text);
  }
}
