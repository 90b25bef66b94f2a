// Unit tests of where a form's errors are shown, with stand-ins for its elements. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { ConsoleError } from "../src/errors.js";
import { FormErrors, placeError } from "../src/forms.js";
import { ERROR_CODES } from "../src/protocol.js";

test("a refusal naming a field of the form goes to that field, anything else to the form", () => {
  const named = new ApiError(ERROR_CODES.BAD_REQUEST, "locator must be …", { field: "locator" });
  assert.deepEqual(placeError(named, ["name", "locator"]), { field: "locator", message: "locator must be …" });
  assert.deepEqual(placeError(named, ["name"]), { field: null, message: "locator must be …" });
  const refused = new ConsoleError(ERROR_CODES.UNAUTHORIZED, "Not signed in.");
  assert.deepEqual(placeError(refused, ["name"]), { field: null, message: "Not signed in." });
});

/** An element stand-in: text, attributes, focus. */
function element() {
  const attributes = new Map();
  return {
    textContent: "",
    focused: false,
    setAttribute: (name, value) => attributes.set(name, value),
    removeAttribute: (name) => attributes.delete(name),
    attr: (name) => attributes.get(name),
    focus() {
      this.focused = true;
    },
  };
}

function form() {
  const elements = new Map(
    ["a", "a-error", "b", "b-error", "general"].map((id) => [id, element()]),
  );
  const doc = { getElementById: (id) => elements.get(id) ?? null };
  return { errors: new FormErrors(doc, { first: "a", second: "b" }, "general"), get: (id) => elements.get(id) };
}

test("FormErrors marks the field, says why beside it, focuses it; clear() undoes it", () => {
  const { errors, get } = form();
  errors.show(new ApiError(ERROR_CODES.BAD_REQUEST, "second: no", { field: "second" }));
  assert.equal(get("b-error").textContent, "second: no");
  assert.equal(get("b").attr("aria-invalid"), "true");
  assert.equal(get("b").focused, true);
  assert.equal(get("a").attr("aria-invalid"), undefined);
  assert.equal(get("general").textContent, "");

  errors.show(new ApiError(ERROR_CODES.CONFLICT, "taken"));
  assert.equal(get("b-error").textContent, "", "the earlier field error is gone");
  assert.equal(get("b").attr("aria-invalid"), undefined);
  assert.equal(get("general").textContent, "taken");

  errors.showFields({ first: "Enter it.", second: "And this." });
  assert.deepEqual([get("a-error").textContent, get("b-error").textContent], ["Enter it.", "And this."]);
  assert.equal(get("a").focused, true, "the first field with a problem has the focus");
  assert.equal(get("general").textContent, "");
  errors.clear();
  assert.deepEqual([get("a-error").textContent, get("b-error").textContent], ["", ""]);
});

test("a form without an element index.html should have fails loudly", () => {
  const doc = { getElementById: () => null };
  assert.throws(() => new FormErrors(doc, { x: "missing" }, "general"), /index\.html lacks #missing/);
});
