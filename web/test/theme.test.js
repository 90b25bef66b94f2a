// Unit tests of the colour theme's choice: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import { initialTheme, otherTheme, storedTheme } from "../src/theme.js";

test("the operator's choice wins over the system's preference", () => {
  assert.equal(initialTheme("dark", false), "dark");
  assert.equal(initialTheme("light", true), "light");
});

test("without a choice the system's preference decides", () => {
  assert.equal(initialTheme(null, true), "dark");
  assert.equal(initialTheme(null, false), "light");
  assert.equal(initialTheme(undefined, true), "dark");
  assert.equal(initialTheme("purple", true), "dark");
  assert.equal(initialTheme("", false), "light");
});

test("only light and dark are themes; the toggle swaps them", () => {
  assert.equal(storedTheme("dark"), "dark");
  assert.equal(storedTheme("Dark"), null);
  assert.equal(otherTheme("dark"), "light");
  assert.equal(otherTheme("light"), "dark");
});
