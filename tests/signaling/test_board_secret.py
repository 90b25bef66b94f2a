"""Rotating a board's agent secret: the store's `set_board_secret` (one contract, on SQLite and
on a real PostgreSQL) and `POST /api/boards/{board_id}/secret` through real HTTP — only the
board's owner, the new secret shown once and stored only as a hash, the old one dead, a count
of its own under the pairing limit.

The agent that is disconnected by a rotation and comes back with the new secret from its file:
tests/integration/test_secret_rotation.py.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from signaling.accounts import provision_board, rotate_board_secret
from signaling.api.boards import BoardsReply, SecretReply
from signaling.auth import check_board_secret
from signaling.errors import BadRequestError, NotFoundError
from signaling.store import Store
from tests.signaling.test_api_boards import (  # noqa: F401 (the `api` fixture)
    Api,
    api_fixture,
)
from tests.signaling.test_store import (  # noqa: F401 (the `database` and `store` fixtures)
    BOARD_ID,
    Database,
    _alice,
    _bob,
    database,
    store,
)

# -- the store ------------------------------------------------------------------------------------


async def test_the_secret_hash_is_replaced_and_nothing_else(store: Store) -> None:  # noqa: F811
    alice = await _alice(store)
    board = await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    await store.update_board(BOARD_ID, locator="JO62qm", public=True, bands=["20m"])
    before = await store.get_board(BOARD_ID)
    assert before is not None and board.secret_hash == before.secret_hash
    rotated = await store.set_board_secret(BOARD_ID, "b" * 64)
    assert rotated == dataclasses.replace(before, secret_hash="b" * 64)
    assert await store.get_board(BOARD_ID) == rotated
    assert "b" * 64 not in repr(rotated)


async def test_with_an_owner_only_that_owner_may(store: Store) -> None:  # noqa: F811
    alice, bob = await _alice(store), await _bob(store)
    await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    with pytest.raises(NotFoundError, match="no such board"):
        await store.set_board_secret(BOARD_ID, "b" * 64, owner_id=bob.id)
    unchanged = await store.get_board(BOARD_ID)
    assert unchanged is not None and unchanged.secret_hash == "a" * 64
    mine = await store.set_board_secret(BOARD_ID, "c" * 64, owner_id=alice.id)
    assert mine.secret_hash == "c" * 64 and mine.owner_id == alice.id


async def test_unknown_boards_and_empty_hashes_are_refused(store: Store) -> None:  # noqa: F811
    alice = await _alice(store)
    with pytest.raises(NotFoundError, match="no such board"):
        await store.set_board_secret(str(uuid.uuid4()), "b" * 64)
    with pytest.raises(NotFoundError):
        await store.set_board_secret("not-a-uuid", "b" * 64)
    await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    with pytest.raises(BadRequestError, match="the board secret is missing"):
        await store.set_board_secret(BOARD_ID, "")
    stored = await store.get_board(BOARD_ID)
    assert stored is not None and stored.secret_hash == "a" * 64


async def test_a_board_waiting_for_pairing_can_get_a_new_secret(
    database: Database,  # noqa: F811
) -> None:
    """From `radiocore board rotate-secret` (no owner given): the old secret dies, the new one
    is stored only as its hash; an owner's rotation does not reach a board they do not own."""
    async with database.new_store() as opened:
        alice = await _alice(opened)
        provisioned = await provision_board(opened, BOARD_ID)
        with pytest.raises(NotFoundError):
            await rotate_board_secret(opened, BOARD_ID, alice.id)
        rotated = await rotate_board_secret(opened, BOARD_ID.upper())
        stored = await opened.get_board(BOARD_ID)
        assert stored is not None and stored.owner_id is None
        with pytest.raises(BadRequestError, match="not a UUID"):
            await rotate_board_secret(opened, "not-a-board")
    assert rotated.board == stored and rotated.secret != provisioned.secret
    assert check_board_secret(rotated.secret, stored.secret_hash)
    assert not check_board_secret(provisioned.secret, stored.secret_hash)
    assert rotated.secret not in repr(rotated)
    dumped = json.dumps(await database.rows("SELECT * FROM boards"), default=str)
    assert rotated.secret not in dumped and provisioned.secret not in dumped


# -- POST /api/boards/{board_id}/secret -----------------------------------------------------------


async def test_the_owner_gets_a_new_secret_shown_once(api: Api) -> None:
    owner = await api.operator("DL1OWN")
    provisioned = await api.provision()
    reply = await api.call(
        "POST",
        "/api/boards/pair",
        owner,
        {"board_id": provisioned.board.id, "code": provisioned.pairing_code, "name": "Shack"},
    )
    assert reply.status == 201, reply.body
    board_id = provisioned.board.id

    reply = await api.call("POST", f"/api/boards/{board_id}/secret", owner)
    assert reply.status == 200, reply.body
    assert reply.headers.get("Cache-Control") == "no-store"
    first = reply.decode(SecretReply)
    assert first.board_id == board_id and len(first.secret) >= 32
    stored = await api.store.get_board(board_id)
    assert stored is not None
    assert check_board_secret(first.secret, stored.secret_hash)
    assert not check_board_secret(provisioned.secret, stored.secret_hash)
    # nothing else of the board changed
    assert (stored.owner_id, stored.name) == (owner.user_id, "Shack")

    # no other answer shows it: the board list, the board's own pages
    for path in (
        "/api/boards",
        f"/api/boards/{board_id}/grants",
        f"/api/boards/{board_id}/blocks",
        f"/api/boards/{board_id}/tx-log",
    ):
        again = await api.call("GET", path, owner)
        assert again.status == 200, (path, again.body)
        assert first.secret.encode() not in again.body, path
    (listed,) = (await api.call("GET", "/api/boards", owner)).decode(BoardsReply).boards
    assert listed.id == board_id and listed.access == "owner"

    # a second rotation: another secret, and the first one is dead too
    second = (await api.call("POST", f"/api/boards/{board_id}/secret", owner)).decode(SecretReply)
    stored = await api.store.get_board(board_id)
    assert stored is not None and second.secret != first.secret
    assert check_board_secret(second.secret, stored.secret_hash)
    assert not check_board_secret(first.secret, stored.secret_hash)


async def test_only_the_owner_may_rotate(api: Api) -> None:
    owner, guest, stranger = (
        await api.operator("DL1OWN"),
        await api.operator("DL2GST"),
        await api.operator("DL6MMM"),
    )
    board = await api.pair(owner)
    granted = await api.call(
        "POST", f"/api/boards/{board.id}/grants", owner, {"email": guest.email, "right": "transmit"}
    )
    assert granted.status == 201, granted.body
    before = await api.store.get_board(board.id)
    assert before is not None

    # someone granted a right sees the board, but may not change its secret
    reply = await api.call("POST", f"/api/boards/{board.id}/secret", guest)
    assert reply.status == 403 and reply.error.code == "forbidden", reply.body
    assert "owner" in reply.error.message
    # for anyone else it does not exist: the answer of a board nobody has
    unknown = await api.call("POST", f"/api/boards/{uuid.uuid4()}/secret", stranger)
    assert unknown.status == 404 and unknown.error.code == "not_found"
    reply = await api.call("POST", f"/api/boards/{board.id}/secret", stranger)
    assert (reply.status, reply.body) == (404, unknown.body)
    reply = await api.call("POST", "/api/boards/not-a-uuid/secret", owner)
    assert reply.status == 404 and reply.error.code == "not_found"
    reply = await api.call("POST", f"/api/boards/{board.id}/secret")
    assert reply.status == 401 and reply.error.code == "unauthorized"
    assert await api.store.get_board(board.id) == before


async def test_rotations_are_limited_per_user_apart_from_pairing(api: Api) -> None:
    owner = await api.operator("DL1OWN")
    board = await api.pair(owner)  # one pairing attempt counted
    for _ in range(10):
        reply = await api.call("POST", f"/api/boards/{board.id}/secret", owner)
        assert reply.status == 200, reply.body
    refused = await api.call("POST", f"/api/boards/{board.id}/secret", owner)
    assert refused.status == 429 and refused.error.code == "rate_limited", refused.body
    assert int(refused.headers["Retry-After"]) > 0
    stored = await api.store.get_board(board.id)
    assert stored is not None
    # the refused one changed nothing: the last secret given still opens the board
    assert check_board_secret(reply.decode(SecretReply).secret, stored.secret_hash)
    # pairing keeps its own count
    await api.pair(owner)
    # another owner is not held back by this one
    other = await api.operator("DL2OTH")
    theirs = await api.pair(other)
    assert (await api.call("POST", f"/api/boards/{theirs.id}/secret", other)).status == 200
