// The transmit panel's own parts around the PTT button: the "latching PTT" option and the
// confirmation each latched keying asks for, the microphone level meter, the transmit clock
// (elapsed time, and the countdown to the server's time-out when it said its limit), and the
// plain statement of why a page that is not a secure context cannot transmit.

import { MicLevelMeter, insecureContextProblem } from "./microphone.js";
import { micFraction, rmsDbfs } from "./meter.js";
import { TxClock } from "./txclock.js";

/**
 * @param {Document} doc
 * @param {string} id
 */
function byId(doc, id) {
  const element = doc.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

export class TransmitPanel {
  /**
   * @param {{
   *   document: Document,
   *   window: Window,
   *   latch: () => void,
   *   unlatch: () => void,
   *   changed: () => void,
   * }} options `latch`: the operator confirmed a latched keying; `unlatch`: latching was
   *   turned off (unkey if latched); `changed`: the panel's state changed (re-render the hint)
   */
  constructor({ document: doc, window: win, latch, unlatch, changed }) {
    this._latchBox = /** @type {HTMLInputElement} */ (byId(doc, "ptt-latch"));
    this._confirmBox = byId(doc, "ptt-confirm");
    this._confirmYes = /** @type {HTMLButtonElement} */ (byId(doc, "ptt-confirm-yes"));
    this._confirmNo = /** @type {HTMLButtonElement} */ (byId(doc, "ptt-confirm-no"));
    this._insecure = byId(doc, "tx-insecure");
    this.clock = new TxClock({ element: byId(doc, "tx-clock") });
    this.micMeter = new MicLevelMeter({
      meter: /** @type {HTMLMeterElement} */ (byId(doc, "mic-level")),
      toFraction: (samples) => micFraction(rmsDbfs(samples)),
    });

    // Off on every load: a transmitter that stays keyed is chosen each time, never inherited.
    this._latchBox.checked = false;
    this._latchBox.addEventListener("change", () => {
      if (!this._latchBox.checked) {
        this.cancelConfirm();
        unlatch();
      }
      changed();
    });
    this._confirmYes.addEventListener("click", () => {
      this.cancelConfirm();
      latch();
    });
    this._confirmNo.addEventListener("click", () => this.cancelConfirm());
    this._confirmBox.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.cancelConfirm();
    });

    const problem = insecureContextProblem(win.isSecureContext, win.location.origin);
    this._insecure.hidden = problem === null;
    this._insecure.textContent = problem ?? "";
  }

  /** Latching PTT is chosen. */
  get latching() {
    return this._latchBox.checked;
  }

  /** Asks the operator to confirm a latched keying. */
  askConfirm() {
    this._confirmBox.hidden = false;
    this._confirmYes.focus();
  }

  cancelConfirm() {
    this._confirmBox.hidden = true;
  }

  /** @param {boolean} keyed this page keyed (true) or unkeyed (false) */
  keyed(keyed) {
    if (keyed) {
      this.cancelConfirm();
      this.clock.start();
    } else {
      this.clock.stop();
    }
  }

  /** @param {number | null} limitS the server's `tx_limit_s` for this operator */
  setLimit(limitS) {
    this.clock.setLimit(limitS);
  }

  /** A new station (or none). */
  reset() {
    this.cancelConfirm();
    this.clock.reset();
    this.micMeter.follow(null);
  }
}
