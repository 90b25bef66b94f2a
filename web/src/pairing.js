// Pairing a board from its sticker (docs/protocol.md, REST: `POST /api/boards/pair`). The
// sticker's QR code opens `/pair?id=<board>&code=<one-time code>`; the router keeps that link
// until the board is paired (through signing in or registering), and this page asks for the
// station's name and claims the board. Request and refusals are pure (node:test covers them).

import { FormErrors } from "./forms.js";
import { byId } from "./dom.js";
import { ERROR_CODES } from "./protocol.js";
import { setText } from "./view.js";

/** The form's fields, as the request names them. */
export const PAIR_FIELDS = Object.freeze(["name"]);

/**
 * The pairing request for a sticker's link and the name typed, or the problems to show first.
 * @param {import("./router.js").Pairing} pairing
 * @param {string} name
 * @returns {{request: import("./api.js").ApiRequest} | {problems: Record<string, string>}}
 */
export function pairRequest(pairing, name) {
  const trimmed = name.trim();
  if (trimmed === "") return { problems: { name: "Give the station a name." } };
  return {
    request: {
      method: "POST",
      path: "/api/boards/pair",
      body: { board_id: pairing.boardId, code: pairing.code, name: trimmed },
    },
  };
}

/**
 * A refusal in the operator's words (the server's own message where it says it best).
 * @param {import("./api.js").ApiError} error
 * @returns {import("./api.js").ApiError}
 */
export function pairingError(error) {
  if (error.code === ERROR_CODES.FORBIDDEN) {
    error.message =
      "This pairing link is not valid: the code is wrong or was used already. " +
      "Check the link on the board's sticker.";
  } else if (error.code === ERROR_CODES.CONFLICT) {
    error.message =
      "This board already has an owner. Its owner must release it before it can be paired again.";
  } else if (error.field === "board_id" || error.field === "code") {
    error.message = `This pairing link is incomplete or damaged (${error.message}).`;
    error.field = null;
  }
  return error;
}

/**
 * @typedef {{
 *   send: (request: import("./api.js").ApiRequest) => Promise<any>,
 *   paired: (board: any) => void,
 * }} PairActions
 */

/** The pairing page: the board's id, a name for it, the button that claims it. */
export class PairPage {
  /**
   * @param {Document} doc
   * @param {PairActions} actions
   */
  constructor(doc, actions) {
    this._actions = actions;
    this._form = /** @type {HTMLFormElement} */ (byId(doc, "pair-form"));
    this._boardId = byId(doc, "pair-board-id");
    this._name = /** @type {HTMLInputElement} */ (byId(doc, "pair-name"));
    this._submit = /** @type {HTMLButtonElement} */ (byId(doc, "pair-submit"));
    this._errors = new FormErrors(doc, { name: "pair-name" }, "pair-error");
    this._pending = byId(doc, "pair-pending");
    /** @type {import("./router.js").Pairing | null} */
    this._pairing = null;
    this._form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this._pair();
    });
  }

  /**
   * Shows the page for a sticker's link.
   * @param {import("./router.js").Pairing} pairing
   */
  show(pairing) {
    if (this._pairing?.boardId !== pairing.boardId || this._pairing?.code !== pairing.code) {
      this._errors.clear();
      this._name.value = "";
    }
    this._pairing = pairing;
    setText(this._boardId, pairing.boardId);
    this._name.focus();
  }

  /**
   * The note for someone signed out who opened a pairing link (hidden: `null`).
   * @param {import("./router.js").Pairing | null} pairing
   */
  showPending(pairing) {
    setText(this._pending, pairing === null ? "" : pendingText(pairing));
    this._pending.hidden = pairing === null;
  }

  async _pair() {
    if (this._pairing === null) return;
    const built = pairRequest(this._pairing, this._name.value);
    if ("problems" in built) {
      this._errors.showFields(built.problems);
      return;
    }
    this._errors.clear();
    this._submit.disabled = true;
    try {
      const reply = await this._actions.send(built.request);
      this._pairing = null;
      this._name.value = "";
      this._actions.paired(reply?.board ?? null);
    } catch (err) {
      this._errors.show(pairingError(/** @type {any} */ (err)));
    } finally {
      this._submit.disabled = false;
    }
  }
}

/**
 * The note above the sign-in and registration forms while a pairing link waits.
 * @param {import("./router.js").Pairing} pairing
 */
export function pendingText(pairing) {
  return (
    `You opened the pairing link of board ${pairing.boardId}. Sign in, or create an account, ` +
    "to pair it: the link is kept until then."
  );
}
