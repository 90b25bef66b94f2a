// Unit tests of which sections a view shows, with a small stand-in for the document. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { belongsTo, showView } from "../src/pages.js";

test("a section belongs to the views its data-view lists", () => {
  assert.equal(belongsTo("signin register", "register"), true);
  assert.equal(belongsTo("signin register", "reg"), false);
  assert.equal(belongsTo(undefined, "signin"), false);
});

/** Elements with `hidden`, `dataset` and attributes: what `showView` touches. */
function element(dataset) {
  const attributes = new Map();
  return {
    hidden: false,
    dataset,
    setAttribute: (name, value) => attributes.set(name, value),
    removeAttribute: (name) => attributes.delete(name),
    attr: (name) => attributes.get(name),
  };
}

test("showView: the view's sections, the navigation while signed in, the current link", () => {
  const sections = [element({ view: "signin" }), element({ view: "stations" }), element({ view: "my-stations public" })];
  const links = [element({ nav: "stations" }), element({ nav: "public" })];
  const nav = element({});
  const doc = {
    querySelectorAll: (selector) => (selector === "[data-view]" ? sections : links),
    getElementById: (id) => (id === "nav" ? nav : null),
  };
  showView(doc, "public", true);
  assert.deepEqual(sections.map((s) => s.hidden), [true, true, false]);
  assert.equal(nav.hidden, false);
  assert.deepEqual(links.map((l) => l.attr("aria-current")), [undefined, "page"]);

  showView(doc, "signin", false);
  assert.deepEqual(sections.map((s) => s.hidden), [false, true, true]);
  assert.equal(nav.hidden, true);
  assert.deepEqual(links.map((l) => l.attr("aria-current")), [undefined, undefined]);
});
