"""`SqliteStore`: the store in one SQLite file (aiosqlite, WAL), the embedded default.

Two connections per store. Writes and transactions go through aiosqlite's thread on one; an
`asyncio.Lock` keeps the store's own tasks from interleaving statements inside another task's
transaction there. Reads run in the event loop on the other, read-only one (WAL: they see the
last commit and never wait for a writer; on the rare "busy" they go to aiosqlite's thread and
wait there), so a read does not wait for turns of a busy loop. Several processes (or stores)
on one file are serialised by SQLite itself: every write that checks something first runs in a
`BEGIN IMMEDIATE` transaction (the write lock is taken before the first read), and the overlap
of bookings is refused by a trigger inside the insert (`signaling.store.migrations`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import aiosqlite

from signaling.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    SignalingError,
)
from signaling.store.interface import (
    RIGHTS,
    UNSET,
    Board,
    Booking,
    RefreshToken,
    Right,
    Store,
    Subscription,
    TxSession,
    Unset,
    User,
    booking_price,
    canonical_board_name,
    canonical_price,
    check_hash,
    check_subscription,
    check_window,
    normalize_email,
)
from signaling.store.migrations import (
    LATEST_VERSION,
    SCHEMA_VERSION_TABLE_SQLITE,
    pending,
    sqlite_statements,
)
from signaling.validation import canonical_bands, canonical_locator, canonical_locator_prefix

logger = logging.getLogger(__name__)

#: The database file in `data_dir` when no `database_url` is set.
SQLITE_FILE_NAME: Final = "radiocore.sqlite3"

#: The schema version this code brings a database to (mirrored in `PRAGMA user_version`).
SCHEMA_VERSION: Final = LATEST_VERSION
#: How long a write waits for another process's write lock, milliseconds.
BUSY_TIMEOUT_MS: Final = 10_000
#: Tries at switching to WAL mode (spread over the busy timeout; see `_enable_wal`).
WAL_ATTEMPTS: Final = 200

_USER_COLUMNS: Final = "id, email, password_hash, callsign, created_at"
_BOARD_COLUMN_NAMES: Final = (
    "id",
    "owner_id",
    "name",
    "secret_hash",
    "locator",
    "bands",
    "public",
    "price_eur",
    "paired_at",
    "last_seen",
    "created_at",
)
_BOARD_COLUMNS: Final = ", ".join(_BOARD_COLUMN_NAMES)
_BOARD_COLUMNS_B: Final = ", ".join(f"b.{name}" for name in _BOARD_COLUMN_NAMES)
_BOOKING_COLUMNS: Final = (
    "id, board_id, user_id, starts_at, ends_at, price_eur, created_at, cancelled_at"
)
_TOKEN_COLUMNS: Final = (
    "id, user_id, family_id, parent_id, created_at, expires_at, revoked_at, revoked_reason"
)
_TX_COLUMNS: Final = "id, board_id, user_id, callsign, started_at, ended_at, reason"
_OVERLAP_MESSAGE: Final = "the station is already booked for part of that time"


class SqliteStore(Store):
    """The store in one SQLite file (WAL mode, foreign keys on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        #: Reads (`_all`, `_one`) run on this connection, in the event loop: a read of a few
        #: rows takes tens of microseconds, while a trip to aiosqlite's thread waits for a turn
        #: of the loop — long when the loop is busy (50 operators joining at once: access
        #: checks queued behind each other for up to 0.7 s, measured). Writes and transactions
        #: stay on aiosqlite's thread (a commit may wait for the disk).
        self._reader: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def open(self) -> None:
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: a statement outside BEGIN … COMMIT commits on its own
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await self._enable_wal(db)
            self.applied_migrations = await self._migrate(db)
            await db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        self._db = db
        self._reader = _open_reader(self.path)
        if self.applied_migrations:
            logger.info(
                "store: SQLite database %s migrated to schema version %d (applied %s)",
                self.path,
                SCHEMA_VERSION,
                ", ".join(map(str, self.applied_migrations)),
            )
        logger.info("store: SQLite database %s open", self.path)

    async def _enable_wal(self, db: aiosqlite.Connection) -> None:
        """WAL mode. Switching a new file to it needs the file to itself, and SQLite answers
        "locked" at once (not after the busy timeout) while another connection is switching
        it too: ask again, for as long as the busy timeout."""
        for attempt in range(WAL_ATTEMPTS):
            try:
                async with db.execute("PRAGMA journal_mode = WAL") as cursor:
                    row = await cursor.fetchone()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(BUSY_TIMEOUT_MS / 1000 / WAL_ATTEMPTS)
        if row is None or str(row[0]).lower() != "wal":
            raise SignalingError(f"SQLite database {self.path} cannot use WAL mode")

    async def _migrate(self, db: aiosqlite.Connection) -> tuple[int, ...]:
        """Apply the migrations the file lacks, one transaction each; their versions."""
        # A table rebuild (DROP + RENAME) must not cascade: foreign keys are off meanwhile
        # (the pragma is a no-op inside a transaction) and checked before each commit.
        await db.execute("PRAGMA foreign_keys = OFF")
        applied: list[int] = []
        for _ in range(len(pending(0, "")) + 1):
            await db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait
            try:
                await db.execute(SCHEMA_VERSION_TABLE_SQLITE)
                todo = pending(await _version(db), f"SQLite database {self.path}")
                if not todo:
                    await db.execute("COMMIT")
                    break
                migration = todo[0]
                for statement in sqlite_statements(migration.sqlite):
                    await db.execute(statement)
                async with db.execute("PRAGMA foreign_key_check") as cursor:
                    broken = list(await cursor.fetchall())
                if broken:
                    raise SignalingError(
                        f"migration {migration.version} of {self.path} left "
                        f"{len(broken)} broken foreign key(s); nothing was changed"
                    )
                await db.execute(
                    "INSERT INTO schema_version (version, description, applied_at) "
                    "VALUES (?, ?, ?)",
                    (migration.version, migration.description, _iso(_now())),
                )
                # PRAGMA takes no parameters; the value is our own integer
                await db.execute(f"PRAGMA user_version = {int(migration.version)}")
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
            applied.append(migration.version)
        return tuple(applied)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def schema_version(self) -> int:
        async with self._lock:
            return await _version(self._conn)

    async def ping(self) -> None:
        await self._one("SELECT 1")

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise SignalingError("the store is not open")
        return self._db

    # -- statement helpers: reads on the reader; writes hold the lock on aiosqlite's thread --

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """A read: on the reader connection, in the event loop, when SQLite can answer at once
        (WAL: readers do not wait for writers); else on aiosqlite's thread."""
        reader = self._reader
        if reader is not None:
            try:
                rows: list[aiosqlite.Row] = reader.execute(sql, tuple(params)).fetchall()
                return rows
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                # the file is held in a way even a WAL reader waits for (a recovery, another
                # process's exclusive lock): wait off the loop, for up to the busy timeout
        # one trip to aiosqlite's thread (execute and fetch there), not three (execute, fetch,
        # close the cursor): each trip waits for a turn of the event loop
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        async with self._lock, self._conn.execute(sql, tuple(params)) as cursor:
            return int(cursor.rowcount)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT` (ROLLBACK on any exception) on the locked connection."""
        async with self._lock:
            db = self._conn
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

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
            await self._write(
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
        row = await self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE {condition}", (value,))
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
        if await self._write("DELETE FROM users WHERE id = ?", (user_id,)) == 0:
            raise NotFoundError("no such user")

    # -- boards -------------------------------------------------------------------------------

    async def _insert_board(self, board: Board, pairing_code_hash: str | None) -> None:
        try:
            await self._write(
                "INSERT INTO boards (id, owner_id, name, secret_hash, pairing_code_hash, "
                "paired_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    board.id,
                    board.owner_id,
                    board.name,
                    board.secret_hash,
                    pairing_code_hash,
                    _iso_or_none(board.paired_at),
                    _iso(board.created_at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise ConflictError("this board is already paired") from None
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise

    async def pair_board(
        self,
        board_id: str,
        user_id: str,
        pairing_code_hash: str,
        name: str,
        when: datetime | None = None,
    ) -> Board:
        check_hash(pairing_code_hash, "the pairing code")
        name = canonical_board_name(name)
        paired_at = _iso(when or _now())
        try:
            async with self._transaction() as db:
                async with db.execute(
                    "UPDATE boards SET owner_id = ?, name = ?, paired_at = ?, "
                    "pairing_code_hash = NULL "
                    "WHERE id = ? AND owner_id IS NULL AND pairing_code_hash = ?",
                    (user_id, name, paired_at, board_id, pairing_code_hash),
                ) as cursor:
                    paired = cursor.rowcount == 1
                if not paired:
                    async with db.execute(
                        "SELECT owner_id FROM boards WHERE id = ?", (board_id,)
                    ) as cursor:
                        row = await cursor.fetchone()
                    if row is not None and row["owner_id"] is not None:
                        raise ConflictError(
                            "this board is already paired; its owner must release it first"
                        )
                    raise ForbiddenError("unknown board or wrong pairing code")
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise
        return await self._board_or_missing(board_id)

    async def release_board(
        self, board_id: str, owner_id: str, pairing_code_hash: str, secret_hash: str
    ) -> Board:
        check_hash(pairing_code_hash, "the pairing code")
        check_hash(secret_hash, "the board secret")
        async with self._transaction() as db:
            async with db.execute(
                "UPDATE boards SET owner_id = NULL, paired_at = NULL, name = '', "
                "locator = NULL, bands = '[]', public = 0, price_eur = NULL, "
                "pairing_code_hash = ?, secret_hash = ? WHERE id = ? AND owner_id = ?",
                (pairing_code_hash, secret_hash, board_id, owner_id),
            ) as cursor:
                if cursor.rowcount != 1:
                    raise NotFoundError("no such board")
            for table in ("grants", "blocks", "bookings", "tx_sessions"):
                await db.execute(f"DELETE FROM {table} WHERE board_id = ?", (board_id,))
        return await self._board_or_missing(board_id)

    async def set_board_secret(
        self, board_id: str, secret_hash: str, *, owner_id: str | None = None
    ) -> Board:
        check_hash(secret_hash, "the board secret")
        sql = "UPDATE boards SET secret_hash = ? WHERE id = ?"
        params: tuple[str, ...] = (secret_hash, board_id)
        if owner_id is not None:
            sql += " AND owner_id = ?"
            params += (owner_id,)
        async with self._transaction() as db:
            async with db.execute(sql, params) as cursor:
                if cursor.rowcount != 1:
                    raise NotFoundError("no such board")
            async with db.execute(
                f"SELECT {_BOARD_COLUMNS} FROM boards WHERE id = ?", (board_id,)
            ) as cursor:
                row = await cursor.fetchone()
        assert row is not None  # changed in this transaction
        return _board(row)

    async def update_board(
        self,
        board_id: str,
        *,
        name: str | Unset = UNSET,
        locator: str | Unset | None = UNSET,
        public: bool | Unset = UNSET,
        bands: tuple[str, ...] | list[str] | Unset = UNSET,
        price_eur: Decimal | Unset | None = UNSET,
    ) -> Board:
        changes: dict[str, object] = {}
        if not isinstance(name, Unset):
            changes["name"] = canonical_board_name(name)
        if not isinstance(locator, Unset):
            changes["locator"] = None if locator is None else canonical_locator(locator)
        if not isinstance(public, Unset):
            changes["public"] = int(bool(public))
        if not isinstance(bands, Unset):
            changes["bands"] = json.dumps(list(canonical_bands(bands)))
        if not isinstance(price_eur, Unset):
            price = canonical_price(price_eur)
            changes["price_eur"] = None if price is None else str(price)
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            updated = await self._write(
                f"UPDATE boards SET {assignments} WHERE id = ?", (*changes.values(), board_id)
            )
            if updated == 0:
                raise NotFoundError("no such board")
        return await self._board_or_missing(board_id)

    async def _board_or_missing(self, board_id: str) -> Board:
        board = await self.get_board(board_id)
        if board is None:
            raise NotFoundError("no such board")
        return board

    async def get_board(self, board_id: str) -> Board | None:
        row = await self._one(f"SELECT {_BOARD_COLUMNS} FROM boards WHERE id = ?", (board_id,))
        return None if row is None else _board(row)

    async def board_ids(self) -> list[str]:
        return [str(row[0]) for row in await self._all("SELECT id FROM boards ORDER BY id")]

    async def boards_of(self, owner_id: str) -> list[Board]:
        rows = await self._all(
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE owner_id = ? ORDER BY created_at, id",
            (owner_id,),
        )
        return [_board(row) for row in rows]

    async def public_boards(
        self,
        locator_prefix: str | None = None,
        bands: tuple[str, ...] | list[str] = (),
        limit: int = 100,
    ) -> list[Board]:
        conditions = ["public = 1", "owner_id IS NOT NULL"]
        params: list[object] = []
        if locator_prefix is not None:
            prefix = canonical_locator_prefix(locator_prefix)
            conditions.append("substr(locator, 1, ?) = ?")
            params += [len(prefix), prefix]
        wanted = canonical_bands(bands)
        if wanted:
            conditions.append(
                "EXISTS (SELECT 1 FROM json_each(boards.bands) AS band "
                "WHERE band.value IN (SELECT value FROM json_each(?)))"
            )
            params.append(json.dumps(list(wanted)))
        sql = (
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE {' AND '.join(conditions)} "
            "ORDER BY created_at, id LIMIT ?"
        )
        rows = await self._all(sql, (*params, max(1, min(limit, 1000))))
        return [_board(row) for row in rows]

    async def touch_board(self, board_id: str, when: datetime) -> None:
        sql = "UPDATE boards SET last_seen = ? WHERE id = ?"
        if await self._write(sql, (_iso(when), board_id)) == 0:
            raise NotFoundError("no such board")

    # -- grants and blocks --------------------------------------------------------------------

    async def set_grant(self, board_id: str, user_id: str, right: Right | None) -> None:
        if right is None:
            await self._write(
                "DELETE FROM grants WHERE board_id = ? AND user_id = ?", (board_id, user_id)
            )
            return
        if right not in RIGHTS:
            raise BadRequestError(f"right must be one of {', '.join(RIGHTS)}")
        try:
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT 1 FROM blocks WHERE board_id = ? AND user_id = ?", (board_id, user_id)
                ) as cursor:
                    if await cursor.fetchone() is not None:
                        raise ConflictError("this user is blocked from the board; unblock first")
                await db.execute(
                    "INSERT INTO grants (board_id, user_id, right) VALUES (?, ?, ?) "
                    "ON CONFLICT (board_id, user_id) DO UPDATE SET right = excluded.right",
                    (board_id, user_id, right),
                )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such board or user") from None
            raise

    async def grant_of(self, board_id: str, user_id: str) -> Right | None:
        row = await self._one(
            "SELECT right FROM grants WHERE board_id = ? AND user_id = ?", (board_id, user_id)
        )
        return None if row is None else _right(row["right"])

    async def boards_granted_to(self, user_id: str) -> list[tuple[Board, Right]]:
        rows = await self._all(
            f"SELECT {_BOARD_COLUMNS_B}, g.right AS right FROM grants g "
            "JOIN boards b ON b.id = g.board_id WHERE g.user_id = ? ORDER BY b.created_at, b.id",
            (user_id,),
        )
        return [(_board(row), _right(row["right"])) for row in rows]

    async def grantees(self, board_id: str) -> list[str]:
        rows = await self._all(
            "SELECT user_id FROM grants WHERE board_id = ? ORDER BY user_id", (board_id,)
        )
        return [str(row["user_id"]) for row in rows]

    async def block_user(self, board_id: str, user_id: str, when: datetime | None = None) -> None:
        now = _iso(when or _now())
        try:
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT owner_id FROM boards WHERE id = ?", (board_id,)
                ) as cursor:
                    row = await cursor.fetchone()
                if row is None:
                    raise NotFoundError("no such board")
                if row["owner_id"] == user_id:
                    raise BadRequestError("the owner cannot be blocked from their own board")
                await db.execute(
                    "INSERT INTO blocks (board_id, user_id, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (board_id, user_id) DO NOTHING",
                    (board_id, user_id, now),
                )
                await db.execute(
                    "DELETE FROM grants WHERE board_id = ? AND user_id = ?", (board_id, user_id)
                )
                await db.execute(
                    "UPDATE bookings SET cancelled_at = ? WHERE board_id = ? AND user_id = ? "
                    "AND cancelled_at IS NULL AND ends_at > ?",
                    (now, board_id, user_id, now),
                )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise

    async def unblock_user(self, board_id: str, user_id: str) -> None:
        await self._write(
            "DELETE FROM blocks WHERE board_id = ? AND user_id = ?", (board_id, user_id)
        )

    async def is_blocked(self, board_id: str, user_id: str) -> bool:
        row = await self._one(
            "SELECT 1 FROM blocks WHERE board_id = ? AND user_id = ?", (board_id, user_id)
        )
        return row is not None

    async def blocked_users(self, board_id: str) -> list[str]:
        rows = await self._all(
            "SELECT user_id FROM blocks WHERE board_id = ? ORDER BY user_id", (board_id,)
        )
        return [str(row["user_id"]) for row in rows]

    async def boards_blocking(self, user_id: str) -> list[str]:
        rows = await self._all(
            "SELECT board_id FROM blocks WHERE user_id = ? ORDER BY board_id", (user_id,)
        )
        return [str(row["board_id"]) for row in rows]

    # -- bookings -----------------------------------------------------------------------------

    async def create_booking(
        self, board_id: str, user_id: str, starts_at: datetime, ends_at: datetime
    ) -> Booking:
        check_window(starts_at, ends_at)
        booking_id = str(uuid.uuid4())
        created_at = _now()
        try:
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT price_eur FROM boards WHERE id = ? AND owner_id IS NOT NULL",
                    (board_id,),
                ) as cursor:
                    board = await cursor.fetchone()
                if board is None:
                    raise NotFoundError("no such board")
                async with db.execute(
                    "SELECT 1 FROM blocks WHERE board_id = ? AND user_id = ?", (board_id, user_id)
                ) as cursor:
                    if await cursor.fetchone() is not None:
                        raise ForbiddenError("you are blocked from this station")
                price = booking_price(_price(board["price_eur"]), starts_at, ends_at)
                await db.execute(
                    f"INSERT INTO bookings ({_BOOKING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        booking_id,
                        board_id,
                        user_id,
                        _iso(starts_at),
                        _iso(ends_at),
                        None if price is None else str(price),
                        _iso(created_at),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            if "booking_overlap" in str(exc):
                raise ConflictError(_OVERLAP_MESSAGE) from None
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise
        return Booking(
            id=booking_id,
            board_id=board_id,
            user_id=user_id,
            starts_at=starts_at.astimezone(UTC),
            ends_at=ends_at.astimezone(UTC),
            price_eur=price,
            created_at=created_at,
        )

    async def get_booking(self, booking_id: str) -> Booking | None:
        row = await self._one(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE id = ?", (booking_id,)
        )
        return None if row is None else _booking(row)

    async def cancel_booking(self, booking_id: str, when: datetime | None = None) -> Booking:
        await self._write(
            "UPDATE bookings SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
            (_iso(when or _now()), booking_id),
        )
        booking = await self.get_booking(booking_id)
        if booking is None:
            raise NotFoundError("no such booking")
        return booking

    async def bookings_of_user(
        self, user_id: str, *, include_cancelled: bool = False
    ) -> list[Booking]:
        active = "" if include_cancelled else " AND cancelled_at IS NULL"
        rows = await self._all(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE user_id = ?{active} "
            "ORDER BY starts_at, id",
            (user_id,),
        )
        return [_booking(row) for row in rows]

    async def bookings_of_board(
        self,
        board_id: str,
        *,
        ending_after: datetime | None = None,
        include_cancelled: bool = False,
    ) -> list[Booking]:
        conditions = ["board_id = ?"]
        params: list[object] = [board_id]
        if not include_cancelled:
            conditions.append("cancelled_at IS NULL")
        if ending_after is not None:
            conditions.append("ends_at > ?")
            params.append(_iso(ending_after))
        rows = await self._all(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE {' AND '.join(conditions)} "
            "ORDER BY starts_at, id",
            params,
        )
        return [_booking(row) for row in rows]

    async def booking_at(self, board_id: str, when: datetime) -> Booking | None:
        moment = _iso(when)
        row = await self._one(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE board_id = ? "
            "AND cancelled_at IS NULL AND starts_at <= ? AND ends_at > ?",
            (board_id, moment, moment),
        )
        return None if row is None else _booking(row)

    # -- refresh tokens -----------------------------------------------------------------------

    async def create_refresh_token(
        self, user_id: str, token_hash: str, expires_at: datetime, when: datetime | None = None
    ) -> RefreshToken:
        check_hash(token_hash, "the refresh token")
        token_id = str(uuid.uuid4())
        token = RefreshToken(
            id=token_id,
            user_id=user_id,
            family_id=token_id,
            parent_id=None,
            created_at=(when or _now()).astimezone(UTC),
            expires_at=expires_at.astimezone(UTC),
        )
        async with self._transaction() as db:
            await _insert_token(db, token, token_hash)
        return token

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = await self._one(
            f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
        )
        return None if row is None else _token(row)

    async def rotate_refresh_token(
        self,
        token_hash: str,
        new_token_hash: str,
        expires_at: datetime,
        when: datetime | None = None,
    ) -> RefreshToken:
        check_hash(new_token_hash, "the new refresh token")
        now = (when or _now()).astimezone(UTC)
        refused: AuthError | None = None
        new: RefreshToken | None = None
        async with self._transaction() as db:
            async with db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ) as cursor:
                row = await cursor.fetchone()
            old = None if row is None else _token(row)
            if old is None:
                refused = AuthError("unknown refresh token")
            elif old.revoked_reason == "rotated":
                # used twice: a copy is in someone else's hands; end the whole sign-in
                await db.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?, revoked_reason = 'reused' "
                    "WHERE family_id = ? AND revoked_at IS NULL",
                    (_iso(now), old.family_id),
                )
                refused = AuthError(
                    "this refresh token was already used; the sign-in is revoked everywhere"
                )
            elif old.revoked_at is not None:
                refused = AuthError("this refresh token was revoked")
            elif old.expires_at <= now:
                refused = AuthError("this refresh token has expired")
            else:
                await db.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?, revoked_reason = 'rotated' "
                    "WHERE id = ?",
                    (_iso(now), old.id),
                )
                new = RefreshToken(
                    id=str(uuid.uuid4()),
                    user_id=old.user_id,
                    family_id=old.family_id,
                    parent_id=old.id,
                    created_at=now,
                    expires_at=expires_at.astimezone(UTC),
                )
                await _insert_token(db, new, new_token_hash)
        if refused is not None or new is None:
            raise refused or AuthError("unknown refresh token")
        return new

    async def revoke_refresh_family(
        self, family_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        return await self._write(
            "UPDATE refresh_tokens SET revoked_at = ?, revoked_reason = ? "
            "WHERE family_id = ? AND revoked_at IS NULL",
            (_iso(when or _now()), reason, family_id),
        )

    async def revoke_refresh_tokens_of(
        self, user_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        return await self._write(
            "UPDATE refresh_tokens SET revoked_at = ?, revoked_reason = ? "
            "WHERE user_id = ? AND revoked_at IS NULL",
            (_iso(when or _now()), reason, user_id),
        )

    async def refresh_tokens_of(self, user_id: str) -> list[RefreshToken]:
        rows = await self._all(
            f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE user_id = ? "
            "ORDER BY created_at, id",
            (user_id,),
        )
        return [_token(row) for row in rows]

    async def purge_refresh_tokens(self, expired_before: datetime) -> int:
        return await self._write(
            "DELETE FROM refresh_tokens WHERE expires_at < ?", (_iso(expired_before),)
        )

    # -- subscriptions ------------------------------------------------------------------------

    async def get_subscription(self, user_id: str) -> Subscription | None:
        row = await self._one(
            "SELECT user_id, tier, status, expires_at, updated_at FROM subscriptions "
            "WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return None
        return Subscription(
            user_id=row["user_id"],
            tier=row["tier"],
            status=row["status"],
            expires_at=_from_iso_or_none(row["expires_at"]),
            updated_at=_from_iso(row["updated_at"]),
        )

    async def set_subscription(
        self,
        user_id: str,
        tier: str,
        status: str,
        expires_at: datetime | None,
        when: datetime | None = None,
    ) -> Subscription:
        check_subscription(tier, status)
        subscription = Subscription(
            user_id=user_id,
            tier=tier,
            status=status,
            expires_at=None if expires_at is None else expires_at.astimezone(UTC),
            updated_at=(when or _now()).astimezone(UTC),
        )
        try:
            await self._write(
                "INSERT INTO subscriptions (user_id, tier, status, expires_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, "
                "status = excluded.status, expires_at = excluded.expires_at, "
                "updated_at = excluded.updated_at",
                (
                    user_id,
                    tier,
                    status,
                    _iso_or_none(subscription.expires_at),
                    _iso(subscription.updated_at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise NotFoundError("no such user") from None
            raise
        return subscription

    # -- the TX audit log ---------------------------------------------------------------------

    async def start_tx(
        self, board_id: str, user_id: str | None, callsign: str, started_at: datetime
    ) -> int:
        sql = (
            "INSERT INTO tx_sessions (board_id, user_id, callsign, started_at) VALUES (?, ?, ?, ?)"
        )
        async with (
            self._lock,
            self._conn.execute(sql, (board_id, user_id, callsign, _iso(started_at))) as cursor,
        ):
            tx_id = cursor.lastrowid
        if tx_id is None:
            raise SignalingError("the TX session was not recorded")
        return int(tx_id)

    async def end_tx(self, tx_id: int, ended_at: datetime, reason: str) -> None:
        sql = "UPDATE tx_sessions SET ended_at = ?, reason = ? WHERE id = ? AND ended_at IS NULL"
        await self._write(sql, (_iso(ended_at), reason, tx_id))

    async def close_open_tx(self, ended_at: datetime, reason: str) -> int:
        sql = "UPDATE tx_sessions SET ended_at = ?, reason = ? WHERE ended_at IS NULL"
        return await self._write(sql, (_iso(ended_at), reason))

    async def settle_open_tx(self, board_id: str, reason: str, released_at: datetime) -> int:
        sql = (
            "UPDATE tx_sessions SET ended_at = ? WHERE board_id = ? AND reason = ? "
            "AND started_at <= ? AND ended_at > ?"
        )
        when = _iso(released_at)
        return await self._write(sql, (when, board_id, reason, when, when))

    async def tx_sessions(self, board_id: str, limit: int = 100) -> list[TxSession]:
        rows = await self._all(
            f"SELECT {_TX_COLUMNS} FROM tx_sessions WHERE board_id = ? "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            (board_id, max(1, min(limit, 1000))),
        )
        return [_tx(row) for row in rows]

    async def tx_sessions_by_user(self, user_id: str, limit: int = 1000) -> list[TxSession]:
        rows = await self._all(
            f"SELECT {_TX_COLUMNS} FROM tx_sessions WHERE user_id = ? "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            (user_id, max(1, min(limit, 10_000))),
        )
        return [_tx(row) for row in rows]


def _open_reader(path: Path) -> sqlite3.Connection:
    """The store's read-only connection for reads in the event loop: it never waits for a busy
    file (`_all` then reads on aiosqlite's thread) and cannot write."""
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA busy_timeout = 0")
        reader.execute("PRAGMA query_only = ON")
    except BaseException:
        reader.close()
        raise
    return reader


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: the file is held, nothing is wrong with the statement."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _version(db: aiosqlite.Connection) -> int:
    """The file's schema version: the highest in `schema_version`, else (a file from before
    versioned migrations, or one written by a newer release that we must refuse) its
    `user_version`."""
    async with db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ) as cursor:
        has_table = await cursor.fetchone() is not None
    recorded = 0
    if has_table:
        async with db.execute("SELECT max(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        recorded = int(row[0]) if row is not None and row[0] is not None else 0
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    user_version = int(row[0]) if row is not None else 0
    if user_version > recorded:
        # newer than us: refused by `pending`; older (1 or 2, before this list existed):
        # migrations 1 and 2 adopt the file as it is (IF NOT EXISTS), so start from 0
        return user_version if user_version > LATEST_VERSION else recorded
    return recorded


async def _insert_token(db: aiosqlite.Connection, token: RefreshToken, token_hash: str) -> None:
    try:
        await db.execute(
            "INSERT INTO refresh_tokens (id, user_id, token_hash, family_id, parent_id, "
            "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.user_id,
                token_hash,
                token.family_id,
                token.parent_id,
                _iso(token.created_at),
                _iso(token.expires_at),
            ),
        )
    except sqlite3.IntegrityError as exc:
        if exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
            raise NotFoundError("no such user") from None
        if _is_unique_violation(exc):
            raise ConflictError("this refresh token is already stored") from None
        raise


def _right(value: str) -> Right:
    if value == "listen":
        return "listen"
    if value == "transmit":
        return "transmit"
    raise SignalingError(f"unknown right {value!r} in the store")


def _board(row: aiosqlite.Row) -> Board:
    return Board(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        created_at=_from_iso(row["created_at"]),
        secret_hash=row["secret_hash"],
        locator=row["locator"],
        public=bool(row["public"]),
        last_seen=_from_iso_or_none(row["last_seen"]),
        bands=tuple(json.loads(row["bands"])),
        price_eur=_price(row["price_eur"]),
        paired_at=_from_iso_or_none(row["paired_at"]),
    )


def _booking(row: aiosqlite.Row) -> Booking:
    return Booking(
        id=row["id"],
        board_id=row["board_id"],
        user_id=row["user_id"],
        starts_at=_from_iso(row["starts_at"]),
        ends_at=_from_iso(row["ends_at"]),
        price_eur=_price(row["price_eur"]),
        created_at=_from_iso(row["created_at"]),
        cancelled_at=_from_iso_or_none(row["cancelled_at"]),
    )


def _token(row: aiosqlite.Row) -> RefreshToken:
    return RefreshToken(
        id=row["id"],
        user_id=row["user_id"],
        family_id=row["family_id"],
        parent_id=row["parent_id"],
        created_at=_from_iso(row["created_at"]),
        expires_at=_from_iso(row["expires_at"]),
        revoked_at=_from_iso_or_none(row["revoked_at"]),
        revoked_reason=row["revoked_reason"],
    )


def _tx(row: aiosqlite.Row) -> TxSession:
    return TxSession(
        id=int(row["id"]),
        board_id=row["board_id"],
        user_id=row["user_id"],
        callsign=row["callsign"],
        started_at=_from_iso(row["started_at"]),
        ended_at=_from_iso_or_none(row["ended_at"]),
        reason=row["reason"],
    )


def _price(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


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


def _iso_or_none(when: datetime | None) -> str | None:
    return None if when is None else _iso(when)


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _from_iso_or_none(text: str | None) -> datetime | None:
    return None if text is None else _from_iso(text)
