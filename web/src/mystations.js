// "My stations" (docs/protocol.md, REST: `/api/boards…`): the operator's boards with their
// presence (kept live by the `presence` events), and for a board they own its settings (name,
// locator, bands, public listing, price), who else may use it (grants by email), its TX log and
// releasing it (after a confirmation; the new pairing code and agent secret are shown once).
// Boards others granted to the operator are listed with the right they hold. The requests and
// what is shown are built by pure functions (node:test covers them); `MyStationsPage` keeps the
// page in step.

import { segment } from "./api.js";
import { button, byId, el } from "./dom.js";
import { FormErrors } from "./forms.js";
import { localText } from "./localtime.js";
import { setText } from "./view.js";

/**
 * @typedef {import("./api.js").ApiRequest} ApiRequest
 * @typedef {{
 *   id: string, name: string, access: string, online: boolean, locator: string | null,
 *   bands: string[], public: boolean, price_eur: string | null, last_seen: string | null,
 *   paired_at: string | null,
 * }} BoardView `GET /api/boards`' entries
 * @typedef {{
 *   name: string, locator: string, bands: string, public: boolean, price: string,
 * }} SettingsForm
 * @typedef {{user_id: string, email: string, callsign: string, right: string}} Grant
 * @typedef {{
 *   callsign: string, user_id: string | null, started_at: string, ended_at: string | null,
 *   reason: string | null,
 * }} TxLogEntry
 */

/** The settings form's fields, as the request names them -> the inputs' ids. */
export const SETTINGS_FIELDS = Object.freeze({
  name: "settings-name",
  locator: "settings-locator",
  bands: "settings-bands",
  public: "settings-public",
  price_eur: "settings-price",
});
/** The grant form's fields -> the inputs' ids. */
export const GRANT_FIELDS = Object.freeze({ email: "grant-email", right: "grant-right" });
/** The rights a grant can give. */
export const RIGHTS = Object.freeze(["listen", "transmit"]);

/** @type {ApiRequest} */
export const MY_BOARDS_REQUEST = Object.freeze({ method: "GET", path: "/api/boards" });

/** @param {string} boardId */
const boardPath = (boardId) => `/api/boards/${segment(boardId)}`;

/**
 * Bands as typed ("20m, 40m", "20m 40m") as the request's list.
 * @param {string} text
 * @returns {string[]}
 */
export function parseBandList(text) {
  return text
    .split(/[\s,;]+/)
    .map((band) => band.trim())
    .filter((band) => band !== "");
}

/**
 * A price as typed ("12.50", "12,5", "" for free) as the request's value (a decimal string),
 * or undefined when it is not one.
 * @param {string} text
 * @returns {string | null | undefined}
 */
export function parsePrice(text) {
  const value = text.trim().replace(",", ".");
  if (value === "") return null;
  return /^\d+(\.\d{1,2})?$/.test(value) ? value : undefined;
}

/**
 * The settings change for what the form holds, or the problems to show first.
 * @param {string} boardId
 * @param {SettingsForm} form
 * @returns {{request: ApiRequest} | {problems: Record<string, string>}}
 */
export function settingsRequest(boardId, form) {
  /** @type {Record<string, string>} */
  const problems = {};
  const name = form.name.trim();
  if (name === "") problems.name = "Give the station a name.";
  const price = parsePrice(form.price);
  if (price === undefined) {
    problems.price_eur = "Give the price in euros an hour, like 12.50 (empty: free).";
  }
  if (Object.keys(problems).length > 0) return { problems };
  const locator = form.locator.trim();
  return {
    request: {
      method: "PUT",
      path: boardPath(boardId),
      body: {
        name,
        locator: locator === "" ? null : locator,
        bands: parseBandList(form.bands),
        public: form.public,
        price_eur: price,
      },
    },
  };
}

/**
 * The form's values for a board.
 * @param {BoardView} board
 * @returns {SettingsForm}
 */
export function settingsForm(board) {
  return {
    name: board.name,
    locator: board.locator ?? "",
    bands: board.bands.join(", "),
    public: board.public,
    price: board.price_eur ?? "",
  };
}

/**
 * A right given to the account with `email`, or the problems to show first.
 * @param {string} boardId
 * @param {string} email
 * @param {string} right
 * @returns {{request: ApiRequest} | {problems: Record<string, string>}}
 */
export function grantRequest(boardId, email, right) {
  const address = email.trim();
  if (address === "") return { problems: { email: "Enter the email of their account." } };
  if (!RIGHTS.includes(right)) return { problems: { right: "Choose listen or transmit." } };
  return {
    request: {
      method: "POST",
      path: `${boardPath(boardId)}/grants`,
      body: { email: address, right },
    },
  };
}

/**
 * @param {string} boardId
 * @returns {ApiRequest}
 */
export function grantsRequest(boardId) {
  return { method: "GET", path: `${boardPath(boardId)}/grants` };
}

/**
 * @param {string} boardId
 * @param {string} userId
 * @returns {ApiRequest}
 */
export function removeGrantRequest(boardId, userId) {
  return { method: "DELETE", path: `${boardPath(boardId)}/grants/${segment(userId)}` };
}

/**
 * @param {string} boardId
 * @returns {ApiRequest}
 */
export function txLogRequest(boardId) {
  return { method: "GET", path: `${boardPath(boardId)}/tx-log` };
}

/**
 * @param {string} boardId
 * @returns {ApiRequest}
 */
export function releaseRequest(boardId) {
  return { method: "DELETE", path: boardPath(boardId) };
}

/**
 * A price for people: "12.50 € an hour", or "free".
 * @param {string | null} price
 */
export function priceText(price) {
  return price === null || price === undefined ? "free" : `${price} € an hour`;
}

/**
 * One line about a board's settings: "JO62qm · 20m, 40m · public · 12.50 € an hour".
 * @param {BoardView} board
 */
export function boardSummary(board) {
  return [
    board.locator ?? "no locator",
    board.bands.length > 0 ? board.bands.join(", ") : "no bands",
    board.public ? "public" : "private",
    priceText(board.price_eur),
  ].join(" · ");
}

/**
 * What the operator may do on a board, in words.
 * @param {string} access
 */
export function accessText(access) {
  if (access === "owner") return "yours";
  if (access === "transmit") return "shared with you: listen and transmit";
  if (access === "listen") return "shared with you: listen";
  return access;
}

/**
 * One row of the TX log as shown: who, when (local time), until when, why it ended.
 * @param {TxLogEntry} entry
 * @returns {string[]}
 */
export function txLogRow(entry) {
  return [
    entry.callsign,
    localText(entry.started_at),
    entry.ended_at === null ? "on air" : localText(entry.ended_at),
    entry.reason ?? "—",
  ];
}

/**
 * What releasing a board does, for the confirmation.
 * @param {string} name
 */
export function releaseWarning(name) {
  return (
    `Release “${name}”? It will no longer be yours: its name, settings, grants, bookings and ` +
    "TX log are deleted, and it gets a new pairing code and a new agent secret (shown once, " +
    "next). Its agent cannot connect until it is given the new secret."
  );
}

/**
 * @typedef {{
 *   send: (request: ApiRequest) => Promise<any>,
 *   changed: () => void,
 * }} MyStationsActions `changed`: a board was renamed or released (the station list follows)
 */

export class MyStationsPage {
  /**
   * @param {Document} doc
   * @param {MyStationsActions} actions
   */
  constructor(doc, actions) {
    this._doc = doc;
    this._actions = actions;
    const get = (/** @type {string} */ id) => byId(doc, id);
    this.els = {
      status: get("my-stations-status"),
      list: get("my-boards"),
      manage: get("manage"),
      manageName: get("manage-name"),
      managePresence: get("manage-presence"),
      settingsForm: /** @type {HTMLFormElement} */ (get("settings-form")),
      name: /** @type {HTMLInputElement} */ (get("settings-name")),
      locator: /** @type {HTMLInputElement} */ (get("settings-locator")),
      bands: /** @type {HTMLInputElement} */ (get("settings-bands")),
      public: /** @type {HTMLInputElement} */ (get("settings-public")),
      price: /** @type {HTMLInputElement} */ (get("settings-price")),
      settingsSubmit: /** @type {HTMLButtonElement} */ (get("settings-submit")),
      settingsSaved: get("settings-saved"),
      grants: get("grants"),
      grantsEmpty: get("grants-empty"),
      grantForm: /** @type {HTMLFormElement} */ (get("grant-form")),
      grantEmail: /** @type {HTMLInputElement} */ (get("grant-email")),
      grantRight: /** @type {HTMLSelectElement} */ (get("grant-right")),
      grantsError: get("grants-error"),
      txLogLoad: /** @type {HTMLButtonElement} */ (get("txlog-load")),
      txLog: get("txlog"),
      txLogRows: get("txlog-rows"),
      txLogEmpty: get("txlog-empty"),
      releaseStart: /** @type {HTMLButtonElement} */ (get("release-start")),
      releaseConfirm: get("release-confirm"),
      releaseText: get("release-text"),
      releaseYes: /** @type {HTMLButtonElement} */ (get("release-yes")),
      releaseNo: /** @type {HTMLButtonElement} */ (get("release-no")),
      releaseError: get("release-error"),
      released: get("released"),
      releasedName: get("released-name"),
      releasedCode: get("released-code"),
      releasedSecret: get("released-secret"),
      releasedDone: /** @type {HTMLButtonElement} */ (get("released-done")),
    };
    this._settingsErrors = new FormErrors(doc, SETTINGS_FIELDS, "settings-error");
    this._grantErrors = new FormErrors(doc, GRANT_FIELDS, "grant-error");
    /** @type {Map<string, BoardView>} */
    this._boards = new Map();
    /** @type {Map<string, HTMLLIElement>} */
    this._items = new Map();
    /** @type {string | null} the board being managed */
    this._selected = null;
    /** @type {string | null} the board to open once a load lists it (just paired) */
    this._selectNext = null;
    /** Counts loads, so an older answer cannot overwrite a newer one. */
    this._generation = 0;

    const els = this.els;
    els.settingsForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this._saveSettings();
    });
    els.grantForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this._addGrant();
    });
    els.txLogLoad.addEventListener("click", () => void this._loadTxLog());
    els.releaseStart.addEventListener("click", () => this._askRelease());
    els.releaseNo.addEventListener("click", () => this._cancelRelease());
    els.releaseYes.addEventListener("click", () => void this._release());
    els.releasedDone.addEventListener("click", () => this._forgetReleased());
  }

  /** Reads the operator's boards again. */
  async load() {
    const generation = ++this._generation;
    if (this._boards.size === 0) setText(this.els.status, "Loading…");
    try {
      const reply = await this._actions.send(MY_BOARDS_REQUEST);
      if (generation !== this._generation) return;
      const boards = Array.isArray(reply?.boards) ? reply.boards : [];
      this._boards = new Map(boards.map((/** @type {BoardView} */ b) => [b.id, b]));
      this._render();
      const next = this._selectNext;
      this._selectNext = null;
      if (next !== null && this._boards.has(next)) this.select(next);
    } catch (err) {
      if (generation === this._generation) {
        setText(this.els.status, `Cannot list your stations: ${/** @type {Error} */ (err).message}`);
      }
    }
  }

  /** Forgets everything (signed out). */
  clear() {
    this._generation += 1;
    this._boards.clear();
    this._selected = null;
    this._selectNext = null;
    this._forgetReleased();
    this._render();
  }

  /**
   * A board went online or offline (a `presence` event).
   * @param {string} boardId
   * @param {boolean} online
   */
  presence(boardId, online) {
    const board = this._boards.get(boardId);
    if (board === undefined) return;
    board.online = online;
    this._renderItem(board);
    if (boardId === this._selected) this._renderManageHead(board);
  }

  /**
   * Opens the settings of one board (after a load that lists it).
   * @param {string} boardId
   */
  select(boardId) {
    const board = this._boards.get(boardId);
    if (board === undefined || board.access !== "owner") return;
    this._selected = boardId;
    this._fillManage(board);
    for (const item of this._boards.values()) this._renderItem(item);
    void this._loadGrants(boardId);
  }

  /**
   * Opens `boardId`'s settings once the next load lists it (a board just paired).
   * @param {string} boardId
   */
  selectAfterLoad(boardId) {
    this._selectNext = boardId;
  }

  /** True when the page lists `boardId`. */
  has(/** @type {string} */ boardId) {
    return this._boards.has(boardId);
  }

  // --- the list -------------------------------------------------------------------------------

  _render() {
    const els = this.els;
    for (const [id, item] of this._items) {
      if (!this._boards.has(id)) {
        item.remove();
        this._items.delete(id);
      }
    }
    for (const board of this._boards.values()) els.list.append(this._renderItem(board));
    setText(
      els.status,
      this._boards.size === 0
        ? "No stations yet. To add one, open the pairing link on its board's sticker (scan the QR code)."
        : "",
    );
    const selected = this._selected === null ? undefined : this._boards.get(this._selected);
    if (selected === undefined) {
      this._selected = null;
      els.manage.hidden = true;
    } else {
      this._renderManageHead(selected);
    }
  }

  /**
   * @param {BoardView} board
   * @returns {HTMLLIElement}
   */
  _renderItem(board) {
    const doc = this._doc;
    let item = this._items.get(board.id);
    if (item === undefined) {
      item = /** @type {HTMLLIElement} */ (
        el(
          doc,
          "li",
          { className: "my-board", data: { boardId: board.id } },
          el(doc, "span", { className: "board-name" }),
          el(doc, "span", { className: "presence" }),
          el(doc, "span", { className: "board-summary muted" }),
        )
      );
      if (board.access === "owner") {
        item.append(
          button(doc, "Manage", () => this.select(board.id), {
            className: "secondary manage-button",
            attrs: { "aria-label": `Manage ${board.name}` },
          }),
        );
      }
      this._items.set(board.id, item);
    }
    const part = (/** @type {string} */ selector) =>
      /** @type {Element} */ (/** @type {HTMLLIElement} */ (item).querySelector(selector));
    setText(part(".board-name"), board.name);
    renderPresence(part(".presence"), board.online);
    setText(
      part(".board-summary"),
      board.access === "owner" ? boardSummary(board) : accessText(board.access),
    );
    const manage = item.querySelector(".manage-button");
    if (manage !== null) {
      manage.setAttribute("aria-label", `Manage ${board.name}`);
      manage.setAttribute("aria-pressed", String(board.id === this._selected));
    }
    return item;
  }

  // --- one board ------------------------------------------------------------------------------

  /** @param {BoardView} board */
  _fillManage(board) {
    const els = this.els;
    const form = settingsForm(board);
    els.name.value = form.name;
    els.locator.value = form.locator;
    els.bands.value = form.bands;
    els.public.checked = form.public;
    els.price.value = form.price;
    this._settingsErrors.clear();
    this._grantErrors.clear();
    setText(els.settingsSaved, "");
    els.grants.replaceChildren();
    els.grantsEmpty.hidden = true;
    setText(els.grantsError, "");
    els.txLog.hidden = true;
    els.txLogEmpty.hidden = true;
    els.txLogRows.replaceChildren();
    this._cancelRelease();
    this._renderManageHead(board);
    els.manage.hidden = false;
  }

  /** @param {BoardView} board */
  _renderManageHead(board) {
    setText(this.els.manageName, board.name);
    renderPresence(this.els.managePresence, board.online);
  }

  async _saveSettings() {
    const boardId = this._selected;
    if (boardId === null) return;
    const els = this.els;
    setText(els.settingsSaved, "");
    const built = settingsRequest(boardId, {
      name: els.name.value,
      locator: els.locator.value,
      bands: els.bands.value,
      public: els.public.checked,
      price: els.price.value,
    });
    if ("problems" in built) {
      this._settingsErrors.showFields(built.problems);
      return;
    }
    this._settingsErrors.clear();
    els.settingsSubmit.disabled = true;
    try {
      /** @type {BoardView} */
      const board = await this._actions.send(built.request);
      this._boards.set(board.id, board);
      this._renderItem(board);
      if (this._selected === board.id) {
        this._fillSettings(board);
        this._renderManageHead(board);
        setText(els.settingsSaved, "Saved.");
      }
      this._actions.changed();
    } catch (err) {
      this._settingsErrors.show(err);
    } finally {
      els.settingsSubmit.disabled = false;
    }
  }

  /**
   * The stored (canonical) values back in the form: `jo62QM` comes back as `JO62qm`.
   * @param {BoardView} board
   */
  _fillSettings(board) {
    const form = settingsForm(board);
    this.els.locator.value = form.locator;
    this.els.bands.value = form.bands;
    this.els.price.value = form.price;
    this.els.name.value = form.name;
    this.els.public.checked = form.public;
  }

  /** @param {string} boardId */
  async _loadGrants(boardId) {
    const els = this.els;
    try {
      const reply = await this._actions.send(grantsRequest(boardId));
      if (this._selected !== boardId) return;
      this._renderGrants(boardId, Array.isArray(reply?.grants) ? reply.grants : []);
    } catch (err) {
      if (this._selected === boardId) {
        setText(els.grantsError, `Cannot list the grants: ${/** @type {Error} */ (err).message}`);
      }
    }
  }

  /**
   * @param {string} boardId
   * @param {Grant[]} grants
   */
  _renderGrants(boardId, grants) {
    const doc = this._doc;
    const items = grants.map((grant) =>
      el(
        doc,
        "li",
        { className: "grant", data: { userId: grant.user_id } },
        el(doc, "span", { text: `${grant.callsign} (${grant.email})` }),
        el(doc, "span", {
          className: "muted",
          text: grant.right === "transmit" ? "listen and transmit" : "listen",
        }),
        button(doc, "Remove", () => void this._removeGrant(boardId, grant), {
          className: "secondary",
          attrs: { "aria-label": `Remove ${grant.callsign}` },
        }),
      ),
    );
    this.els.grants.replaceChildren(...items);
    this.els.grantsEmpty.hidden = items.length > 0;
  }

  async _addGrant() {
    const boardId = this._selected;
    if (boardId === null) return;
    const els = this.els;
    const built = grantRequest(boardId, els.grantEmail.value, els.grantRight.value);
    if ("problems" in built) {
      this._grantErrors.showFields(built.problems);
      return;
    }
    this._grantErrors.clear();
    try {
      await this._actions.send(built.request);
      els.grantEmail.value = "";
      await this._loadGrants(boardId);
    } catch (err) {
      this._grantErrors.show(err);
    }
  }

  /**
   * @param {string} boardId
   * @param {Grant} grant
   */
  async _removeGrant(boardId, grant) {
    setText(this.els.grantsError, "");
    try {
      await this._actions.send(removeGrantRequest(boardId, grant.user_id));
    } catch (err) {
      const why = /** @type {Error} */ (err).message;
      setText(this.els.grantsError, `Cannot remove ${grant.callsign}: ${why}`);
    }
    await this._loadGrants(boardId);
  }

  async _loadTxLog() {
    const boardId = this._selected;
    if (boardId === null) return;
    const els = this.els;
    els.txLogLoad.disabled = true;
    try {
      const reply = await this._actions.send(txLogRequest(boardId));
      if (this._selected !== boardId) return;
      const sessions = Array.isArray(reply?.sessions) ? reply.sessions : [];
      const rows = sessions.map((/** @type {TxLogEntry} */ entry) =>
        el(this._doc, "tr", {}, ...txLogRow(entry).map((text) => el(this._doc, "td", { text }))),
      );
      els.txLogRows.replaceChildren(...rows);
      els.txLog.hidden = rows.length === 0;
      els.txLogEmpty.hidden = rows.length > 0;
      setText(els.txLogEmpty, "No transmissions yet.");
    } catch (err) {
      els.txLog.hidden = true;
      els.txLogEmpty.hidden = false;
      setText(els.txLogEmpty, `Cannot read the TX log: ${/** @type {Error} */ (err).message}`);
    } finally {
      els.txLogLoad.disabled = false;
    }
  }

  // --- releasing ------------------------------------------------------------------------------

  _askRelease() {
    const board = this._selected === null ? undefined : this._boards.get(this._selected);
    if (board === undefined) return;
    setText(this.els.releaseText, releaseWarning(board.name));
    setText(this.els.releaseError, "");
    this.els.releaseConfirm.hidden = false;
    this.els.releaseStart.hidden = true;
    this.els.releaseNo.focus();
  }

  _cancelRelease() {
    this.els.releaseConfirm.hidden = true;
    this.els.releaseStart.hidden = false;
    setText(this.els.releaseError, "");
  }

  async _release() {
    const boardId = this._selected;
    const board = boardId === null ? undefined : this._boards.get(boardId);
    if (boardId === null || board === undefined) return;
    const els = this.els;
    els.releaseYes.disabled = true;
    try {
      const reply = await this._actions.send(releaseRequest(boardId));
      setText(els.releasedName, board.name);
      setText(els.releasedCode, String(reply?.pairing_code ?? ""));
      setText(els.releasedSecret, String(reply?.secret ?? ""));
      els.released.hidden = false;
      this._boards.delete(boardId);
      this._selected = null;
      this._render();
      els.releasedDone.focus();
      this._actions.changed();
    } catch (err) {
      setText(els.releaseError, /** @type {Error} */ (err).message);
    } finally {
      els.releaseYes.disabled = false;
    }
  }

  /** The new code and secret are shown once: gone when dismissed (or signed out). */
  _forgetReleased() {
    const els = this.els;
    els.released.hidden = true;
    setText(els.releasedName, "");
    setText(els.releasedCode, "");
    setText(els.releasedSecret, "");
  }
}

/**
 * An online/offline marker: a dot (CSS) and the word.
 * @param {Element} element
 * @param {boolean} online
 */
export function renderPresence(element, online) {
  setText(element, online ? "online" : "offline");
  element.classList.add("presence");
  element.classList.toggle("online", online);
  element.classList.toggle("offline", !online);
}
