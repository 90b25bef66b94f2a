// Which page of the console is shown: a view named by the URL's fragment (`#/my-stations`), or
// the pairing page for the sticker's link (`/pair?id=…&code=…`, which the server answers with
// the console too). Signed out, only the sign-in and registration pages can be shown; a pairing
// link is kept (in the URL, so a reload keeps it too) until the board is paired, and signing in
// or registering then leads to it. The parsing and the choice are pure (node:test covers them);
// `Router` follows the location and tells the console when the view changes.

/** Every view, by name; the first is the one shown when the URL names none. */
export const VIEWS = Object.freeze([
  "stations",
  "my-stations",
  "public",
  "bookings",
  "pair",
  "signin",
  "register",
]);
/** The views shown to someone signed out. */
export const SIGNED_OUT_VIEWS = Object.freeze(["signin", "register"]);
/** The path (after the console's own base path) the pairing link opens. */
export const PAIR_PATH = "pair";

/**
 * @typedef {{boardId: string, code: string}} Pairing a sticker's board id and one-time code
 * @typedef {{view: string, pairing: Pairing | null}} Route
 * @typedef {{pathname: string, search: string, hash: string}} Where a location's parts
 */

/**
 * The path the console is served under: "/" for "/" and "/pair", "/radio/" for "/radio/pair".
 * @param {string} pathname
 */
export function basePath(pathname) {
  const last = pathname.lastIndexOf("/");
  return last < 0 ? "/" : pathname.slice(0, last + 1);
}

/**
 * The pairing a location carries: a path ending in `/pair` with a non-empty `id` and `code`.
 * @param {Where} where
 * @returns {Pairing | null}
 */
export function pairingOf(where) {
  if (where.pathname.slice(basePath(where.pathname).length) !== PAIR_PATH) return null;
  const query = new URLSearchParams(where.search);
  const boardId = (query.get("id") ?? "").trim();
  const code = (query.get("code") ?? "").trim();
  return boardId !== "" && code !== "" ? { boardId, code } : null;
}

/**
 * The view a location names: its fragment (`#/public`, `#public`), else the pairing page for a
 * pairing link, else the first view. An unknown fragment names the first view.
 * @param {Where} where
 * @returns {Route}
 */
export function parseRoute(where) {
  const pairing = pairingOf(where);
  const named = where.hash.replace(/^#\/?/, "").split(/[/?]/, 1)[0];
  let view = VIEWS[0];
  if (VIEWS.includes(named)) view = named;
  else if (named === "" && pairing !== null) view = "pair";
  return { view, pairing };
}

/**
 * The view to show for a route: signed out, the registration page when asked for, else sign-in;
 * signed in, never those two (the pairing page instead while a pairing link waits, else the
 * first view), and the pairing page only with a pairing link (else "my stations").
 * @param {Route} route
 * @param {boolean} signedIn
 * @returns {string}
 */
export function resolveView(route, signedIn) {
  if (!signedIn) return route.view === "register" ? "register" : "signin";
  if (SIGNED_OUT_VIEWS.includes(route.view)) return route.pairing !== null ? "pair" : VIEWS[0];
  if (route.view === "pair" && route.pairing === null) return "my-stations";
  return route.view;
}

/**
 * The fragment that names a view.
 * @param {string} view
 */
export function hashOf(view) {
  return `#/${view}`;
}

/**
 * @typedef {{
 *   location: {pathname: string, search: string, hash: string},
 *   history: {replaceState: (data: any, unused: string, url?: string) => void},
 *   addEventListener: (type: string, listener: () => void) => void,
 * }} RouterWindow
 */

/**
 * Follows the page's location. `changed(route)` is called for every change of the fragment
 * (links, the back button) and by `refresh()`; the console resolves and shows the view.
 */
export class Router {
  /**
   * @param {RouterWindow} win
   * @param {(route: Route) => void} changed
   */
  constructor(win, changed) {
    this._window = win;
    this._changed = changed;
    win.addEventListener("hashchange", () => this.refresh());
  }

  /** The route the location names now. */
  get route() {
    return parseRoute(this._window.location);
  }

  /** Tells the console the current route again (after signing in or out). */
  refresh() {
    this._changed(this.route);
  }

  /**
   * Shows another view (a history entry, like a link).
   * @param {string} view
   */
  go(view) {
    const hash = hashOf(view);
    if (this._window.location.hash === hash) this.refresh();
    else this._window.location.hash = hash; // `hashchange` follows
  }

  /**
   * Leaves the pairing link (the board is paired: its code is used up and must not linger in
   * the address bar or the history) for `view`, in place of the current history entry.
   * @param {string} view
   */
  leavePairing(view) {
    const { pathname } = this._window.location;
    this._window.history.replaceState(null, "", `${basePath(pathname)}${hashOf(view)}`);
    this.refresh();
  }
}
