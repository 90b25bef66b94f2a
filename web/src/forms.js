// A form's errors, where the operator looks for them: a refusal that names a field (422
// `field`, or a check made before sending) next to that field, marked invalid and focused;
// anything else above the form's button. `placeError` decides (pure, node:test covers it);
// `FormErrors` writes it into index.html's elements.

import { ApiError } from "./api.js";
import { byId } from "./dom.js";
import { errorFields } from "./errors.js";
import { setText } from "./view.js";

/**
 * Where an error goes: the field it names, when the form has that field; else the form as a
 * whole (`field` null).
 * @param {unknown} error
 * @param {readonly string[]} fields the form's request fields
 * @returns {{field: string | null, message: string}}
 */
export function placeError(error, fields) {
  const { message } = errorFields(error);
  const named = error instanceof ApiError ? error.field : null;
  return { field: named !== null && fields.includes(named) ? named : null, message };
}

export class FormErrors {
  /**
   * @param {Document} doc
   * @param {Record<string, string>} fields request field -> its input's id; the message goes in
   *   the element `#<input id>-error` (which the input's aria-describedby names)
   * @param {string} generalId the element for errors of the whole form
   */
  constructor(doc, fields, generalId) {
    this._fields = Object.entries(fields).map(([name, id]) => ({
      name,
      input: byId(doc, id),
      error: byId(doc, `${id}-error`),
    }));
    this._general = byId(doc, generalId);
  }

  clear() {
    for (const { input, error } of this._fields) {
      input.removeAttribute("aria-invalid");
      setText(error, "");
    }
    setText(this._general, "");
  }

  /**
   * Shows a refusal (clearing what was shown before).
   * @param {unknown} error
   */
  show(error) {
    const { field, message } = placeError(
      error,
      this._fields.map((f) => f.name),
    );
    if (field === null) {
      this.clear();
      setText(this._general, message);
    } else {
      this.showFields({ [field]: message });
    }
  }

  /**
   * Shows problems found before sending, one per field (clearing what was shown before); the
   * first field with a problem gets the focus.
   * @param {Record<string, string>} problems
   */
  showFields(problems) {
    this.clear();
    let focused = false;
    for (const { name, input, error } of this._fields) {
      const message = problems[name];
      if (message === undefined) continue;
      input.setAttribute("aria-invalid", "true");
      setText(error, message);
      if (!focused) {
        input.focus();
        focused = true;
      }
    }
  }
}
