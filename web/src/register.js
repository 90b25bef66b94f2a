// Creating an account (docs/protocol.md, REST: `POST /api/auth/register` with email, password
// and callsign). The server checks every value and names the field it refuses (422 `field`),
// which the form shows next to that field; a taken email is 409 `conflict`. The reply is a
// sign-in, the same as `POST /api/auth/login`'s: the new operator is signed in at once.

import { send } from "./api.js";
import { byId } from "./dom.js";
import { FormErrors } from "./forms.js";
import { loginReply } from "./login.js";
import { ERROR_CODES } from "./protocol.js";

/** The form's fields, as the request names them -> the inputs' ids. */
export const REGISTER_FIELDS = Object.freeze({
  email: "register-email",
  password: "register-password",
  callsign: "register-callsign",
});

/**
 * @typedef {{email: string, password: string, callsign: string}} Registration
 */

/**
 * What is missing before the form can be sent (the server judges the rest), by field.
 * @param {Registration} values
 * @returns {Record<string, string>}
 */
export function registrationProblems(values) {
  /** @type {Record<string, string>} */
  const problems = {};
  if (values.email.trim() === "") problems.email = "Enter your email address.";
  if (values.password === "") problems.password = "Choose a password.";
  if (values.callsign.trim() === "") problems.callsign = "Enter your callsign.";
  return problems;
}

/**
 * The request that creates the account (email and callsign without surrounding blanks; the
 * password exactly as typed).
 * @param {Registration} values
 * @returns {import("./api.js").ApiRequest}
 */
export function registerRequest(values) {
  return {
    method: "POST",
    path: "/api/auth/register",
    body: {
      email: values.email.trim(),
      password: values.password,
      callsign: values.callsign.trim().toUpperCase(),
    },
  };
}

/**
 * A refusal in the operator's words: a taken email is said so, next to the email field.
 * @param {import("./api.js").ApiError} error
 * @returns {import("./api.js").ApiError}
 */
export function registrationError(error) {
  if (error.code === ERROR_CODES.CONFLICT) {
    error.field = "email";
    error.message = "An account with this email already exists: sign in instead.";
  }
  return error;
}

/**
 * Creates the account; the sign-in it comes with. Throws `ApiError` when refused.
 * @param {Registration} values
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<import("./login.js").Session>}
 */
export async function register(values, fetchFn) {
  let body;
  try {
    body = await send(registerRequest(values), fetchFn === undefined ? {} : { fetchFn });
  } catch (err) {
    // `registrationError` only words a refusal; what it gets is always an ApiError
    throw registrationError(/** @type {import("./api.js").ApiError} */ (err));
  }
  return loginReply({ ok: true, status: 201 }, body);
}

/** The registration form. */
export class RegisterPage {
  /**
   * @param {Document} doc
   * @param {{
   *   registered: (session: import("./login.js").Session, email: string) => void,
   *   fetchFn?: typeof fetch,
   * }} actions `registered`: the account exists and is signed in
   */
  constructor(doc, actions) {
    this._actions = actions;
    const get = (/** @type {string} */ id) => byId(doc, id);
    this.els = {
      form: /** @type {HTMLFormElement} */ (get("register-form")),
      email: /** @type {HTMLInputElement} */ (get("register-email")),
      password: /** @type {HTMLInputElement} */ (get("register-password")),
      callsign: /** @type {HTMLInputElement} */ (get("register-callsign")),
      submit: /** @type {HTMLButtonElement} */ (get("register-submit")),
    };
    this._errors = new FormErrors(doc, REGISTER_FIELDS, "register-error");
    this.els.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this._submit();
    });
  }

  /** Empties the form (signed in, or out). */
  reset() {
    this.els.password.value = "";
    this._errors.clear();
  }

  focus() {
    this.els.email.focus();
  }

  async _submit() {
    const els = this.els;
    const values = {
      email: els.email.value,
      password: els.password.value,
      callsign: els.callsign.value,
    };
    const problems = registrationProblems(values);
    if (Object.keys(problems).length > 0) {
      this._errors.showFields(problems);
      return;
    }
    this._errors.clear();
    els.submit.disabled = true;
    let session;
    try {
      session = await register(values, this._actions.fetchFn);
    } catch (err) {
      this._errors.show(err);
      return;
    } finally {
      els.submit.disabled = false;
    }
    els.password.value = "";
    this._actions.registered(session, values.email.trim());
  }
}
