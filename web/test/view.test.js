// Unit tests of what the view writes that needs no DOM: `npm test` (node:test).

import assert from "node:assert/strict";
import { test } from "node:test";

import { sMeterText, setText, stateLabel } from "../src/view.js";

test("states in words; a peer connection's own states too", () => {
  assert.equal(stateLabel("signed-out"), "signed out");
  assert.equal(stateLabel("connected"), "connected");
  assert.equal(stateLabel("disconnected"), "interrupted, retrying…");
  assert.equal(stateLabel("new"), "negotiating…");
  assert.equal(stateLabel("something-new"), "something-new");
});

test("the S-meter with its dBm, or a dash without a reading", () => {
  assert.equal(sMeterText(-73), "S9 (-73 dBm)");
  assert.equal(sMeterText(-53), "S9+20 dB (-53 dBm)");
  assert.equal(sMeterText(null), "—");
  assert.equal(sMeterText(undefined), "—");
});

test("text is written only when it changed (live regions announce changes only)", () => {
  let writes = 0;
  let text = "a";
  const element = {
    get textContent() {
      return text;
    },
    set textContent(value) {
      writes += 1;
      text = value;
    },
  };
  setText(element, "a");
  assert.equal(writes, 0);
  setText(element, "b");
  assert.equal(writes, 1);
  assert.equal(text, "b");
});
