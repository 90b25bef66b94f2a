"""`SqliteStore`: the store in one SQLite file (aiosqlite, WAL), the embedded default."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiosqlite

from signaling.errors import BadRequestError, ConflictError, NotFoundError, SignalingError
from signaling.store.interface import (
    RIGHTS,
    Board,
    Right,
    Store,
    TxSession,
    User,
    canonical_board_id,
    normalize_email,
)

logger = logging.getLogger(__name__)

#: The database file in `data_dir` when no `database_url` is set.
SQLITE_FILE_NAME: Final = "radiocore.sqlite3"

SCHEMA_VERSION: Final = 2
_SCHEMA: Final = """
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
_USER_COLUMNS: Final = "id, email, password_hash, callsign, created_at"
_BOARD_COLUMNS: Final = "id, owner_id, name, secret_hash, location, public, last_seen, created_at"


class SqliteStore(Store):
    """The store in one SQLite file (WAL mode, foreign keys on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: every statement commits on its own; each method is one statement
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA busy_timeout = 5000")
            async with db.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                raise SignalingError(f"SQLite database {self.path} cannot use WAL mode")
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise SignalingError(
                    f"SQLite database {self.path} has schema version {version}, newer than "
                    f"this server's {SCHEMA_VERSION}"
                )
            await db.executescript(_SCHEMA)
            # PRAGMA takes no parameters; the value is our own integer constant
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            await db.close()
            raise
        self._db = db
        logger.info("store: SQLite database %s open", self.path)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise SignalingError("the store is not open")
        return self._db

    # -- users --------------------------------------------------------------------------------

    async def create_user(self, email: str, password_hash: str, callsign: str) -> User:
        user = User(
            id=str(uuid.uuid4()),
            email=normalize_email(email),
            callsign=callsign,
            created_at=_now(),
            password_hash=password_hash,
        )
        try:
            await self._conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (user.id, user.email, user.password_hash, user.callsign, _iso(user.created_at)),
            )
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise ConflictError("a user with this email is already registered") from None
            raise
        return user

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user("id = ?", user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        return await self._one_user("email = ?", normalize_email(email))

    async def _one_user(self, condition: str, value: str) -> User | None:
        sql = f"SELECT {_USER_COLUMNS} FROM users WHERE {condition}"
        async with self._conn.execute(sql, (value,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return User(
            id=row["id"],
            email=row["email"],
            callsign=row["callsign"],
            created_at=_from_iso(row["created_at"]),
            password_hash=row["password_hash"],
        )

    async def delete_user(self, user_id: str) -> None:
        async with self._conn.execute("DELETE FROM users WHERE id = ?", (user_id,)) as cursor:
            deleted = cursor.rowcount
        if deleted == 0:
            raise NotFoundError("no such user")

    # -- boards -------------------------------------------------------------------------------

    async def create_board(
        self, owner_id: str, name: str, secret_hash: str, board_id: str | None = None
    ) -> Board:
        board = Board(
            id=canonical_board_id(board_id) if board_id is not None else str(uuid.uuid4()),
            owner_id=owner_id,
            name=name,
            created_at=_now(),
            secret_hash=secret_hash,
        )
        try:
            await self._conn.execute(
                f"INSERT INTO boards ({_BOARD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    board.id,
                    board.owner_id,
                    board.name,
                    board.secret_hash,
                    board.location,
                    int(board.public),
                    None,
                    _iso(board.created_at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise ConflictError("this board is already paired") from None
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise
        return board

    async def get_board(self, board_id: str) -> Board | None:
        sql = f"SELECT {_BOARD_COLUMNS} FROM boards WHERE id = ?"
        async with self._conn.execute(sql, (board_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _board(row)

    async def boards_of(self, owner_id: str) -> list[Board]:
        sql = f"SELECT {_BOARD_COLUMNS} FROM boards WHERE owner_id = ? ORDER BY created_at, id"
        async with self._conn.execute(sql, (owner_id,)) as cursor:
            rows = await cursor.fetchall()
        return [_board(row) for row in rows]

    async def touch_board(self, board_id: str, when: datetime) -> None:
        sql = "UPDATE boards SET last_seen = ? WHERE id = ?"
        async with self._conn.execute(sql, (_iso(when), board_id)) as cursor:
            updated = cursor.rowcount
        if updated == 0:
            raise NotFoundError("no such board")

    # -- grants and the TX audit log ------------------------------------------------------

    async def set_grant(self, board_id: str, user_id: str, right: Right | None) -> None:
        if right is None:
            await self._conn.execute(
                "DELETE FROM grants WHERE board_id = ? AND user_id = ?", (board_id, user_id)
            )
            return
        if right not in RIGHTS:
            raise BadRequestError(f"right must be one of {', '.join(RIGHTS)}")
        try:
            await self._conn.execute(
                "INSERT INTO grants (board_id, user_id, right) VALUES (?, ?, ?) "
                "ON CONFLICT (board_id, user_id) DO UPDATE SET right = excluded.right",
                (board_id, user_id, right),
            )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such board or user") from None
            raise

    async def grant_of(self, board_id: str, user_id: str) -> Right | None:
        sql = "SELECT right FROM grants WHERE board_id = ? AND user_id = ?"
        async with self._conn.execute(sql, (board_id, user_id)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _right(row["right"])

    async def boards_granted_to(self, user_id: str) -> list[tuple[Board, Right]]:
        columns = ", ".join(f"b.{c.strip()}" for c in _BOARD_COLUMNS.split(","))
        sql = (
            f"SELECT {columns}, g.right AS right FROM grants g JOIN boards b ON b.id = g.board_id "
            "WHERE g.user_id = ? ORDER BY b.created_at, b.id"
        )
        async with self._conn.execute(sql, (user_id,)) as cursor:
            rows = await cursor.fetchall()
        return [(_board(row), _right(row["right"])) for row in rows]

    async def grantees(self, board_id: str) -> list[str]:
        sql = "SELECT user_id FROM grants WHERE board_id = ? ORDER BY user_id"
        async with self._conn.execute(sql, (board_id,)) as cursor:
            rows = await cursor.fetchall()
        return [str(row["user_id"]) for row in rows]

    async def start_tx(
        self, board_id: str, user_id: str | None, callsign: str, started_at: datetime
    ) -> int:
        sql = (
            "INSERT INTO tx_sessions (board_id, user_id, callsign, started_at) VALUES (?, ?, ?, ?)"
        )
        async with self._conn.execute(
            sql, (board_id, user_id, callsign, _iso(started_at))
        ) as cursor:
            tx_id = cursor.lastrowid
        if tx_id is None:
            raise SignalingError("the TX session was not recorded")
        return int(tx_id)

    async def end_tx(self, tx_id: int, ended_at: datetime, reason: str) -> None:
        sql = "UPDATE tx_sessions SET ended_at = ?, reason = ? WHERE id = ? AND ended_at IS NULL"
        await self._conn.execute(sql, (_iso(ended_at), reason, tx_id))

    async def close_open_tx(self, ended_at: datetime, reason: str) -> int:
        sql = "UPDATE tx_sessions SET ended_at = ?, reason = ? WHERE ended_at IS NULL"
        async with self._conn.execute(sql, (_iso(ended_at), reason)) as cursor:
            return int(cursor.rowcount)

    async def settle_open_tx(self, board_id: str, reason: str, released_at: datetime) -> int:
        sql = (
            "UPDATE tx_sessions SET ended_at = ? WHERE board_id = ? AND reason = ? "
            "AND started_at <= ? AND ended_at > ?"
        )
        when = _iso(released_at)
        async with self._conn.execute(sql, (when, board_id, reason, when, when)) as cursor:
            return int(cursor.rowcount)

    async def tx_sessions(self, board_id: str, limit: int = 100) -> list[TxSession]:
        sql = (
            "SELECT id, board_id, user_id, callsign, started_at, ended_at, reason "
            "FROM tx_sessions WHERE board_id = ? ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        async with self._conn.execute(sql, (board_id, max(1, min(limit, 1000)))) as cursor:
            rows = await cursor.fetchall()
        return [
            TxSession(
                id=int(row["id"]),
                board_id=row["board_id"],
                user_id=row["user_id"],
                callsign=row["callsign"],
                started_at=_from_iso(row["started_at"]),
                ended_at=None if row["ended_at"] is None else _from_iso(row["ended_at"]),
                reason=row["reason"],
            )
            for row in rows
        ]


def _right(value: str) -> Right:
    if value == "listen":
        return "listen"
    if value == "transmit":
        return "transmit"
    raise SignalingError(f"unknown right {value!r} in the store")


def _board(row: aiosqlite.Row) -> Board:
    last_seen = row["last_seen"]
    return Board(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        created_at=_from_iso(row["created_at"]),
        secret_hash=row["secret_hash"],
        location=row["location"],
        public=bool(row["public"]),
        last_seen=None if last_seen is None else _from_iso(last_seen),
    )


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    return exc.sqlite_errorname in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    """`when` as ISO 8601 in UTC, microseconds always shown so text order is time order."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)
