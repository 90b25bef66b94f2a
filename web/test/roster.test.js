// Unit tests of the roster: `npm test` (node:test). The panel runs on a minimal stand-in for
// the few DOM calls it makes (no DOM library here).

import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeControlMessage } from "../src/messages.js";
import {
  RosterPanel,
  askButton,
  entryState,
  joinNames,
  parseRoster,
  showsWaiting,
  waitingNotice,
} from "../src/roster.js";

/** @param {string} callsign @param {{transmitting?: boolean, waiting?: boolean}} [flags] */
function entry(callsign, { transmitting = false, waiting = false } = {}) {
  return { callsign, transmitting, waiting };
}

test("a roster is checked field by field", () => {
  const good = {
    type: "roster",
    listeners: [entry("DL1ABC", { transmitting: true }), entry("G4XYZ", { waiting: true })],
    count: 3,
    holder: "DL1ABC",
  };
  const roster = parseRoster(good);
  assert.deepEqual(roster, {
    listeners: good.listeners,
    count: 3,
    holder: "DL1ABC",
  });
  assert.ok(Object.isFrozen(roster) && Object.isFrozen(roster?.listeners));
  assert.equal(parseRoster({ listeners: [], count: 0 })?.holder, null);
  assert.equal(parseRoster({ listeners: {}, count: 1 }), null);
  assert.equal(parseRoster({ listeners: [], count: -1 }), null);
  assert.equal(parseRoster({ listeners: [], count: 1.5 }), null);
  assert.equal(parseRoster({ listeners: [{ callsign: 5 }], count: 1 }), null);
  assert.equal(parseRoster({ listeners: [{ callsign: "" }], count: 1 }), null);
  assert.equal(parseRoster({ listeners: [entry("A")], count: 0 }), null); // more than counted
  assert.equal(parseRoster({ listeners: [], count: 0, holder: 7 }), null);
});

test("the control channel decodes a roster, and ignores a malformed one", () => {
  const text = JSON.stringify({ type: "roster", listeners: [entry("DL1ABC")], count: 1 });
  assert.deepEqual(decodeControlMessage(text), {
    type: "roster",
    listeners: [entry("DL1ABC")],
    count: 1,
    holder: null,
  });
  const bad = decodeControlMessage('{"type":"roster","listeners":"DL1ABC","count":1}');
  assert.equal("ignored" in bad && bad.ignored, "malformed roster");
});

test("names are joined the way they are said", () => {
  assert.equal(joinNames([]), "");
  assert.equal(joinNames(["DL1ABC"]), "DL1ABC");
  assert.equal(joinNames(["DL1ABC", "G4XYZ"]), "DL1ABC and G4XYZ");
  assert.equal(joinNames(["A1A", "B2B", "C3C"]), "A1A, B2B and C3C");
});

test("only the holder is told who waits to talk", () => {
  const roster = parseRoster({
    listeners: [
      entry("DL1ABC", { transmitting: true }),
      entry("G4XYZ", { waiting: true }),
      entry("F5AAA"),
      entry("G4XYZ", { waiting: true }), // the same account twice: named once
    ],
    count: 4,
    holder: "DL1ABC",
  });
  assert.equal(waitingNotice(roster, true), "G4XYZ is waiting to talk");
  assert.equal(waitingNotice(roster, false), "");
  assert.equal(waitingNotice(null, true), "");
  const two = parseRoster({
    listeners: [entry("A1A", { waiting: true }), entry("B2B", { waiting: true })],
    count: 2,
  });
  assert.equal(waitingNotice(two, true), "A1A and B2B are waiting to talk");
  assert.equal(waitingNotice(parseRoster({ listeners: [entry("A1A")], count: 1 }), true), "");
});

test("each entry says whether it is on the air or waiting", () => {
  assert.equal(entryState(entry("A", { transmitting: true, waiting: true })), "on the air");
  assert.equal(entryState(entry("A", { waiting: true })), "waiting to talk");
  assert.equal(entryState(entry("A")), "");
});

test("the ask toggle is for those who may transmit and do not hold the floor", () => {
  const base = { callsign: "G4XYZ", canTransmit: true, floorIsMine: false };
  assert.deepEqual(askButton(base, false, true), {
    shown: true,
    pressed: false,
    disabled: false,
    text: "Ask to talk",
  });
  assert.equal(askButton(base, true, true).pressed, true);
  assert.equal(askButton(base, true, true).text, "Waiting to talk (withdraw)");
  assert.equal(askButton(base, false, false).disabled, true);
  assert.equal(askButton({ ...base, canTransmit: false }, false, true).shown, false);
  assert.equal(askButton({ ...base, floorIsMine: true }, true, true).shown, false);
  assert.equal(askButton({ ...base, floorIsMine: true }, true, true).pressed, false);
});

test("whether the roster shows this account waiting", () => {
  const roster = parseRoster({
    listeners: [entry("G4XYZ", { waiting: true }), entry("DL1ABC", { transmitting: true })],
    count: 2,
  });
  assert.equal(showsWaiting(roster, "G4XYZ"), true);
  assert.equal(showsWaiting(roster, "DL1ABC"), false);
  assert.equal(showsWaiting(roster, null), false);
  assert.equal(showsWaiting(null, "G4XYZ"), false);
});

// ---------------------------------------------------------------------------------------------
// The panel on a stand-in DOM

class FakeElement {
  /** @param {string} tag */
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.hidden = false;
    this.disabled = false;
    this.className = "";
    /** @type {(FakeElement | string)[]} */
    this.children = [];
    /** @type {Record<string, string>} */
    this.attributes = {};
    this.dataset = {};
    /** @type {Record<string, (() => void)[]>} */
    this.listeners = {};
    this._text = "";
  }
  get textContent() {
    if (this.children.length === 0) return this._text;
    return this.children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  }
  set textContent(value) {
    this.children = [];
    this._text = value;
  }
  /** @param {...(FakeElement | string)} nodes */
  append(...nodes) {
    this.children.push(...nodes);
  }
  /** @param {...(FakeElement | string)} nodes */
  replaceChildren(...nodes) {
    this._text = "";
    this.children = [...nodes];
  }
  /** @param {string} name @param {string} value */
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  /** @param {string} type @param {() => void} listener */
  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }
  click() {
    for (const listener of this.listeners.click ?? []) listener();
  }
}

function fakeDocument() {
  const ids = ["roster", "roster-count", "roster-list", "roster-more", "roster-notice", "roster-ask"];
  const elements = Object.fromEntries(ids.map((id) => [id, new FakeElement("div")]));
  return {
    elements,
    /** @param {string} id */
    getElementById: (id) => elements[id] ?? null,
    /** @param {string} tag */
    createElement: (tag) => new FakeElement(tag),
  };
}

/** @param {{callsign?: string, canTransmit?: boolean, floorIsMine?: boolean, open?: boolean}} [o] */
function panel({ callsign = "G4XYZ", canTransmit = true, floorIsMine = false, open = true } = {}) {
  const doc = fakeDocument();
  /** @type {{type: string, state: boolean}[]} */
  const sent = [];
  const context = { callsign, canTransmit, floorIsMine };
  const roster = new RosterPanel({
    document: /** @type {any} */ (doc),
    send: (message) => {
      if (!open) return false;
      sent.push(message);
      return true;
    },
    context: () => context,
    channelOpen: () => open,
  });
  return { doc, els: doc.elements, sent, context, roster };
}

/** @param {FakeElement} list */
function items(list) {
  return list.children.map((c) => (typeof c === "string" ? c : c.textContent));
}

test("the panel lists who is on the station, the transmitter and the waiting marked", () => {
  const { els, roster } = panel();
  roster.render();
  assert.equal(els.roster.hidden, true, "no roster yet: nothing shown");
  roster.update(
    /** @type {any} */ (
      parseRoster({
        listeners: [entry("DL1ABC", { transmitting: true }), entry("F5AAA", { waiting: true })],
        count: 3,
        holder: "DL1ABC",
      })
    ),
  );
  assert.equal(els.roster.hidden, false);
  assert.equal(els["roster-count"].textContent, "3");
  assert.deepEqual(items(els["roster-list"]), ["DL1ABC on the air", "F5AAA waiting to talk"]);
  assert.equal(els["roster-list"].children[0].className, "roster-item roster-tx");
  assert.equal(els["roster-more"].hidden, false);
  assert.equal(els["roster-more"].textContent, "and 1 more");
  assert.equal(els["roster-notice"].hidden, true, "not the holder: no notice");
  roster.reset();
  assert.equal(els.roster.hidden, true);
});

test("the holder sees a notice naming who waits", () => {
  const { els, roster, context } = panel({ callsign: "DL1ABC", floorIsMine: true });
  roster.update(
    /** @type {any} */ (
      parseRoster({
        listeners: [entry("DL1ABC", { transmitting: true }), entry("G4XYZ", { waiting: true })],
        count: 2,
        holder: "DL1ABC",
      })
    ),
  );
  assert.equal(els["roster-notice"].hidden, false);
  assert.equal(els["roster-notice"].textContent, "G4XYZ is waiting to talk");
  assert.equal(els["roster-ask"].hidden, true, "the holder has nothing to ask");
  context.floorIsMine = false;
  roster.render();
  assert.equal(els["roster-notice"].hidden, true);
});

test("Ask to talk sends floor_request, and its pressed state follows the roster", () => {
  const { els, roster, sent } = panel();
  const on = (/** @type {boolean} */ waiting) =>
    /** @type {any} */ (
      parseRoster({
        listeners: [entry("DL1ABC", { transmitting: true }), entry("G4XYZ", { waiting })],
        count: 2,
        holder: "DL1ABC",
      })
    );
  roster.update(on(false));
  assert.equal(els["roster-ask"].hidden, false);
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "false");
  els["roster-ask"].click();
  assert.deepEqual(sent, [{ type: "floor_request", state: true }]);
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "true", "pressed at once");
  roster.update(on(false)); // a roster sent before the server had the request
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "true");
  roster.update(on(true));
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "true");
  roster.update(on(false)); // the server cleared it (e.g. another connection got the floor)
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "false");
  roster.update(on(true));
  els["roster-ask"].click(); // withdraw
  assert.deepEqual(sent[1], { type: "floor_request", state: false });
  assert.equal(els["roster-ask"].attributes["aria-pressed"], "false");
  assert.equal(els["roster-ask"].textContent, "Ask to talk");
});

test("a refused request does not stand; a closed channel sends nothing", () => {
  const refused = panel();
  refused.roster.update(/** @type {any} */ (parseRoster({ listeners: [entry("G4XYZ")], count: 1 })));
  refused.els["roster-ask"].click();
  assert.equal(refused.els["roster-ask"].attributes["aria-pressed"], "true");
  refused.roster.refused();
  assert.equal(refused.els["roster-ask"].attributes["aria-pressed"], "false");

  const closed = panel({ open: false });
  closed.roster.update(/** @type {any} */ (parseRoster({ listeners: [entry("G4XYZ")], count: 1 })));
  assert.equal(closed.els["roster-ask"].disabled, true);
  closed.els["roster-ask"].click();
  assert.deepEqual(closed.sent, []);
  assert.equal(closed.els["roster-ask"].attributes["aria-pressed"], "false");
});

test("a listener gets no toggle", () => {
  const { els, roster } = panel({ canTransmit: false });
  roster.update(/** @type {any} */ (parseRoster({ listeners: [entry("G4XYZ")], count: 1 })));
  assert.equal(els["roster-ask"].hidden, true);
});
