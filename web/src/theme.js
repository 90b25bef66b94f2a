// The colour theme: light for the day, dark for night operating. The top bar's toggle button
// switches it and the choice is remembered (localStorage); without a choice the page follows
// the system's `prefers-color-scheme`, also when it changes. The theme is the `data-theme`
// attribute of <html> ("light" or "dark"); console.css holds the colours of each.

export const THEME_KEY = "radiocore-theme";

/** @typedef {"light" | "dark"} Theme */

/**
 * The theme a stored value names, or null for none (or garbage).
 * @param {string | null | undefined} stored
 * @returns {Theme | null}
 */
export function storedTheme(stored) {
  return stored === "light" || stored === "dark" ? stored : null;
}

/**
 * The theme to show: the operator's choice, else the system's preference.
 * @param {string | null | undefined} stored what localStorage holds
 * @param {boolean} prefersDark the system asks for dark
 * @returns {Theme}
 */
export function initialTheme(stored, prefersDark) {
  return storedTheme(stored) ?? (prefersDark ? "dark" : "light");
}

/**
 * @param {Theme} theme
 * @returns {Theme}
 */
export function otherTheme(theme) {
  return theme === "dark" ? "light" : "dark";
}

/**
 * localStorage, or null where it cannot be used (disabled, sandboxed).
 * @param {Window} win
 * @returns {Storage | null}
 */
export function safeStorage(win) {
  try {
    return win.localStorage ?? null;
  } catch {
    return null;
  }
}

export class ThemeToggle {
  /**
   * @param {Document} doc
   * @param {Window} win
   */
  constructor(doc, win) {
    this._root = doc.documentElement;
    this._storage = safeStorage(win);
    /** @type {HTMLButtonElement | null} */
    this._button = /** @type {HTMLButtonElement | null} */ (doc.getElementById("theme-toggle"));
    this._media = win.matchMedia?.("(prefers-color-scheme: dark)") ?? null;
    /** @type {Theme} */
    this.theme = initialTheme(this._read(), this._media?.matches === true);
    this._apply();
    this._button?.addEventListener("click", () => this.set(otherTheme(this.theme), true));
    // no choice made: follow the system when it switches (e.g. at dusk)
    this._media?.addEventListener?.("change", (event) => {
      if (storedTheme(this._read()) === null) this.set(event.matches ? "dark" : "light", false);
    });
  }

  /**
   * @param {Theme} theme
   * @param {boolean} remember the operator chose it
   */
  set(theme, remember) {
    this.theme = theme;
    if (remember) {
      try {
        this._storage?.setItem(THEME_KEY, theme);
      } catch {
        // storage full or refused: the choice lasts for this page only
      }
    }
    this._apply();
  }

  _read() {
    try {
      return this._storage?.getItem(THEME_KEY) ?? null;
    } catch {
      return null;
    }
  }

  _apply() {
    this._root.dataset.theme = this.theme;
    const button = this._button;
    if (button === null) return;
    // a toggle: the name stays, aria-pressed says whether it is on
    button.setAttribute("aria-pressed", String(this.theme === "dark"));
  }
}
