// Unit tests of the view router: what a URL names, what is shown signed in or out. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Router,
  VIEWS,
  basePath,
  hashOf,
  pairingOf,
  parseRoute,
  resolveView,
} from "../src/router.js";

const ID = "4f0c8e4e-9b1a-4c1e-8d55-3b0f1f7f2a10";
const at = (pathname, search = "", hash = "") => ({ pathname, search, hash });

test("the console's base path", () => {
  assert.equal(basePath("/"), "/");
  assert.equal(basePath("/pair"), "/");
  assert.equal(basePath("/radio/pair"), "/radio/");
  assert.equal(basePath("/radio/"), "/radio/");
});

test("a pairing link carries the board id and code; anything else carries none", () => {
  assert.deepEqual(pairingOf(at("/pair", `?id=${ID}&code=7KQ2-M9XD-R4TB`)), {
    boardId: ID,
    code: "7KQ2-M9XD-R4TB",
  });
  // URL-encoded, under a base path
  assert.deepEqual(pairingOf(at("/radio/pair", `?code=7KQ2%20M9XD&id=${ID}`)), {
    boardId: ID,
    code: "7KQ2 M9XD",
  });
  assert.equal(pairingOf(at("/pair", `?id=${ID}`)), null, "no code");
  assert.equal(pairingOf(at("/pair", "?id=&code=x")), null, "empty id");
  assert.equal(pairingOf(at("/", `?id=${ID}&code=x`)), null, "not the pairing path");
  assert.equal(pairingOf(at("/repair", `?id=${ID}&code=x`)), null);
});

test("the fragment names the view; a pairing link without one names the pairing page", () => {
  assert.deepEqual(parseRoute(at("/")), { view: VIEWS[0], pairing: null });
  assert.equal(VIEWS[0], "stations");
  assert.equal(parseRoute(at("/", "", "#/public")).view, "public");
  assert.equal(parseRoute(at("/", "", "#my-stations")).view, "my-stations");
  assert.equal(parseRoute(at("/", "", "#/bookings/extra")).view, "bookings");
  assert.equal(parseRoute(at("/", "", "#/nonsense")).view, "stations");
  const link = parseRoute(at("/pair", `?id=${ID}&code=c`));
  assert.deepEqual(link, { view: "pair", pairing: { boardId: ID, code: "c" } });
  // the operator went on to register from the pairing link: the link is kept
  const registering = parseRoute(at("/pair", `?id=${ID}&code=c`, "#/register"));
  assert.deepEqual(registering, { view: "register", pairing: { boardId: ID, code: "c" } });
  assert.equal(parseRoute(at("/pair", "?id=x")).view, "stations", "a broken link");
});

test("signed out only sign-in or registration; signed in never those", () => {
  const pairing = { boardId: ID, code: "c" };
  for (const view of VIEWS) {
    const shown = resolveView({ view, pairing: null }, false);
    assert.equal(shown, view === "register" ? "register" : "signin", view);
  }
  assert.equal(resolveView({ view: "pair", pairing }, false), "signin");
  assert.equal(resolveView({ view: "register", pairing }, false), "register");

  assert.equal(resolveView({ view: "signin", pairing: null }, true), "stations");
  assert.equal(resolveView({ view: "register", pairing: null }, true), "stations");
  // signing in (or registering) from a pairing link leads to pairing
  assert.equal(resolveView({ view: "signin", pairing }, true), "pair");
  assert.equal(resolveView({ view: "register", pairing }, true), "pair");
  assert.equal(resolveView({ view: "pair", pairing }, true), "pair");
  assert.equal(resolveView({ view: "pair", pairing: null }, true), "my-stations");
  for (const view of ["stations", "my-stations", "public", "bookings"]) {
    assert.equal(resolveView({ view, pairing }, true), view);
  }
});

/** A window stand-in: a location, history.replaceState and the hashchange listener. */
function fakeWindow(pathname, search = "", hash = "") {
  const listeners = [];
  const win = {
    location: { pathname, search, hash },
    replaced: [],
    history: {
      replaceState(data, unused, url) {
        win.replaced.push(url);
        const parsed = new URL(url, "http://host");
        Object.assign(win.location, { pathname: parsed.pathname, search: parsed.search, hash: parsed.hash });
      },
    },
    addEventListener(type, listener) {
      assert.equal(type, "hashchange");
      listeners.push(listener);
    },
    navigate(newHash) {
      win.location.hash = newHash;
      for (const listener of listeners) listener();
    },
  };
  return win;
}

test("Router follows the fragment and leaves the pairing link behind once paired", () => {
  const win = fakeWindow("/pair", `?id=${ID}&code=c`);
  const seen = [];
  const router = new Router(win, (route) => seen.push(route));
  router.refresh();
  assert.deepEqual(seen.pop(), { view: "pair", pairing: { boardId: ID, code: "c" } });
  win.navigate("#/register");
  assert.equal(seen.pop().view, "register");

  router.leavePairing("my-stations");
  assert.deepEqual(win.replaced, ["/#/my-stations"], "no code left in the address");
  assert.deepEqual(seen.pop(), { view: "my-stations", pairing: null });

  // going to the view already shown tells the console again (it reads its list again)
  router.go("my-stations");
  assert.equal(seen.pop().view, "my-stations");
  assert.equal(hashOf("public"), "#/public");
});
