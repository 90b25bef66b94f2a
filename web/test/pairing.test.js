// Unit tests of pairing a board from its sticker's link. `npm test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../src/api.js";
import { pairRequest, pairingError, pendingText } from "../src/pairing.js";
import { ERROR_CODES } from "../src/protocol.js";

const PAIRING = { boardId: "4f0c8e4e-9b1a-4c1e-8d55-3b0f1f7f2a10", code: "7KQ2-M9XD-R4TB" };

test("the pairing request carries the link's id and code and the name typed", () => {
  assert.deepEqual(pairRequest(PAIRING, "  Home station "), {
    request: {
      method: "POST",
      path: "/api/boards/pair",
      body: { board_id: PAIRING.boardId, code: PAIRING.code, name: "Home station" },
    },
  });
  assert.deepEqual(pairRequest(PAIRING, "  "), { problems: { name: "Give the station a name." } });
});

test("refusals in the operator's words", () => {
  const wrong = pairingError(new ApiError(ERROR_CODES.FORBIDDEN, "unknown board or wrong pairing code"));
  assert.match(wrong.message, /code is wrong or was used already/);
  const owned = pairingError(new ApiError(ERROR_CODES.CONFLICT, "the board has an owner"));
  assert.match(owned.message, /already has an owner.*release/);
  const damaged = pairingError(
    new ApiError(ERROR_CODES.BAD_REQUEST, "board_id must be the board's id", { field: "board_id" }),
  );
  assert.equal(damaged.field, null, "not a field of the form: shown above the button");
  assert.match(damaged.message, /^This pairing link is incomplete or damaged/);
  const name = pairingError(new ApiError(ERROR_CODES.BAD_REQUEST, "name: too long", { field: "name" }));
  assert.deepEqual([name.field, name.message], ["name", "name: too long"]);
  const limited = pairingError(new ApiError(ERROR_CODES.RATE_LIMITED, "too many (try again in 5 min)"));
  assert.equal(limited.message, "too many (try again in 5 min)");
});

test("the note for someone signed out names the board", () => {
  assert.match(pendingText(PAIRING), new RegExp(`board ${PAIRING.boardId}\\. Sign in`));
});
