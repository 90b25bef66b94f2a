"""The SQLite store (signaling/store.py), on real database files."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signaling.errors import (
    BadRequestError,
    ConfigError,
    ConflictError,
    NotFoundError,
    SignalingError,
)
from signaling.store import Board, SqliteStore, User, create_store
from signaling.store.sqlite import SCHEMA_VERSION

BOARD_ID = "3f2a6c1e-8b4d-4e0f-9a7c-5d1e2b3c4a5f"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "data" / "radiocore.sqlite3") as opened:
        yield opened


async def _alice(store: SqliteStore) -> User:
    return await store.create_user("Alice@Example.org ", "scrypt$hash-a", "DL1ABC")


async def test_create_and_get_user(store: SqliteStore) -> None:
    alice = await _alice(store)
    assert uuid.UUID(alice.id).version == 4
    assert alice.email == "alice@example.org"
    assert alice.callsign == "DL1ABC"
    assert alice.created_at.tzinfo is not None
    assert await store.get_user(alice.id) == alice
    assert await store.get_user_by_email("ALICE@example.ORG") == alice
    assert await store.get_user(str(uuid.uuid4())) is None
    assert await store.get_user_by_email("bob@example.org") is None
    assert "scrypt$hash-a" not in repr(alice)


async def test_duplicate_email_is_a_conflict(store: SqliteStore) -> None:
    await _alice(store)
    with pytest.raises(ConflictError, match="already registered") as info:
        await store.create_user("alice@EXAMPLE.org", "scrypt$other", "DL2XYZ")
    assert info.value.http_status == 409


async def test_create_and_get_boards(store: SqliteStore) -> None:
    alice = await _alice(store)
    bob = await store.create_user("bob@example.org", "scrypt$hash-b", "W1AW")
    first = await store.create_board(alice.id, "Shack IC-7300", "a" * 64, BOARD_ID.upper())
    second = await store.create_board(alice.id, "Portable", "b" * 64)
    assert first.id == BOARD_ID  # canonical: lower case with dashes
    assert uuid.UUID(second.id).version == 4
    assert first == Board(
        id=BOARD_ID,
        owner_id=alice.id,
        name="Shack IC-7300",
        created_at=first.created_at,
        secret_hash="a" * 64,
    )
    assert first.public is False and first.location is None and first.last_seen is None
    assert "a" * 64 not in repr(first)
    assert await store.get_board(BOARD_ID) == first
    assert await store.get_board(str(uuid.uuid4())) is None
    assert await store.boards_of(alice.id) == [first, second]
    assert await store.boards_of(bob.id) == []


async def test_board_errors(store: SqliteStore) -> None:
    alice = await _alice(store)
    await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    with pytest.raises(ConflictError, match="already paired"):
        await store.create_board(alice.id, "Again", "b" * 64, BOARD_ID)
    with pytest.raises(NotFoundError, match="no such user"):
        await store.create_board(str(uuid.uuid4()), "Orphan", "c" * 64)
    with pytest.raises(BadRequestError, match="not a UUID"):
        await store.create_board(alice.id, "Bad", "d" * 64, "pair?id=123")


async def test_touch_board(store: SqliteStore) -> None:
    alice = await _alice(store)
    board = await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    seen = datetime(2026, 11, 23, 7, 30, 0, 123456, tzinfo=UTC)
    await store.touch_board(board.id, seen)
    touched = await store.get_board(board.id)
    assert touched is not None and touched.last_seen == seen
    later = datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(hours=1)
    await store.touch_board(board.id, later.astimezone())  # any time zone, stored as UTC
    touched = await store.get_board(board.id)
    assert touched is not None and touched.last_seen == later
    with pytest.raises(NotFoundError, match="no such board"):
        await store.touch_board(str(uuid.uuid4()), seen)
    with pytest.raises(ValueError, match="timezone"):
        await store.touch_board(board.id, datetime(2026, 1, 1))


async def test_deleting_a_user_deletes_their_boards(store: SqliteStore) -> None:
    alice = await _alice(store)
    bob = await store.create_user("bob@example.org", "scrypt$hash-b", "W1AW")
    await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    await store.create_board(alice.id, "Portable", "b" * 64)
    bobs = await store.create_board(bob.id, "Bob's", "c" * 64)
    await store.delete_user(alice.id)
    assert await store.get_user(alice.id) is None
    assert await store.get_board(BOARD_ID) is None
    assert await store.boards_of(alice.id) == []
    assert await store.boards_of(bob.id) == [bobs]
    with pytest.raises(NotFoundError):
        await store.delete_user(alice.id)
    # the email is free again
    await _alice(store)


async def test_data_survives_reopening_and_schema_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "rc.sqlite3"
    async with SqliteStore(path) as store:
        alice = await _alice(store)
        board = await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    async with SqliteStore(path) as store:
        assert await store.get_user(alice.id) == alice
        assert await store.get_board(BOARD_ID) == board
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rc.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    store = SqliteStore(path)
    with pytest.raises(SignalingError, match="schema version 99"):
        await store.open()
    await store.close()


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rc.sqlite3")
    with pytest.raises(SignalingError, match="not open"):
        await store.get_user("x")
    await store.open()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(SignalingError, match="not open"):
        await store.boards_of("x")


def test_create_store_from_url(tmp_path: Path) -> None:
    default = create_store("", tmp_path)
    assert isinstance(default, SqliteStore)
    assert default.path == tmp_path / "radiocore.sqlite3"
    absolute = create_store(f"sqlite:///{tmp_path}/x.db", tmp_path / "unused")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "x.db"
    relative = create_store("sqlite:///rel/x.db", tmp_path)
    assert isinstance(relative, SqliteStore) and relative.path == Path("rel/x.db")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        create_store("postgresql://rc:pw@db/rc", tmp_path)
    with pytest.raises(ConfigError, match="not supported"):
        create_store("mysql://db/rc", tmp_path)


async def test_grants_give_rights_on_other_owners_boards(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite3") as store:
        owner = await store.create_user("owner@example.org", "h", "DL1OWN")
        guest = await store.create_user("guest@example.org", "h", "DL2GST")
        board = await store.create_board(owner.id, "Home", "secret-hash")
        assert await store.grant_of(board.id, guest.id) is None
        await store.set_grant(board.id, guest.id, "listen")
        await store.set_grant(board.id, guest.id, "transmit")
        assert await store.grant_of(board.id, guest.id) == "transmit"
        granted = await store.boards_granted_to(guest.id)
        assert [(b.id, right) for b, right in granted] == [(board.id, "transmit")]
        assert await store.grantees(board.id) == [guest.id]
        with pytest.raises(BadRequestError):
            await store.set_grant(board.id, guest.id, "own")  # type: ignore[arg-type]
        with pytest.raises(NotFoundError):
            await store.set_grant(str(uuid.uuid4()), guest.id, "listen")
        await store.set_grant(board.id, guest.id, None)
        assert await store.grant_of(board.id, guest.id) is None


async def test_tx_sessions_are_logged_newest_first(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite3") as store:
        owner = await store.create_user("owner@example.org", "h", "DL1OWN")
        board = await store.create_board(owner.id, "Home", "secret-hash")
        start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        first = await store.start_tx(board.id, owner.id, "DL1OWN", start)
        await store.end_tx(first, start + timedelta(seconds=5), "released")
        second = await store.start_tx(board.id, owner.id, "DL1OWN", start + timedelta(minutes=1))
        sessions = await store.tx_sessions(board.id)
        assert [s.id for s in sessions] == [second, first]
        assert sessions[1].reason == "released"
        assert sessions[1].ended_at == start + timedelta(seconds=5)
        assert sessions[0].ended_at is None and sessions[0].reason is None
        await store.end_tx(first, start + timedelta(hours=1), "timeout")  # ended stays ended
        assert (await store.tx_sessions(board.id))[1].reason == "released"


async def test_records_left_open_are_closed_then_settled_by_the_station(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite3") as store:
        owner = await store.create_user("owner@example.org", "h", "DL1OWN")
        board = await store.create_board(owner.id, "Home", "secret-hash")
        other = await store.create_board(owner.id, "Away", "secret-hash-2")
        start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        done = await store.start_tx(board.id, owner.id, "DL1OWN", start)
        await store.end_tx(done, start + timedelta(seconds=5), "released")
        dangling = await store.start_tx(board.id, owner.id, "DL1OWN", start + timedelta(minutes=1))
        elsewhere = await store.start_tx(other.id, owner.id, "DL1OWN", start + timedelta(minutes=1))
        restart = start + timedelta(minutes=10)
        assert await store.close_open_tx(restart, "server_restart") == 2
        assert await store.close_open_tx(restart, "server_restart") == 0  # nothing open now
        by_id = {s.id: s for s in await store.tx_sessions(board.id)}
        assert (by_id[dangling].ended_at, by_id[dangling].reason) == (restart, "server_restart")
        assert by_id[done].reason == "released"  # a closed record is left alone
        # the station says it unkeyed 90 s after the key-up: that is the end recorded
        unkeyed = start + timedelta(minutes=1, seconds=30)
        assert await store.settle_open_tx(board.id, "server_restart", unkeyed) == 1
        by_id = {s.id: s for s in await store.tx_sessions(board.id)}
        assert by_id[dangling].ended_at == unkeyed
        assert by_id[done].ended_at == start + timedelta(seconds=5)
        # a time before the key-up, or after the restart, changes nothing
        assert await store.settle_open_tx(board.id, "server_restart", start) == 0
        assert await store.settle_open_tx(other.id, "server_restart", restart) == 0
        assert (await store.tx_sessions(other.id))[0].id == elsewhere
