// A throttled animation loop for the meters and the waterfall: one requestAnimationFrame at a
// time, drawing at most every `intervalMs`, and only while there is something to draw and the
// page is visible (hidden pages cost nothing).

export class FrameLoop {
  /**
   * @param {{
   *   window: Window,
   *   intervalMs: number,
   *   wanted: () => boolean,
   *   draw: (now: number, elapsedMs: number) => void,
   * }} options `wanted`: there is something to draw; `draw` gets the time since the last
   *   drawn frame (0 for the first one after a `restart`)
   */
  constructor({ window: win, intervalMs, wanted, draw }) {
    this._win = win;
    this._intervalMs = intervalMs;
    this._wanted = wanted;
    this._draw = draw;
    /** @type {number | null} */
    this._frame = null;
    this._last = -Infinity;
    win.document.addEventListener("visibilitychange", () => this.update());
  }

  /** Starts or stops the loop as `wanted()` and the page's visibility now say. */
  update() {
    const run = this._wanted() && !this._win.document.hidden;
    if (run && this._frame === null) {
      this._frame = this._win.requestAnimationFrame((now) => this._tick(now));
    } else if (!run && this._frame !== null) {
      this._win.cancelAnimationFrame(this._frame);
      this._frame = null;
    }
  }

  /** The next frame draws at once, as the first one (a new source); then `update()`. */
  restart() {
    this._last = -Infinity;
    this.update();
  }

  /** @param {number} now */
  _tick(now) {
    this._frame = null;
    if (!this._wanted()) return;
    if (now - this._last >= this._intervalMs - 2) {
      // (2 ms of slack: a 60 Hz display's frames come every 16.7 ms, not exactly on time)
      const elapsed = Number.isFinite(this._last) ? now - this._last : 0;
      this._last = now;
      this._draw(now, elapsed);
    }
    this.update();
  }
}
