"""`PostgresStore`: the store in PostgreSQL through an asyncpg pool, for production.

`database_url` forms (libpq's): `postgresql://USER:PASSWORD@HOST:PORT/DB`, `postgres://…`, or
through a Unix socket `postgresql://USER@/DB?host=/run/postgresql`. Timestamps are `timestamptz`
and every connection runs with `timezone=UTC`. Non-overlapping bookings are an exclusion
constraint of the table (`signaling.store.migrations`, version 3): concurrent requests on any
number of connections or servers cannot double-book a station.

Concurrency otherwise follows READ COMMITTED: a check-then-write (a booking checks its board and
that the guest is not blocked) locks the board row, so a block, which locks it FOR UPDATE, is
ordered before or after it, never between. A booking locks it FOR NO KEY UPDATE, so that the
bookings of one board are ordered too: concurrent inserts that the exclusion constraint
compares wait for each other and can deadlock (PostgreSQL aborts one: a 500, not the 409 the
loser is due).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

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
from signaling.store.migrations import SCHEMA_VERSION_TABLE_POSTGRES, pending
from signaling.validation import canonical_bands, canonical_locator, canonical_locator_prefix

logger = logging.getLogger(__name__)

#: Connections the pool keeps at most (each server node has its own pool).
DEFAULT_MAX_CONNECTIONS: Final = 10
#: Seconds to wait for a connection at start-up, and for any one statement.
CONNECT_TIMEOUT_S: Final = 10.0
COMMAND_TIMEOUT_S: Final = 30.0
#: `pg_advisory_xact_lock` key: one migrator at a time, whatever the number of nodes.
_MIGRATION_LOCK: Final = 0x52414449_4F434F52  # "RADIOCOR"

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


def redact_dsn(url: str) -> str:
    """`url` with its password replaced by `***` (for logs, errors and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{parts.username or ''}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class PostgresStore(Store):
    """The store in a PostgreSQL database (asyncpg pool)."""

    #: Connection lost or refused, the server shutting down or starting (57P01, 57P03),
    #: the pool closed: PostgreSQL is not answering, the request itself was not refused.
    outage_errors = (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,
    )

    def __init__(self, url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self._url = url
        self._max_connections = max(2, max_connections)
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact_dsn(self._url)!r})"

    async def open(self) -> None:
        if self._pool is not None:
            return
        where = redact_dsn(self._url)
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._max_connections,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                server_settings={"timezone": "UTC", "application_name": "radiocore"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise SignalingError(
                f"cannot connect to PostgreSQL at {where}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            self.applied_migrations = await self._migrate(pool, where)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        if self.applied_migrations:
            logger.info(
                "store: PostgreSQL database %s migrated (applied %s)",
                where,
                ", ".join(map(str, self.applied_migrations)),
            )
        logger.info("store: PostgreSQL database %s open", where)

    @staticmethod
    async def _migrate(pool: Any, where: str) -> tuple[int, ...]:
        """Apply the migrations the database lacks, all in one transaction, under an advisory
        lock (several nodes starting at once migrate once)."""
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(SCHEMA_VERSION_TABLE_POSTGRES)
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            todo = pending(int(current), f"PostgreSQL database {where}")
            for migration in todo:
                try:
                    await conn.execute(migration.postgres)
                except asyncpg.PostgresError as exc:
                    raise SignalingError(
                        f"migration {migration.version} of PostgreSQL database {where} failed "
                        f"({type(exc).__name__}: {exc}); nothing was changed"
                    ) from None
                await conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) "
                    "VALUES ($1, $2, now())",
                    migration.version,
                    migration.description,
                )
            return tuple(m.version for m in todo)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def _db(self) -> Any:
        if self._pool is None:
            raise SignalingError("the store is not open")
        return self._pool

    async def schema_version(self) -> int:
        return int(await self._db.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

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
            await self._db.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                user.id,
                user.email,
                user.password_hash,
                user.callsign,
                user.created_at,
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError("a user with this email is already registered") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user("id = $1", user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        return await self._one_user("email = $1", normalize_email(email))

    async def _one_user(self, condition: str, value: str) -> User | None:
        row = await self._db.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE {condition}", value)
        if row is None:
            return None
        return User(
            id=row["id"],
            email=row["email"],
            callsign=row["callsign"],
            created_at=row["created_at"],
            password_hash=row["password_hash"],
        )

    async def delete_user(self, user_id: str) -> None:
        if _count(await self._db.execute("DELETE FROM users WHERE id = $1", user_id)) == 0:
            raise NotFoundError("no such user")

    # -- boards -------------------------------------------------------------------------------

    async def _insert_board(self, board: Board, pairing_code_hash: str | None) -> None:
        try:
            await self._db.execute(
                "INSERT INTO boards (id, owner_id, name, secret_hash, pairing_code_hash, "
                "paired_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                board.id,
                board.owner_id,
                board.name,
                board.secret_hash,
                pairing_code_hash,
                board.paired_at,
                board.created_at,
            )
        except asyncpg.UniqueViolationError:
            raise ConflictError("this board is already paired") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFoundError("no such user") from None

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
        try:
            async with self._db.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    f"UPDATE boards SET owner_id = $1, name = $2, paired_at = $3, "
                    "pairing_code_hash = NULL "
                    "WHERE id = $4 AND owner_id IS NULL AND pairing_code_hash = $5 "
                    f"RETURNING {_BOARD_COLUMNS}",
                    user_id,
                    name,
                    _utc(when or _now()),
                    board_id,
                    pairing_code_hash,
                )
                if row is not None:
                    return _board(row)
                owner = await conn.fetchrow("SELECT owner_id FROM boards WHERE id = $1", board_id)
                if owner is not None and owner["owner_id"] is not None:
                    raise ConflictError(
                        "this board is already paired; its owner must release it first"
                    )
                raise ForbiddenError("unknown board or wrong pairing code")
        except asyncpg.ForeignKeyViolationError:
            raise NotFoundError("no such user") from None

    async def release_board(
        self, board_id: str, owner_id: str, pairing_code_hash: str, secret_hash: str
    ) -> Board:
        check_hash(pairing_code_hash, "the pairing code")
        check_hash(secret_hash, "the board secret")
        async with self._db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE boards SET owner_id = NULL, paired_at = NULL, name = '', "
                "locator = NULL, bands = '{}', public = false, price_eur = NULL, "
                "pairing_code_hash = $1, secret_hash = $2 WHERE id = $3 AND owner_id = $4 "
                f"RETURNING {_BOARD_COLUMNS}",
                pairing_code_hash,
                secret_hash,
                board_id,
                owner_id,
            )
            if row is None:
                raise NotFoundError("no such board")
            for table in ("grants", "blocks", "bookings", "tx_sessions"):
                await conn.execute(f"DELETE FROM {table} WHERE board_id = $1", board_id)
            return _board(row)

    async def set_board_secret(
        self, board_id: str, secret_hash: str, *, owner_id: str | None = None
    ) -> Board:
        check_hash(secret_hash, "the board secret")
        # $3 NULL: any owner (or none); else only while that user owns it
        row = await self._db.fetchrow(
            "UPDATE boards SET secret_hash = $1 WHERE id = $2 "
            f"AND ($3::text IS NULL OR owner_id = $3::text) RETURNING {_BOARD_COLUMNS}",
            secret_hash,
            board_id,
            owner_id,
        )
        if row is None:
            raise NotFoundError("no such board")
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
            changes["public"] = bool(public)
        if not isinstance(bands, Unset):
            changes["bands"] = list(canonical_bands(bands))
        if not isinstance(price_eur, Unset):
            changes["price_eur"] = canonical_price(price_eur)
        if not changes:
            board = await self.get_board(board_id)
            if board is None:
                raise NotFoundError("no such board")
            return board
        assignments = ", ".join(
            f"{column} = ${index}" for index, column in enumerate(changes, start=2)
        )
        row = await self._db.fetchrow(
            f"UPDATE boards SET {assignments} WHERE id = $1 RETURNING {_BOARD_COLUMNS}",
            board_id,
            *changes.values(),
        )
        if row is None:
            raise NotFoundError("no such board")
        return _board(row)

    async def get_board(self, board_id: str) -> Board | None:
        row = await self._db.fetchrow(
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE id = $1", board_id
        )
        return None if row is None else _board(row)

    async def board_ids(self) -> list[str]:
        rows = await self._db.fetch("SELECT id FROM boards ORDER BY id")
        return [str(row["id"]) for row in rows]

    async def boards_of(self, owner_id: str) -> list[Board]:
        rows = await self._db.fetch(
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE owner_id = $1 ORDER BY created_at, id",
            owner_id,
        )
        return [_board(row) for row in rows]

    async def public_boards(
        self,
        locator_prefix: str | None = None,
        bands: tuple[str, ...] | list[str] = (),
        limit: int = 100,
    ) -> list[Board]:
        conditions = ["public", "owner_id IS NOT NULL"]
        params: list[object] = []
        if locator_prefix is not None:
            params.append(canonical_locator_prefix(locator_prefix))
            # the prefix is letters and digits only (validated): no LIKE wildcards in it
            conditions.append(f"locator LIKE ${len(params)} || '%'")
        wanted = canonical_bands(bands)
        if wanted:
            params.append(list(wanted))
            conditions.append(f"bands && ${len(params)}::text[]")
        params.append(max(1, min(limit, 1000)))
        rows = await self._db.fetch(
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE {' AND '.join(conditions)} "
            f"ORDER BY created_at, id LIMIT ${len(params)}",
            *params,
        )
        return [_board(row) for row in rows]

    async def touch_board(self, board_id: str, when: datetime) -> None:
        status = await self._db.execute(
            "UPDATE boards SET last_seen = $1 WHERE id = $2", _utc(when), board_id
        )
        if _count(status) == 0:
            raise NotFoundError("no such board")

    # -- grants and blocks --------------------------------------------------------------------

    async def set_grant(self, board_id: str, user_id: str, right: Right | None) -> None:
        if right is None:
            await self._db.execute(
                "DELETE FROM grants WHERE board_id = $1 AND user_id = $2", board_id, user_id
            )
            return
        if right not in RIGHTS:
            raise BadRequestError(f"right must be one of {', '.join(RIGHTS)}")
        async with self._db.acquire() as conn, conn.transaction():
            board = await conn.fetchrow("SELECT 1 FROM boards WHERE id = $1 FOR SHARE", board_id)
            if board is None:
                raise NotFoundError("no such board or user")
            if await conn.fetchval(
                "SELECT 1 FROM blocks WHERE board_id = $1 AND user_id = $2", board_id, user_id
            ):
                raise ConflictError("this user is blocked from the board; unblock first")
            try:
                await conn.execute(
                    'INSERT INTO grants (board_id, user_id, "right") VALUES ($1, $2, $3) '
                    'ON CONFLICT (board_id, user_id) DO UPDATE SET "right" = excluded."right"',
                    board_id,
                    user_id,
                    right,
                )
            except asyncpg.ForeignKeyViolationError:
                raise NotFoundError("no such board or user") from None

    async def grant_of(self, board_id: str, user_id: str) -> Right | None:
        value = await self._db.fetchval(
            'SELECT "right" FROM grants WHERE board_id = $1 AND user_id = $2', board_id, user_id
        )
        return None if value is None else _right(value)

    async def boards_granted_to(self, user_id: str) -> list[tuple[Board, Right]]:
        rows = await self._db.fetch(
            f'SELECT {_BOARD_COLUMNS_B}, g."right" AS "right" FROM grants g '
            "JOIN boards b ON b.id = g.board_id WHERE g.user_id = $1 ORDER BY b.created_at, b.id",
            user_id,
        )
        return [(_board(row), _right(row["right"])) for row in rows]

    async def grantees(self, board_id: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT user_id FROM grants WHERE board_id = $1 ORDER BY user_id", board_id
        )
        return [str(row["user_id"]) for row in rows]

    async def block_user(self, board_id: str, user_id: str, when: datetime | None = None) -> None:
        now = _utc(when or _now())
        async with self._db.acquire() as conn, conn.transaction():
            owner = await conn.fetchrow(
                "SELECT owner_id FROM boards WHERE id = $1 FOR UPDATE", board_id
            )
            if owner is None:
                raise NotFoundError("no such board")
            if owner["owner_id"] == user_id:
                raise BadRequestError("the owner cannot be blocked from their own board")
            try:
                await conn.execute(
                    "INSERT INTO blocks (board_id, user_id, created_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (board_id, user_id) DO NOTHING",
                    board_id,
                    user_id,
                    now,
                )
            except asyncpg.ForeignKeyViolationError:
                raise NotFoundError("no such user") from None
            await conn.execute(
                "DELETE FROM grants WHERE board_id = $1 AND user_id = $2", board_id, user_id
            )
            await conn.execute(
                "UPDATE bookings SET cancelled_at = $3 WHERE board_id = $1 AND user_id = $2 "
                "AND cancelled_at IS NULL AND ends_at > $3",
                board_id,
                user_id,
                now,
            )

    async def unblock_user(self, board_id: str, user_id: str) -> None:
        await self._db.execute(
            "DELETE FROM blocks WHERE board_id = $1 AND user_id = $2", board_id, user_id
        )

    async def is_blocked(self, board_id: str, user_id: str) -> bool:
        value = await self._db.fetchval(
            "SELECT 1 FROM blocks WHERE board_id = $1 AND user_id = $2", board_id, user_id
        )
        return value is not None

    async def blocked_users(self, board_id: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT user_id FROM blocks WHERE board_id = $1 ORDER BY user_id", board_id
        )
        return [str(row["user_id"]) for row in rows]

    async def boards_blocking(self, user_id: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT board_id FROM blocks WHERE user_id = $1 ORDER BY board_id", user_id
        )
        return [str(row["board_id"]) for row in rows]

    # -- bookings -----------------------------------------------------------------------------

    async def create_booking(
        self, board_id: str, user_id: str, starts_at: datetime, ends_at: datetime
    ) -> Booking:
        check_window(starts_at, ends_at)
        async with self._db.acquire() as conn, conn.transaction():
            board = await conn.fetchrow(
                "SELECT price_eur FROM boards WHERE id = $1 AND owner_id IS NOT NULL "
                "FOR NO KEY UPDATE",
                board_id,
            )
            if board is None:
                raise NotFoundError("no such board")
            if await conn.fetchval(
                "SELECT 1 FROM blocks WHERE board_id = $1 AND user_id = $2", board_id, user_id
            ):
                raise ForbiddenError("you are blocked from this station")
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO bookings ({_BOOKING_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) "
                    f"RETURNING {_BOOKING_COLUMNS}",
                    str(uuid.uuid4()),
                    board_id,
                    user_id,
                    _utc(starts_at),
                    _utc(ends_at),
                    booking_price(board["price_eur"], starts_at, ends_at),
                    _now(),
                )
            except asyncpg.ExclusionViolationError:
                raise ConflictError(_OVERLAP_MESSAGE) from None
            except asyncpg.ForeignKeyViolationError:
                raise NotFoundError("no such user") from None
            return _booking(row)

    async def get_booking(self, booking_id: str) -> Booking | None:
        row = await self._db.fetchrow(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE id = $1", booking_id
        )
        return None if row is None else _booking(row)

    async def cancel_booking(self, booking_id: str, when: datetime | None = None) -> Booking:
        await self._db.execute(
            "UPDATE bookings SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL",
            _utc(when or _now()),
            booking_id,
        )
        booking = await self.get_booking(booking_id)
        if booking is None:
            raise NotFoundError("no such booking")
        return booking

    async def bookings_of_user(
        self, user_id: str, *, include_cancelled: bool = False
    ) -> list[Booking]:
        active = "" if include_cancelled else " AND cancelled_at IS NULL"
        rows = await self._db.fetch(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE user_id = $1{active} "
            "ORDER BY starts_at, id",
            user_id,
        )
        return [_booking(row) for row in rows]

    async def bookings_of_board(
        self,
        board_id: str,
        *,
        ending_after: datetime | None = None,
        include_cancelled: bool = False,
    ) -> list[Booking]:
        conditions = ["board_id = $1"]
        params: list[object] = [board_id]
        if not include_cancelled:
            conditions.append("cancelled_at IS NULL")
        if ending_after is not None:
            params.append(_utc(ending_after))
            conditions.append(f"ends_at > ${len(params)}")
        rows = await self._db.fetch(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE {' AND '.join(conditions)} "
            "ORDER BY starts_at, id",
            *params,
        )
        return [_booking(row) for row in rows]

    async def booking_at(self, board_id: str, when: datetime) -> Booking | None:
        row = await self._db.fetchrow(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE board_id = $1 "
            "AND cancelled_at IS NULL AND starts_at <= $2 AND ends_at > $2",
            board_id,
            _utc(when),
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
            created_at=_utc(when or _now()),
            expires_at=_utc(expires_at),
        )
        await _insert_token(self._db, token, token_hash)
        return token

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = await self._db.fetchrow(
            f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1", token_hash
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
        now = _utc(when or _now())
        refused: AuthError | None = None
        new: RefreshToken | None = None
        async with self._db.acquire() as conn, conn.transaction():
            # FOR UPDATE: two uses of one token at once are ordered; the second sees a reuse
            row = await conn.fetchrow(
                f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                token_hash,
            )
            old = None if row is None else _token(row)
            if old is None:
                refused = AuthError("unknown refresh token")
            elif old.revoked_reason == "rotated":
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = 'reused' "
                    "WHERE family_id = $2 AND revoked_at IS NULL",
                    now,
                    old.family_id,
                )
                refused = AuthError(
                    "this refresh token was already used; the sign-in is revoked everywhere"
                )
            elif old.revoked_at is not None:
                refused = AuthError("this refresh token was revoked")
            elif old.expires_at <= now:
                refused = AuthError("this refresh token has expired")
            else:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = 'rotated' "
                    "WHERE id = $2",
                    now,
                    old.id,
                )
                new = RefreshToken(
                    id=str(uuid.uuid4()),
                    user_id=old.user_id,
                    family_id=old.family_id,
                    parent_id=old.id,
                    created_at=now,
                    expires_at=_utc(expires_at),
                )
                await _insert_token(conn, new, new_token_hash)
        if refused is not None or new is None:
            raise refused or AuthError("unknown refresh token")
        return new

    async def revoke_refresh_family(
        self, family_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        status = await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2 "
            "WHERE family_id = $3 AND revoked_at IS NULL",
            _utc(when or _now()),
            reason,
            family_id,
        )
        return _count(status)

    async def revoke_refresh_tokens_of(
        self, user_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        status = await self._db.execute(
            "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2 "
            "WHERE user_id = $3 AND revoked_at IS NULL",
            _utc(when or _now()),
            reason,
            user_id,
        )
        return _count(status)

    async def refresh_tokens_of(self, user_id: str) -> list[RefreshToken]:
        rows = await self._db.fetch(
            f"SELECT {_TOKEN_COLUMNS} FROM refresh_tokens WHERE user_id = $1 "
            "ORDER BY created_at, id",
            user_id,
        )
        return [_token(row) for row in rows]

    async def purge_refresh_tokens(self, expired_before: datetime) -> int:
        status = await self._db.execute(
            "DELETE FROM refresh_tokens WHERE expires_at < $1", _utc(expired_before)
        )
        return _count(status)

    # -- subscriptions ------------------------------------------------------------------------

    async def get_subscription(self, user_id: str) -> Subscription | None:
        row = await self._db.fetchrow(
            "SELECT user_id, tier, status, expires_at, updated_at FROM subscriptions "
            "WHERE user_id = $1",
            user_id,
        )
        if row is None:
            return None
        return Subscription(
            user_id=row["user_id"],
            tier=row["tier"],
            status=row["status"],
            expires_at=row["expires_at"],
            updated_at=row["updated_at"],
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
            expires_at=None if expires_at is None else _utc(expires_at),
            updated_at=_utc(when or _now()),
        )
        try:
            await self._db.execute(
                "INSERT INTO subscriptions (user_id, tier, status, expires_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET "
                "tier = excluded.tier, status = excluded.status, "
                "expires_at = excluded.expires_at, updated_at = excluded.updated_at",
                user_id,
                tier,
                status,
                subscription.expires_at,
                subscription.updated_at,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFoundError("no such user") from None
        return subscription

    # -- the TX audit log ---------------------------------------------------------------------

    async def start_tx(
        self, board_id: str, user_id: str | None, callsign: str, started_at: datetime
    ) -> int:
        tx_id = await self._db.fetchval(
            "INSERT INTO tx_sessions (board_id, user_id, callsign, started_at) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            board_id,
            user_id,
            callsign,
            _utc(started_at),
        )
        if tx_id is None:
            raise SignalingError("the TX session was not recorded")
        return int(tx_id)

    async def end_tx(self, tx_id: int, ended_at: datetime, reason: str) -> None:
        await self._db.execute(
            "UPDATE tx_sessions SET ended_at = $1, reason = $2 WHERE id = $3 AND ended_at IS NULL",
            _utc(ended_at),
            reason,
            tx_id,
        )

    async def close_open_tx(self, ended_at: datetime, reason: str) -> int:
        status = await self._db.execute(
            "UPDATE tx_sessions SET ended_at = $1, reason = $2 WHERE ended_at IS NULL",
            _utc(ended_at),
            reason,
        )
        return _count(status)

    async def settle_open_tx(self, board_id: str, reason: str, released_at: datetime) -> int:
        status = await self._db.execute(
            "UPDATE tx_sessions SET ended_at = $1 WHERE board_id = $2 AND reason = $3 "
            "AND started_at <= $1 AND ended_at > $1",
            _utc(released_at),
            board_id,
            reason,
        )
        return _count(status)

    async def tx_sessions(self, board_id: str, limit: int = 100) -> list[TxSession]:
        rows = await self._db.fetch(
            f"SELECT {_TX_COLUMNS} FROM tx_sessions WHERE board_id = $1 "
            "ORDER BY started_at DESC, id DESC LIMIT $2",
            board_id,
            max(1, min(limit, 1000)),
        )
        return [_tx(row) for row in rows]

    async def tx_sessions_by_user(self, user_id: str, limit: int = 1000) -> list[TxSession]:
        rows = await self._db.fetch(
            f"SELECT {_TX_COLUMNS} FROM tx_sessions WHERE user_id = $1 "
            "ORDER BY started_at DESC, id DESC LIMIT $2",
            user_id,
            max(1, min(limit, 10_000)),
        )
        return [_tx(row) for row in rows]


async def _insert_token(conn: Any, token: RefreshToken, token_hash: str) -> None:
    try:
        await conn.execute(
            "INSERT INTO refresh_tokens (id, user_id, token_hash, family_id, parent_id, "
            "created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            token.id,
            token.user_id,
            token_hash,
            token.family_id,
            token.parent_id,
            token.created_at,
            token.expires_at,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFoundError("no such user") from None
    except asyncpg.UniqueViolationError:
        raise ConflictError("this refresh token is already stored") from None


def _count(status: str) -> int:
    """Rows a command changed, from its status tag (`UPDATE 3`, `DELETE 0`)."""
    return int(status.rsplit(" ", 1)[-1])


def _right(value: str) -> Right:
    if value == "listen":
        return "listen"
    if value == "transmit":
        return "transmit"
    raise SignalingError(f"unknown right {value!r} in the store")


def _board(row: Any) -> Board:
    return Board(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        created_at=row["created_at"],
        secret_hash=row["secret_hash"],
        locator=row["locator"],
        public=bool(row["public"]),
        last_seen=row["last_seen"],
        bands=tuple(row["bands"]),
        price_eur=row["price_eur"],
        paired_at=row["paired_at"],
    )


def _booking(row: Any) -> Booking:
    return Booking(
        id=row["id"],
        board_id=row["board_id"],
        user_id=row["user_id"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        price_eur=row["price_eur"],
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
    )


def _token(row: Any) -> RefreshToken:
    return RefreshToken(
        id=row["id"],
        user_id=row["user_id"],
        family_id=row["family_id"],
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revoked_reason=row["revoked_reason"],
    )


def _tx(row: Any) -> TxSession:
    return TxSession(
        id=int(row["id"]),
        board_id=row["board_id"],
        user_id=row["user_id"],
        callsign=row["callsign"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        reason=row["reason"],
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC)
