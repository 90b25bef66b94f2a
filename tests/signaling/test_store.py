"""The store's contract (signaling/store/), one suite run against both databases: SQLite files
and a real PostgreSQL 15 started for the test session (tests/support/postgres.py), a fresh
database per test.

Where a test needs to see what the database itself holds or refuses (rows left after a delete,
an overlapping booking inserted past the store), it opens a raw connection of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from signaling.accounts import hash_pairing_code, pair_board, provision_board, release_board
from signaling.auth import check_board_secret
from signaling.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    SignalingError,
)
from signaling.store import (
    BANDS,
    LATEST_VERSION,
    Board,
    SqliteStore,
    Store,
    User,
    create_store,
)
from signaling.store.migrations import MIGRATIONS
from signaling.store.postgres import PostgresStore
from signaling.store.sqlite import SCHEMA_VERSION
from tests.support.postgres import PostgresServer, fresh_database

BOARD_ID = "3f2a6c1e-8b4d-4e0f-9a7c-5d1e2b3c4a5f"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

#: The SQLite schema as RadioCore wrote it before versioned migrations (`PRAGMA user_version`
#: 2), verbatim: an old database file is built from it to prove it upgrades.
OLD_SQLITE_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    callsign TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS boards (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    location TEXT,
    public INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    last_seen TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS boards_owner ON boards (owner_id);
CREATE TABLE IF NOT EXISTS grants (
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    right TEXT NOT NULL CHECK (right IN ('listen', 'transmit')),
    PRIMARY KEY (board_id, user_id)
);
CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id);
CREATE TABLE IF NOT EXISTS tx_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    callsign TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS tx_sessions_board ON tx_sessions (board_id, started_at);
"""

#: Tables holding a user's data, and the column naming the user.
USER_TABLES = {
    "users": "id",
    "boards": "owner_id",
    "grants": "user_id",
    "blocks": "user_id",
    "bookings": "user_id",
    "refresh_tokens": "user_id",
    "subscriptions": "user_id",
    "tx_sessions": "user_id",
}


# -- the databases ----------------------------------------------------------------------------


# `postgres_server`, one PostgreSQL for the session: tests/signaling/conftest.py


@dataclass
class Database:
    """One test's database: `url` is its `database_url`; `new_store()` opens another store on
    it (another connection, or pool)."""

    kind: str
    url: str
    data_dir: Path

    def new_store(self) -> Store:
        return create_store(self.url, self.data_dir)

    @property
    def sqlite_path(self) -> Path:
        store = self.new_store()
        assert isinstance(store, SqliteStore)
        return store.path

    async def rows(self, sql_sqlite: str, sql_postgres: str | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query on a raw connection (PostgreSQL: `$1`-style SQL if it differs)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path) as raw:
                result = [tuple(row) for row in raw.execute(sql_sqlite).fetchall()]
            raw.close()
            return result
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql_postgres or sql_sqlite)]
        finally:
            await conn.close()

    async def count(self, table: str, where: str) -> int:
        return int((await self.rows(f"SELECT count(*) FROM {table} WHERE {where}"))[0][0])


def _database_fixture(name: str, empty: bool) -> Any:
    @pytest.fixture(name=name, params=["sqlite", "postgres"])
    async def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
        if request.param == "sqlite":
            yield Database("sqlite", f"sqlite:///{tmp_path}/data/radiocore.sqlite3", tmp_path)
            return
        server: PostgresServer = request.getfixturevalue("postgres_server")
        async with fresh_database(server, empty=empty) as url:
            yield Database("postgres", url, tmp_path)

    return fixture


#: A database with the schema already there (PostgreSQL: a copy of the migrated template).
database = _database_fixture("database", empty=False)
#: A database with nothing in it.
empty_database = _database_fixture("empty_database", empty=True)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    async with database.new_store() as opened:
        yield opened


async def _alice(store: Store) -> User:
    return await store.create_user("Alice@Example.org ", "scrypt$hash-a", "DL1ABC")


async def _bob(store: Store) -> User:
    return await store.create_user("bob@example.org", "scrypt$hash-b", "W1AW")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- users and boards (what the server used before issue 8) ------------------------------------


async def test_create_and_get_user(store: Store) -> None:
    alice = await _alice(store)
    assert uuid.UUID(alice.id).version == 4
    assert alice.email == "alice@example.org"
    assert alice.callsign == "DL1ABC"
    assert alice.created_at.tzinfo is not None
    assert await store.get_user(alice.id) == alice
    assert await store.get_user_by_email("ALICE@example.ORG") == alice
    assert await store.get_user(str(uuid.uuid4())) is None
    assert await store.get_user("not-a-uuid") is None
    assert await store.get_user_by_email("bob@example.org") is None
    assert "scrypt$hash-a" not in repr(alice)


async def test_duplicate_email_is_a_conflict(store: Store) -> None:
    await _alice(store)
    with pytest.raises(ConflictError, match="already registered") as info:
        await store.create_user("alice@EXAMPLE.org", "scrypt$other", "DL2XYZ")
    assert info.value.http_status == 409


async def test_create_and_get_boards(store: Store) -> None:
    alice = await _alice(store)
    bob = await _bob(store)
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
        paired_at=first.created_at,  # set up by hand: paired when created
    )
    assert first.public is False and first.locator is None and first.last_seen is None
    assert first.bands == () and first.price_eur is None
    assert "a" * 64 not in repr(first)
    assert await store.get_board(BOARD_ID) == first
    assert await store.get_board(str(uuid.uuid4())) is None
    assert await store.boards_of(alice.id) == [first, second]
    assert await store.boards_of(bob.id) == []


async def test_board_errors(store: Store) -> None:
    alice = await _alice(store)
    await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    with pytest.raises(ConflictError, match="already paired"):
        await store.create_board(alice.id, "Again", "b" * 64, BOARD_ID)
    with pytest.raises(NotFoundError, match="no such user"):
        await store.create_board(str(uuid.uuid4()), "Orphan", "c" * 64)
    with pytest.raises(BadRequestError, match="not a UUID"):
        await store.create_board(alice.id, "Bad", "d" * 64, "pair?id=123")


async def test_touch_board(store: Store) -> None:
    alice = await _alice(store)
    board = await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    seen = datetime(2026, 11, 23, 7, 30, 0, 123456, tzinfo=UTC)
    await store.touch_board(board.id, seen)
    touched = await store.get_board(board.id)
    assert touched is not None and touched.last_seen == seen
    later = datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + HOUR
    await store.touch_board(board.id, later.astimezone())  # any time zone, stored as UTC
    touched = await store.get_board(board.id)
    assert touched is not None and touched.last_seen == later
    with pytest.raises(NotFoundError, match="no such board"):
        await store.touch_board(str(uuid.uuid4()), seen)
    with pytest.raises(ValueError, match="timezone"):
        await store.touch_board(board.id, datetime(2026, 1, 1))


async def test_deleting_a_user_deletes_their_boards(store: Store) -> None:
    alice = await _alice(store)
    bob = await _bob(store)
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
    await _alice(store)  # the email is free again


async def test_data_survives_reopening_and_opening_twice_changes_nothing(
    database: Database,
) -> None:
    async with database.new_store() as store:
        alice = await _alice(store)
        board = await store.create_board(alice.id, "Shack", "a" * 64, BOARD_ID)
    async with database.new_store() as store:
        assert store.applied_migrations == ()
        assert await store.schema_version() == LATEST_VERSION
        assert await store.get_user(alice.id) == alice
        assert await store.get_board(BOARD_ID) == board
    versions = await database.rows("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
    if database.kind == "sqlite":
        with sqlite3.connect(database.sqlite_path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        raw.close()


async def test_closed_store_refuses_calls(database: Database) -> None:
    store = database.new_store()
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
    for url in ("postgresql://rc:pw-Secret9@db/rc", "postgres://rc:pw-Secret9@db:5433/rc"):
        postgres = create_store(url, tmp_path)
        assert isinstance(postgres, PostgresStore)
        assert "pw-Secret9" not in repr(postgres) and "***" in repr(postgres)
    socket = create_store("postgresql://rc@/rc?host=/run/postgresql", tmp_path)
    assert isinstance(socket, PostgresStore)
    with pytest.raises(ConfigError, match="not supported"):
        create_store("mysql://db/rc", tmp_path)
    with pytest.raises(ConfigError, match="file path"):
        create_store("sqlite:///", tmp_path)


async def test_an_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    from bench.tools import free_port

    store = create_store(f"postgresql://rc:pw-Secret9@127.0.0.1:{free_port()}/rc", tmp_path)
    with pytest.raises(SignalingError, match="cannot connect to PostgreSQL") as info:
        await store.open()
    assert "pw-Secret9" not in info.value.message and "***" in info.value.message


async def test_grants_give_rights_on_other_owners_boards(store: Store) -> None:
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
    with pytest.raises(NotFoundError):
        await store.set_grant(board.id, str(uuid.uuid4()), "listen")
    await store.set_grant(board.id, guest.id, None)
    assert await store.grant_of(board.id, guest.id) is None


async def test_tx_sessions_are_logged_newest_first(store: Store) -> None:
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
    await store.end_tx(first, start + HOUR, "timeout")  # ended stays ended
    assert (await store.tx_sessions(board.id))[1].reason == "released"
    assert [s.id for s in await store.tx_sessions_by_user(owner.id)] == [second, first]


async def test_records_left_open_are_closed_then_settled_by_the_station(store: Store) -> None:
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


# -- migrations -------------------------------------------------------------------------------


async def test_an_empty_database_is_migrated_to_the_latest_version(
    empty_database: Database,
) -> None:
    async with empty_database.new_store() as store:
        assert store.applied_migrations == tuple(m.version for m in MIGRATIONS)
        assert await store.schema_version() == LATEST_VERSION
        alice = await _alice(store)  # and it works
        assert await store.get_user(alice.id) == alice
    rows = await empty_database.rows("SELECT version, description FROM schema_version")
    assert sorted(rows) == [(m.version, m.description) for m in MIGRATIONS]
    if empty_database.kind == "postgres":
        assert await empty_database.rows(
            "SELECT extname FROM pg_extension WHERE extname = 'btree_gist'"
        ) == [("btree_gist",)]


async def test_stores_opening_a_new_database_at_once_migrate_it_once(
    empty_database: Database,
) -> None:
    stores = [empty_database.new_store() for _ in range(6)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        applied = sorted(v for store in stores for v in store.applied_migrations)
        assert applied == [m.version for m in MIGRATIONS]  # each migration by one store
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    rows = await empty_database.rows("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in rows] == [m.version for m in MIGRATIONS]


async def test_a_database_newer_than_the_code_is_refused(empty_database: Database) -> None:
    async with empty_database.new_store():
        pass
    newer = LATEST_VERSION + 1
    insert = (
        "INSERT INTO schema_version (version, description, applied_at) "
        f"VALUES ({newer}, 'from the future', '2030-01-01T00:00:00+00:00')"
    )
    if empty_database.kind == "sqlite":
        with sqlite3.connect(empty_database.sqlite_path) as raw:
            raw.execute(insert)
        raw.close()
    else:
        await empty_database.rows(insert + " RETURNING version")
    store = empty_database.new_store()
    with pytest.raises(SignalingError, match=f"schema version {newer}, newer than") as info:
        await store.open()
    assert "Nothing was changed" in info.value.message
    await store.close()
    rows = await empty_database.rows("SELECT max(version) FROM schema_version")
    assert rows == [(newer,)]


async def test_a_sqlite_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    """A file a future release marked only in `user_version` (as releases before versioned
    migrations did) is refused too."""
    path = tmp_path / "rc.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    store = SqliteStore(path)
    with pytest.raises(SignalingError, match="schema version 99"):
        await store.open()
    await store.close()


async def test_an_old_sqlite_v2_file_upgrades_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    created = "2026-11-20T10:00:00.000000+00:00"
    seen = "2026-11-21T08:15:00.250000+00:00"
    raw = sqlite3.connect(path)
    raw.executescript(OLD_SQLITE_SCHEMA_V2)
    raw.execute("PRAGMA user_version = 2")
    raw.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
        [
            ("u-owner", "owner@example.org", "scrypt$o", "DL1OWN", created),
            ("u-guest", "guest@example.org", "scrypt$g", "DL2GST", created),
        ],
    )
    raw.execute(
        "INSERT INTO boards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (BOARD_ID, "u-owner", "Shack", "f" * 64, "JO62qm", 1, seen, created),
    )
    raw.execute("INSERT INTO grants VALUES (?, ?, ?)", (BOARD_ID, "u-guest", "transmit"))
    raw.execute(
        "INSERT INTO tx_sessions (board_id, user_id, callsign, started_at, ended_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (BOARD_ID, "u-guest", "DL2GST", seen, seen, "released"),
    )
    raw.commit()
    raw.close()

    async with SqliteStore(path) as store:
        assert store.applied_migrations == (1, 2, 3)  # 1, 2 adopt the old tables as they are
        assert await store.schema_version() == LATEST_VERSION
        board = await store.get_board(BOARD_ID)
        assert board is not None
        assert (board.owner_id, board.name, board.locator, board.public) == (
            "u-owner",
            "Shack",
            "JO62qm",
            True,
        )
        assert board.last_seen == datetime.fromisoformat(seen)
        assert board.paired_at == board.created_at == datetime.fromisoformat(created)
        assert board.bands == () and board.price_eur is None
        assert check_board_secret("x", board.secret_hash) is False
        assert await store.grant_of(BOARD_ID, "u-guest") == "transmit"
        assert [t.callsign for t in await store.tx_sessions(BOARD_ID)] == ["DL2GST"]
        # the new tables work on the upgraded file
        booking = await store.create_booking(BOARD_ID, "u-guest", T0, T0 + HOUR)
        with pytest.raises(ConflictError):
            await store.create_booking(BOARD_ID, "u-guest", T0, T0 + HOUR)
        # foreign keys survived the table rebuild: deleting the owner cascades
        await store.delete_user("u-owner")
        assert await store.get_booking(booking.id) is None
        assert await store.tx_sessions(BOARD_ID) == []
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert raw.execute("SELECT count(*) FROM grants").fetchone()[0] == 0
        versions = raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [v for (v,) in versions] == [1, 2, 3]
    raw.close()


async def test_a_postgres_database_at_version_2_upgrades_with_its_data(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    async with fresh_database(postgres_server, empty=True) as url:
        await _upgrade_postgres_from_version_2(Database("postgres", url, tmp_path))


async def _upgrade_postgres_from_version_2(empty_database: Database) -> None:
    conn = await asyncpg.connect(empty_database.url)
    try:
        await conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, "
            "description text NOT NULL, applied_at timestamptz NOT NULL)"
        )
        for migration in MIGRATIONS[:2]:
            await conn.execute(migration.postgres)
            await conn.execute(
                "INSERT INTO schema_version VALUES ($1, $2, now())",
                migration.version,
                migration.description,
            )
        await conn.execute(
            "INSERT INTO users VALUES ('u-owner', 'owner@example.org', 'h', 'DL1OWN', $1)", T0
        )
        await conn.execute(
            "INSERT INTO boards (id, owner_id, name, secret_hash, location, public, created_at) "
            "VALUES ($1, 'u-owner', 'Shack', 'h', 'JO62', true, $2)",
            BOARD_ID,
            T0,
        )
    finally:
        await conn.close()
    async with empty_database.new_store() as store:
        assert store.applied_migrations == (3,)
        board = await store.get_board(BOARD_ID)
        assert board is not None and board.locator == "JO62" and board.paired_at == T0
        assert [b.id for b in await store.public_boards("JO")] == [BOARD_ID]


# -- bookings ---------------------------------------------------------------------------------


async def _station(store: Store, price: Decimal | None = None) -> tuple[User, User, Board]:
    owner = await store.create_user("owner@example.org", "h", "DL1OWN")
    guest = await store.create_user("guest@example.org", "h", "DL2GST")
    board = await store.create_board(owner.id, "Home", "secret-hash")
    if price is not None:
        board = await store.update_board(board.id, price_eur=price)
    return owner, guest, board


async def test_bookings_are_stored_listed_and_found_by_time(store: Store) -> None:
    owner, guest, board = await _station(store, price=Decimal("3.00"))
    later = await store.create_booking(board.id, guest.id, T0 + 2 * HOUR, T0 + 3 * HOUR)
    first = await store.create_booking(
        board.id, guest.id, T0.astimezone(), T0 + timedelta(minutes=30)
    )
    assert first.starts_at == T0 and first.starts_at.utcoffset() == timedelta(0)
    assert first.price_eur == Decimal("1.50")  # 3 €/h for half an hour
    assert first.cancelled_at is None and first.created_at.tzinfo is not None
    assert await store.get_booking(first.id) == first
    assert await store.get_booking(str(uuid.uuid4())) is None
    assert await store.bookings_of_user(guest.id) == [first, later]
    assert await store.bookings_of_board(board.id) == [first, later]
    assert await store.bookings_of_board(board.id, ending_after=T0 + HOUR) == [later]
    assert await store.bookings_of_user(owner.id) == []
    assert await store.booking_at(board.id, T0) == first
    assert await store.booking_at(board.id, T0 + timedelta(minutes=29, seconds=59)) == first
    assert await store.booking_at(board.id, T0 + timedelta(minutes=30)) is None  # [start, end)
    assert await store.booking_at(board.id, T0 - timedelta(microseconds=1)) is None
    assert first.covers(T0) and not first.covers(T0 + timedelta(minutes=30))
    free = await store.update_board(board.id, price_eur=None)
    assert free.price_eur is None
    unpriced = await store.create_booking(board.id, owner.id, T0 + 5 * HOUR, T0 + 6 * HOUR)
    assert unpriced.price_eur is None  # the owner may reserve their own station


async def test_overlapping_bookings_are_refused_and_adjacent_ones_are_not(store: Store) -> None:
    _, guest, board = await _station(store)
    other_guest = await store.create_user("other@example.org", "h", "DL3OTH")
    await store.create_booking(board.id, guest.id, T0, T0 + HOUR)
    for start, end in [
        (T0, T0 + HOUR),  # the same window
        (T0 - timedelta(minutes=30), T0 + timedelta(minutes=1)),  # overlaps the start
        (T0 + timedelta(minutes=59), T0 + 2 * HOUR),  # overlaps the end
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)),  # inside
        (T0 - HOUR, T0 + 2 * HOUR),  # around
    ]:
        with pytest.raises(ConflictError, match="already booked") as info:
            await store.create_booking(board.id, other_guest.id, start, end)
        assert info.value.http_status == 409
    # adjacent on both sides: end == next start
    before = await store.create_booking(board.id, other_guest.id, T0 - HOUR, T0)
    after = await store.create_booking(board.id, other_guest.id, T0 + HOUR, T0 + 2 * HOUR)
    assert len(await store.bookings_of_board(board.id)) == 3
    # another board's bookings are independent
    owner2 = await store.create_user("owner2@example.org", "h", "DL4TWO")
    board2 = await store.create_board(owner2.id, "Elsewhere", "secret-hash-2")
    await store.create_booking(board2.id, guest.id, T0, T0 + HOUR)
    assert before.ends_at == T0 and after.starts_at == T0 + HOUR


async def test_a_cancelled_booking_frees_its_slot(store: Store) -> None:
    _, guest, board = await _station(store)
    other = await store.create_user("other@example.org", "h", "DL3OTH")
    booking = await store.create_booking(board.id, guest.id, T0, T0 + HOUR)
    cancelled = await store.cancel_booking(booking.id, T0 - HOUR)
    assert cancelled.cancelled_at == T0 - HOUR
    again = await store.cancel_booking(booking.id, T0)  # the first cancellation stays
    assert again.cancelled_at == T0 - HOUR
    assert await store.booking_at(board.id, T0) is None
    assert await store.bookings_of_user(guest.id) == []
    assert await store.bookings_of_user(guest.id, include_cancelled=True) == [cancelled]
    taken = await store.create_booking(board.id, other.id, T0, T0 + HOUR)
    assert await store.booking_at(board.id, T0 + timedelta(minutes=5)) == taken
    with pytest.raises(NotFoundError, match="no such booking"):
        await store.cancel_booking(str(uuid.uuid4()))


async def test_booking_input_is_checked(store: Store) -> None:
    _owner, guest, board = await _station(store)
    with pytest.raises(BadRequestError, match="ends_at must be after starts_at"):
        await store.create_booking(board.id, guest.id, T0, T0)
    with pytest.raises(BadRequestError, match="ends_at must be after starts_at"):
        await store.create_booking(board.id, guest.id, T0, T0 - HOUR)
    with pytest.raises(ValueError, match="timezone"):
        await store.create_booking(board.id, guest.id, datetime(2026, 1, 1), T0)
    with pytest.raises(NotFoundError, match="no such board"):
        await store.create_booking(str(uuid.uuid4()), guest.id, T0, T0 + HOUR)
    with pytest.raises(NotFoundError, match="no such user"):
        await store.create_booking(board.id, str(uuid.uuid4()), T0, T0 + HOUR)
    unpaired = await store.provision_board("s" * 64, _sha("CODE"))
    with pytest.raises(NotFoundError, match="no such board"):
        await store.create_booking(unpaired.id, guest.id, T0, T0 + HOUR)
    assert await store.bookings_of_board(board.id) == []


async def test_the_database_itself_refuses_overlapping_bookings(database: Database) -> None:
    """Past the store: a raw INSERT of an overlapping active booking fails in the database
    (SQLite trigger, PostgreSQL exclusion constraint); a cancelled or adjacent one does not."""
    async with database.new_store() as store:
        _, guest, board = await _station(store)
        await store.create_booking(board.id, guest.id, T0, T0 + HOUR)

    def row(start: datetime, end: datetime, cancelled: datetime | None) -> tuple[Any, ...]:
        return (str(uuid.uuid4()), board.id, guest.id, start, end, cancelled)

    overlapping = row(T0 + timedelta(minutes=30), T0 + 2 * HOUR, None)
    cancelled = row(T0 + timedelta(minutes=30), T0 + 2 * HOUR, T0)
    adjacent = row(T0 + HOUR, T0 + 2 * HOUR, None)
    if database.kind == "sqlite":
        sql = (
            "INSERT INTO bookings (id, board_id, user_id, starts_at, ends_at, created_at, "
            "cancelled_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

        def text(values: tuple[Any, ...]) -> tuple[Any, ...]:
            iso = [
                v.isoformat(timespec="microseconds") if isinstance(v, datetime) else v
                for v in values
            ]
            return (*iso[:5], T0.isoformat(timespec="microseconds"), iso[5])

        raw = sqlite3.connect(database.sqlite_path)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="booking_overlap"):
                raw.execute(sql, text(overlapping))
            raw.execute(sql, text(cancelled))
            raw.execute(sql, text(adjacent))
            raw.commit()
            # un-cancelling into an overlap is refused as well
            with pytest.raises(sqlite3.IntegrityError, match="booking_overlap"):
                raw.execute("UPDATE bookings SET cancelled_at = NULL WHERE id = ?", (cancelled[0],))
        finally:
            raw.close()
    else:
        sql = (
            "INSERT INTO bookings (id, board_id, user_id, starts_at, ends_at, created_at, "
            "cancelled_at) VALUES ($1, $2, $3, $4, $5, now(), $6)"
        )
        conn = await asyncpg.connect(database.url)
        try:
            with pytest.raises(asyncpg.ExclusionViolationError):
                await conn.execute(sql, *overlapping)
            await conn.execute(sql, *cancelled)
            await conn.execute(sql, *adjacent)
            with pytest.raises(asyncpg.ExclusionViolationError):
                await conn.execute(
                    "UPDATE bookings SET cancelled_at = NULL WHERE id = $1", cancelled[0]
                )
        finally:
            await conn.close()


async def test_fifty_concurrent_overlapping_bookings_exactly_one_succeeds(
    database: Database,
) -> None:
    """50 requests for windows that all contain T0 + 30 min, from 10 stores (each its own
    connection or pool) at once: the database lets exactly one through."""
    async with database.new_store() as setup:
        _, _, board = await _station(setup)
        guests = [
            await setup.create_user(f"guest{i}@example.org", "h", f"DL{i}GST") for i in range(50)
        ]
    stores = [database.new_store() for _ in range(10)]
    await asyncio.gather(*(store.open() for store in stores))
    rng = random.Random(8)
    try:
        start_line = asyncio.Event()

        async def book(index: int) -> str:
            start = T0 + timedelta(minutes=rng.randrange(0, 30))
            end = T0 + timedelta(minutes=31 + rng.randrange(0, 30))
            await start_line.wait()
            try:
                await stores[index % 10].create_booking(board.id, guests[index].id, start, end)
            except ConflictError:
                return "conflict"
            return "booked"

        tasks = [asyncio.ensure_future(book(i)) for i in range(50)]
        await asyncio.sleep(0)
        start_line.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert outcomes.count("booked") == 1
    assert outcomes.count("conflict") == 49
    async with database.new_store() as store:
        booked = await store.bookings_of_board(board.id)
        assert len(booked) == 1
        assert await store.booking_at(board.id, T0 + timedelta(minutes=30)) == booked[0]
    assert await database.count("bookings", "1 = 1") == 1


# -- pairing ----------------------------------------------------------------------------------


async def test_pairing_needs_the_code_which_works_once(store: Store) -> None:
    alice = await _alice(store)
    bob = await _bob(store)
    provisioned = await provision_board(store, BOARD_ID)
    board = provisioned.board
    assert board.owner_id is None and board.paired_at is None and board.name == ""
    assert provisioned.pairing_code not in repr(provisioned)
    assert await store.get_board(BOARD_ID) == board
    assert await store.boards_of(alice.id) == []
    code = provisioned.pairing_code
    with pytest.raises(ForbiddenError, match="unknown board or wrong pairing code"):
        await pair_board(store, BOARD_ID, alice.id, "WRNG-CODE-2345", "Shack")
    with pytest.raises(BadRequestError, match="missing"):
        await pair_board(store, BOARD_ID, alice.id, "", "Shack")
    with pytest.raises(BadRequestError, match="missing"):
        await pair_board(store, BOARD_ID, alice.id, "   ", "Shack")
    with pytest.raises(BadRequestError, match="missing"):
        await store.pair_board(BOARD_ID, alice.id, "", "Shack")
    with pytest.raises(ForbiddenError, match="unknown board or wrong pairing code"):
        await pair_board(store, str(uuid.uuid4()), alice.id, code, "Shack")  # no such board
    with pytest.raises(BadRequestError, match="name"):
        await pair_board(store, BOARD_ID, alice.id, code, "   ")
    with pytest.raises(NotFoundError, match="no such user"):
        await pair_board(store, BOARD_ID, str(uuid.uuid4()), code, "Shack")
    # typed by hand: lower case, blanks instead of dashes
    paired = await pair_board(store, BOARD_ID, alice.id, code.lower().replace("-", " "), " Shack ")
    assert (paired.owner_id, paired.name) == (alice.id, "Shack")
    assert paired.paired_at is not None
    assert await store.boards_of(alice.id) == [paired]
    # the code is used up, and an owned board cannot be taken over
    with pytest.raises(ConflictError, match="release it first"):
        await pair_board(store, BOARD_ID, bob.id, code, "Mine now")
    with pytest.raises(ConflictError, match="release it first"):
        await pair_board(store, BOARD_ID, alice.id, code, "Again")
    assert (await store.get_board(BOARD_ID)) == paired


async def test_pairing_codes_are_stored_only_as_hashes(database: Database) -> None:
    async with database.new_store() as store:
        provisioned = await provision_board(store)
    code = provisioned.pairing_code
    dumped = json.dumps(await database.rows("SELECT * FROM boards"), default=str)
    assert code not in dumped and code.replace("-", "") not in dumped
    assert hash_pairing_code(code) in dumped
    assert provisioned.secret not in dumped


async def test_concurrent_pairings_with_the_right_code_make_one_owner(database: Database) -> None:
    async with database.new_store() as setup:
        users = [await setup.create_user(f"u{i}@example.org", "h", f"DL{i}AA") for i in range(8)]
        provisioned = await provision_board(setup)
    stores = [database.new_store() for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:

        async def pair(index: int) -> str:
            try:
                await pair_board(
                    stores[index % 4],
                    provisioned.board.id,
                    users[index].id,
                    provisioned.pairing_code,
                    f"Board of {index}",
                )
            except ConflictError:
                return "conflict"
            return users[index].id

        outcomes = await asyncio.wait_for(asyncio.gather(*(pair(i) for i in range(8))), 60)
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1
    async with database.new_store() as store:
        board = await store.get_board(provisioned.board.id)
        assert board is not None and board.owner_id == winners[0]


async def test_a_released_board_can_be_paired_again_with_a_new_code(store: Store) -> None:
    alice = await _alice(store)
    bob = await _bob(store)
    carol = await store.create_user("carol@example.org", "h", "DL5CAR")
    provisioned = await provision_board(store, BOARD_ID)
    await pair_board(store, BOARD_ID, alice.id, provisioned.pairing_code, "Shack")
    await store.update_board(BOARD_ID, locator="JO62", public=True, bands=["20m"])
    await store.set_grant(BOARD_ID, bob.id, "transmit")
    await store.block_user(BOARD_ID, carol.id)
    await store.create_booking(BOARD_ID, bob.id, T0, T0 + HOUR)
    await store.start_tx(BOARD_ID, bob.id, "W1AW", T0)
    with pytest.raises(NotFoundError, match="no such board"):
        await release_board(store, BOARD_ID, bob.id)  # only the owner releases
    released = await release_board(store, BOARD_ID, alice.id)
    board = released.board
    assert board.owner_id is None and board.paired_at is None
    assert (board.name, board.locator, board.bands, board.public) == ("", None, (), False)
    # a new agent secret: whoever had the old one can no longer act as the station
    assert check_board_secret(released.secret, board.secret_hash)
    assert not check_board_secret(provisioned.secret, board.secret_hash)
    assert await store.grantees(BOARD_ID) == []
    assert await store.blocked_users(BOARD_ID) == []
    assert await store.bookings_of_board(BOARD_ID, include_cancelled=True) == []
    assert await store.tx_sessions(BOARD_ID) == []
    assert await store.boards_of(alice.id) == []
    assert await store.public_boards() == []
    # the old code is dead, the new one works once
    with pytest.raises(ForbiddenError):
        await pair_board(store, BOARD_ID, bob.id, provisioned.pairing_code, "Bob's")
    again = await pair_board(store, BOARD_ID, bob.id, released.pairing_code, "Bob's")
    assert again.owner_id == bob.id
    with pytest.raises(NotFoundError):
        await release_board(store, BOARD_ID, alice.id)  # no longer hers


async def test_provisioning_refuses_a_taken_id_and_missing_hashes(store: Store) -> None:
    await store.provision_board("s" * 64, _sha("A"), BOARD_ID)
    with pytest.raises(ConflictError):
        await store.provision_board("s" * 64, _sha("B"), BOARD_ID)
    with pytest.raises(BadRequestError, match="pairing code"):
        await store.provision_board("s" * 64, "")
    with pytest.raises(BadRequestError, match="not a UUID"):
        await store.provision_board("s" * 64, _sha("C"), "sticker-7")


# -- station settings and the public directory ------------------------------------------------


async def test_updating_a_board_validates_and_canonicalises(store: Store) -> None:
    alice = await _alice(store)
    await store.create_board(alice.id, "Shack", "h", BOARD_ID)
    updated = await store.update_board(
        BOARD_ID,
        name="  Roof  ",
        locator="jo62QM",
        public=True,
        bands=["40M", "20m", "20m", "2m"],
        price_eur=Decimal("2.5"),
    )
    assert (updated.name, updated.locator, updated.public) == ("Roof", "JO62qm", True)
    assert updated.bands == ("40m", "20m", "2m")  # known order, no repeats
    assert updated.price_eur == Decimal("2.50")
    assert await store.get_board(BOARD_ID) == updated
    unchanged = await store.update_board(BOARD_ID)
    assert unchanged == updated
    cleared = await store.update_board(BOARD_ID, locator=None, bands=[], price_eur=None)
    assert (cleared.locator, cleared.bands, cleared.price_eur) == (None, (), None)
    assert cleared.name == "Roof" and cleared.public is True  # untouched fields stay
    bad: list[tuple[dict[str, Any], str]] = [
        ({"locator": "ZZ99"}, "locator"),
        ({"locator": "JO6"}, "locator"),
        ({"locator": "JO62qm123"}, "locator"),
        ({"bands": ["21m"]}, "bands"),
        ({"bands": "20m"}, "bands"),
        ({"price_eur": Decimal("-1")}, "price_eur"),
        ({"price_eur": Decimal("0.001")}, "price_eur"),
        ({"price_eur": Decimal("NaN")}, "price_eur"),
        ({"price_eur": Decimal("100000")}, "price_eur"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
    ]
    for kwargs, field_name in bad:
        with pytest.raises(BadRequestError, match=field_name):
            await store.update_board(BOARD_ID, **kwargs)
    assert await store.get_board(BOARD_ID) == cleared
    with pytest.raises(NotFoundError):
        await store.update_board(str(uuid.uuid4()), name="Ghost")
    with pytest.raises(NotFoundError):
        await store.update_board(str(uuid.uuid4()))


async def test_public_boards_filter_by_locator_prefix_and_bands(store: Store) -> None:
    alice = await _alice(store)
    specs = [
        ("Berlin", "JO62qm", ["20m", "40m"], True),
        ("Potsdam", "JO62", ["2m"], True),
        ("Hamburg", "JO53ab", ["20m"], True),
        ("Private", "JO62qm", ["20m"], False),
        ("Nowhere", None, ["20m"], True),
    ]
    ids = {}
    for name, locator, bands, public in specs:
        board = await store.create_board(alice.id, name, "h")
        await store.update_board(board.id, locator=locator, bands=bands, public=public)
        ids[name] = board.id
    await store.provision_board("h", _sha("unpaired"))  # no owner: never listed

    async def names(prefix: str | None = None, bands: tuple[str, ...] = ()) -> list[str]:
        return [b.name for b in await store.public_boards(prefix, bands)]

    assert await names() == ["Berlin", "Potsdam", "Hamburg", "Nowhere"]
    assert await names("jo62") == ["Berlin", "Potsdam"]
    assert await names("JO62QM") == ["Berlin"]
    assert await names("J") == ["Berlin", "Potsdam", "Hamburg"]
    assert await names("JO5") == ["Hamburg"]
    assert await names("KO") == []
    assert await names(bands=("20m",)) == ["Berlin", "Hamburg", "Nowhere"]
    assert await names(bands=("2m", "40m")) == ["Berlin", "Potsdam"]
    assert await names("JO62", ("20m",)) == ["Berlin"]
    assert await names(bands=("6m",)) == []
    assert len(await store.public_boards(limit=2)) == 2
    with pytest.raises(BadRequestError, match="locator"):
        await store.public_boards("JO%")
    with pytest.raises(BadRequestError, match="bands"):
        await store.public_boards(bands=("20 m",))


async def test_public_board_filters_match_a_model_on_random_stations(store: Store) -> None:
    """Property test against a plain Python model: random stations, random queries (seeded,
    bounded), the store's answer equals the model's."""
    rng = random.Random(20261201)
    owner = await _alice(store)
    stations: list[Board] = []
    for index in range(40):
        board = await store.create_board(owner.id, f"Station {index}", "h")
        locator = rng.choice([None, _random_locator(rng, rng.choice([2, 4, 6, 8]))])
        bands = rng.sample(BANDS, rng.randrange(0, 4))
        stations.append(
            await store.update_board(
                board.id, locator=locator, bands=bands, public=rng.random() < 0.8
            )
        )
    for _ in range(60):
        prefix = rng.choice([None, _random_locator(rng, rng.randrange(1, 5))])
        if prefix is not None and rng.random() < 0.5:
            located = [s.locator for s in stations if s.locator]
            prefix = rng.choice(located)[: rng.randrange(1, 7)].swapcase()
        wanted = rng.sample(BANDS, rng.randrange(0, 3))
        expected = [
            s.id
            for s in stations
            if s.public
            and (prefix is None or (s.locator or "").upper().startswith(prefix.upper()))
            and (not wanted or set(wanted) & set(s.bands))
        ]
        got = [b.id for b in await store.public_boards(prefix, wanted, limit=1000)]
        assert got == expected, (prefix, wanted)


def _random_locator(rng: random.Random, length: int) -> str:
    pools = ["ABCDEFGHIJKLMNOPQR", "0123456789", "abcdefghijklmnopqrstuvwx", "0123456789"]
    return "".join(rng.choice(pools[i // 2]) for i in range(length))


# -- blocks -----------------------------------------------------------------------------------


async def test_a_blocked_user_loses_access_and_cannot_book(store: Store) -> None:
    owner, guest, board = await _station(store)
    past = await store.create_booking(board.id, guest.id, T0 - 3 * HOUR, T0 - 2 * HOUR)
    ongoing = await store.create_booking(board.id, guest.id, T0 - HOUR, T0 + HOUR)
    future = await store.create_booking(board.id, guest.id, T0 + 2 * HOUR, T0 + 3 * HOUR)
    await store.set_grant(board.id, guest.id, "listen")
    await store.block_user(board.id, guest.id, when=T0)
    await store.block_user(board.id, guest.id, when=T0)  # idempotent
    assert await store.is_blocked(board.id, guest.id)
    assert await store.blocked_users(board.id) == [guest.id]
    assert await store.boards_blocking(guest.id) == [board.id]
    assert await store.grant_of(board.id, guest.id) is None
    assert (await store.get_booking(past.id)) == past  # history stays
    for booking in (ongoing, future):
        cancelled = await store.get_booking(booking.id)
        assert cancelled is not None and cancelled.cancelled_at == T0
    with pytest.raises(ForbiddenError, match="blocked"):
        await store.create_booking(board.id, guest.id, T0 + 5 * HOUR, T0 + 6 * HOUR)
    with pytest.raises(ConflictError, match="blocked"):
        await store.set_grant(board.id, guest.id, "listen")
    with pytest.raises(BadRequestError, match="owner"):
        await store.block_user(board.id, owner.id)
    with pytest.raises(NotFoundError):
        await store.block_user(str(uuid.uuid4()), guest.id)
    with pytest.raises(NotFoundError):
        await store.block_user(board.id, str(uuid.uuid4()))
    await store.unblock_user(board.id, guest.id)
    await store.unblock_user(board.id, guest.id)  # no error
    assert not await store.is_blocked(board.id, guest.id)
    await store.create_booking(board.id, guest.id, T0 + 5 * HOUR, T0 + 6 * HOUR)
    await store.set_grant(board.id, guest.id, "listen")


# -- refresh tokens ---------------------------------------------------------------------------


async def test_refresh_tokens_rotate_within_their_family(store: Store) -> None:
    alice = await _alice(store)
    first = await store.create_refresh_token(alice.id, _sha("t1"), T0 + HOUR, when=T0)
    assert first.family_id == first.id and first.parent_id is None
    assert await store.get_refresh_token(_sha("t1")) == first
    assert await store.get_refresh_token(_sha("nope")) is None
    second = await store.rotate_refresh_token(
        _sha("t1"), _sha("t2"), T0 + 2 * HOUR, when=T0 + timedelta(minutes=5)
    )
    assert (second.family_id, second.parent_id, second.user_id) == (first.id, first.id, alice.id)
    old = await store.get_refresh_token(_sha("t1"))
    assert old is not None and old.revoked_reason == "rotated"
    third = await store.rotate_refresh_token(
        _sha("t2"), _sha("t3"), T0 + 3 * HOUR, when=T0 + timedelta(minutes=10)
    )
    assert third.parent_id == second.id and third.family_id == first.id
    # a second sign-in is another family
    other = await store.create_refresh_token(
        alice.id, _sha("o1"), T0 + HOUR, when=T0 + timedelta(minutes=1)
    )
    assert other.family_id != first.family_id
    tokens = await store.refresh_tokens_of(alice.id)
    assert [t.id for t in tokens] == [first.id, other.id, second.id, third.id]
    assert tokens[3] == third and tokens[0].revoked_at == T0 + timedelta(minutes=5)
    with pytest.raises(ConflictError):
        await store.create_refresh_token(alice.id, _sha("t3"), T0 + HOUR)
    with pytest.raises(NotFoundError):
        await store.create_refresh_token(str(uuid.uuid4()), _sha("x"), T0 + HOUR)


async def test_a_reused_refresh_token_revokes_its_whole_family(store: Store) -> None:
    alice = await _alice(store)
    await store.create_refresh_token(alice.id, _sha("t1"), T0 + HOUR, when=T0)
    other = await store.create_refresh_token(alice.id, _sha("o1"), T0 + HOUR, when=T0)
    current = await store.rotate_refresh_token(_sha("t1"), _sha("t2"), T0 + HOUR, when=T0)
    # t1 again: a copy is being used; t2 (the live one) dies with it, the other sign-in lives
    with pytest.raises(AuthError, match="already used") as info:
        await store.rotate_refresh_token(_sha("t1"), _sha("t9"), T0 + HOUR, when=T0)
    assert info.value.http_status == 401
    revoked = await store.get_refresh_token(_sha("t2"))
    assert revoked is not None and revoked.revoked_reason == "reused"
    assert revoked.id == current.id
    with pytest.raises(AuthError, match="revoked"):
        await store.rotate_refresh_token(_sha("t2"), _sha("t9"), T0 + HOUR, when=T0)
    assert await store.get_refresh_token(_sha("t9")) is None
    live = await store.get_refresh_token(_sha("o1"))
    assert live is not None and live.revoked_at is None and live.id == other.id


async def test_refresh_tokens_expire_and_are_revoked_by_sign_out(store: Store) -> None:
    alice = await _alice(store)
    bob = await _bob(store)
    await store.create_refresh_token(alice.id, _sha("a1"), T0 + HOUR, when=T0)
    with pytest.raises(AuthError, match="expired"):
        await store.rotate_refresh_token(_sha("a1"), _sha("a2"), T0 + 2 * HOUR, when=T0 + HOUR)
    with pytest.raises(AuthError, match="unknown"):
        await store.rotate_refresh_token(_sha("zz"), _sha("a2"), T0 + 2 * HOUR, when=T0)
    family = await store.create_refresh_token(alice.id, _sha("b1"), T0 + HOUR, when=T0)
    await store.rotate_refresh_token(_sha("b1"), _sha("b2"), T0 + HOUR, when=T0)
    assert await store.revoke_refresh_family(family.family_id, when=T0) == 1  # b2 was live
    assert await store.revoke_refresh_family(family.family_id, when=T0) == 0
    with pytest.raises(AuthError, match="revoked"):
        await store.rotate_refresh_token(_sha("b2"), _sha("b3"), T0 + HOUR, when=T0)
    signed_out = await store.get_refresh_token(_sha("b2"))
    assert signed_out is not None and signed_out.revoked_reason == "signed_out"
    await store.create_refresh_token(alice.id, _sha("c1"), T0 + HOUR, when=T0)
    await store.create_refresh_token(alice.id, _sha("d1"), T0 + HOUR, when=T0)
    await store.create_refresh_token(bob.id, _sha("e1"), T0 + HOUR, when=T0)
    # a1 expired but was never revoked: it counts as live for revocation
    assert await store.revoke_refresh_tokens_of(alice.id, "password_changed", when=T0) == 3
    bobs = await store.get_refresh_token(_sha("e1"))
    assert bobs is not None and bobs.revoked_at is None
    assert await store.purge_refresh_tokens(T0 + HOUR + timedelta(seconds=1)) == 6
    assert await store.refresh_tokens_of(alice.id) == []


async def test_one_refresh_token_used_twice_at_once_rotates_once(database: Database) -> None:
    async with database.new_store() as setup:
        alice = await _alice(setup)
        await setup.create_refresh_token(alice.id, _sha("t1"), T0 + HOUR, when=T0)
    stores = [database.new_store() for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:

        async def use(index: int) -> str:
            try:
                await stores[index].rotate_refresh_token(
                    _sha("t1"), _sha(f"n{index}"), T0 + HOUR, when=T0
                )
            except AuthError:
                return "refused"
            return "rotated"

        outcomes = await asyncio.wait_for(asyncio.gather(*(use(i) for i in range(4))), 60)
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert outcomes.count("rotated") == 1
    async with database.new_store() as store:
        # the reuse revoked the family: the token the winner got is dead too
        assert all(t.revoked_at is not None for t in await store.refresh_tokens_of(alice.id))


# -- subscriptions ----------------------------------------------------------------------------


async def test_subscriptions_are_set_and_replaced(store: Store) -> None:
    alice = await _alice(store)
    assert await store.get_subscription(alice.id) is None
    first = await store.set_subscription(alice.id, "plus", "active", T0 + 30 * 24 * HOUR, when=T0)
    assert await store.get_subscription(alice.id) == first
    replaced = await store.set_subscription(alice.id, "plus", "cancelled", None, when=T0 + HOUR)
    assert await store.get_subscription(alice.id) == replaced
    assert replaced.expires_at is None and replaced.updated_at == T0 + HOUR
    with pytest.raises(BadRequestError, match="status"):
        await store.set_subscription(alice.id, "plus", "paused", None)
    with pytest.raises(BadRequestError, match="tier"):
        await store.set_subscription(alice.id, "Gold Plus!", "active", None)
    with pytest.raises(NotFoundError):
        await store.set_subscription(str(uuid.uuid4()), "plus", "active", None)


# -- export and deletion ----------------------------------------------------------------------


async def _everything(store: Store) -> tuple[User, User, Board, Board]:
    """Alice owns a board Bob books and transmits on, and books Bob's; every table has rows
    about both."""
    alice = await _alice(store)
    bob = await _bob(store)
    mine = await store.create_board(alice.id, "Alice's", "alice-board-secret-hash")
    mine = await store.update_board(mine.id, locator="JO62qm", bands=["20m"], public=True)
    bobs = await store.create_board(bob.id, "Bob's", "bob-board-secret-hash")
    carol = await store.create_user("carol@example.org", "h", "DL5CAR")
    await store.set_grant(mine.id, bob.id, "transmit")
    await store.set_grant(bobs.id, alice.id, "listen")
    await store.block_user(mine.id, carol.id)
    await store.block_user(bobs.id, carol.id)
    await store.create_booking(mine.id, bob.id, T0, T0 + HOUR)
    await store.create_booking(bobs.id, alice.id, T0, T0 + HOUR)
    await store.create_refresh_token(alice.id, _sha("alice-token"), T0 + HOUR, when=T0)
    await store.create_refresh_token(bob.id, _sha("bob-token"), T0 + HOUR, when=T0)
    await store.set_subscription(alice.id, "plus", "active", None, when=T0)
    await store.start_tx(mine.id, bob.id, "W1AW", T0)
    await store.start_tx(bobs.id, alice.id, "DL1ABC", T0)
    return alice, bob, mine, bobs


async def test_the_export_holds_everything_about_the_user(store: Store) -> None:
    alice, bob, mine, bobs = await _everything(store)
    export = await store.export_user(alice.id)
    text = json.dumps(export)  # JSON-ready as it is
    for secret in ("scrypt$hash-a", "alice-board-secret-hash", _sha("alice-token")):
        assert secret not in text
    assert export["user"] == {
        "id": alice.id,
        "email": "alice@example.org",
        "callsign": "DL1ABC",
        "created_at": alice.created_at.isoformat(),
        "password": "stored only as a scrypt hash, not exported",
    }
    assert export["subscription"] == {
        "tier": "plus",
        "status": "active",
        "expires_at": None,
        "updated_at": T0.isoformat(),
    }
    boards = export["boards"]
    assert isinstance(boards, list) and len(boards) == 1
    board = boards[0]
    assert board["id"] == mine.id and board["locator"] == "JO62qm" and board["bands"] == ["20m"]
    assert board["grants"] == [{"user_id": bob.id, "right": "transmit"}]
    assert len(board["blocked_user_ids"]) == 1
    assert [b["user_id"] for b in board["bookings"]] == [bob.id]
    assert [t["callsign"] for t in board["tx_log"]] == ["W1AW"]
    assert export["granted_to_me"] == [
        {"board_id": bobs.id, "board_name": "Bob's", "right": "listen"}
    ]
    assert export["blocked_from_board_ids"] == []
    bookings = export["bookings"]
    assert isinstance(bookings, list) and [b["board_id"] for b in bookings] == [bobs.id]
    assert bookings[0]["starts_at"] == T0.isoformat()
    tokens = export["refresh_tokens"]
    assert isinstance(tokens, list) and len(tokens) == 1 and "token_hash" not in tokens[0]
    transmissions = export["transmissions"]
    assert isinstance(transmissions, list)
    assert [(t["board_id"], t["callsign"]) for t in transmissions] == [(bobs.id, "DL1ABC")]
    with pytest.raises(NotFoundError):
        await store.export_user(str(uuid.uuid4()))


async def test_deleting_a_user_removes_everything_of_theirs(database: Database) -> None:
    async with database.new_store() as store:
        alice, bob, mine, bobs = await _everything(store)
        await store.delete_user(alice.id)
        assert await store.get_user(alice.id) is None
        assert await store.get_board(mine.id) is None
        # Bob keeps his board; what Alice had there is gone, the rest of his stays
        assert await store.grantees(bobs.id) == []
        assert await store.bookings_of_board(bobs.id, include_cancelled=True) == []
        assert len(await store.blocked_users(bobs.id)) == 1
        assert await store.bookings_of_user(bob.id) == []  # his booking was on her board
        assert len(await store.refresh_tokens_of(bob.id)) == 1
        with pytest.raises(NotFoundError):
            await store.export_user(alice.id)
    for table, column in USER_TABLES.items():
        assert await database.count(table, f"{column} = '{alice.id}'") == 0, table
    for table in ("grants", "blocks", "bookings", "tx_sessions"):
        assert await database.count(table, f"board_id = '{mine.id}'") == 0, table
    assert await database.count("subscriptions", "1 = 1") == 0
    # her transmission on Bob's station stays in his TX log, unlinked from any account
    assert await database.rows(
        f"SELECT callsign, user_id FROM tx_sessions WHERE board_id = '{bobs.id}'"
    ) == [("DL1ABC", None)]


# -- `radiocore migrate` ----------------------------------------------------------------------


async def test_radiocore_migrate_brings_a_database_up_to_date(
    empty_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    from radiocore.cli import main

    argv = ["migrate", "--data-dir", str(empty_database.data_dir)]
    argv += ["--database-url", empty_database.url]
    assert await asyncio.to_thread(main, argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["schema_version"] == LATEST_VERSION
    assert first["applied"] == [m.version for m in MIGRATIONS]
    assert await asyncio.to_thread(main, argv) == 0
    assert json.loads(capsys.readouterr().out)["applied"] == []  # nothing left to do
    async with empty_database.new_store() as store:
        assert store.applied_migrations == ()


async def test_radiocore_migrate_keeps_passwords_off_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from radiocore.cli import main

    argv = ["migrate", "--data-dir", str(tmp_path), "--database-url"]
    code = await asyncio.to_thread(main, [*argv, "postgresql://rc:pw-Secret9@127.0.0.1:1/rc"])
    assert code == 2
    err = capsys.readouterr().err
    assert "must not carry a password" in err and "pw-Secret9" not in err
    assert await asyncio.to_thread(main, [*argv, "mysql://db/rc"]) == 2
    assert "not supported" in capsys.readouterr().err


async def test_a_sqlite_read_the_file_is_too_busy_for_is_made_on_the_writers_thread(
    tmp_path: Path,
) -> None:
    """Reads run in the event loop on a connection that never waits. Should SQLite answer it
    "busy" (a WAL recovery under way: the one case a WAL reader waits for; not reproducible on
    demand, so the reader's answer is replaced here by the error SQLite gives), the read is
    made on aiosqlite's thread, which waits up to the busy timeout, and answers all the same."""
    path = tmp_path / "rc.sqlite3"
    async with SqliteStore(path) as store:
        user = await store.create_user("busy@example.org", "scrypt$b", "DL1BSY")
        reader = store._reader
        assert reader is not None
        asked: list[str] = []

        class BusyReader:
            def execute(self, sql: str, params: tuple[Any, ...]) -> Any:
                asked.append(sql)
                busy = sqlite3.OperationalError("database is locked")
                busy.sqlite_errorcode = sqlite3.SQLITE_BUSY | (1 << 8)  # SQLITE_BUSY_RECOVERY
                raise busy

        store._reader = BusyReader()  # type: ignore[assignment]
        try:
            got = await store.get_user(user.id)
        finally:
            store._reader = reader
        assert len(asked) == 1 and "FROM users" in asked[0]
        assert got is not None and got.callsign == "DL1BSY"

        # another error is not retried: it is the caller's
        class BrokenReader:
            def execute(self, sql: str, params: tuple[Any, ...]) -> Any:
                raise sqlite3.OperationalError("no such table: users")

        store._reader = BrokenReader()  # type: ignore[assignment]
        try:
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                await store.get_user(user.id)
        finally:
            store._reader = reader
        # the reader reads what the writer's connection committed, at once
        await store.delete_user(user.id)
        assert await store.get_user(user.id) is None
