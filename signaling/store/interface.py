"""What the server stores, behind one interface: `Store`, and the values it returns.

Implementations: `SqliteStore` (`signaling.store.sqlite`, the embedded default) and
`PostgresStore` (`signaling.store.postgres`, production); nothing outside this package speaks
SQL. Both apply the same versioned migrations (`signaling.store.migrations`) when they open, and
one contract test suite (tests/signaling/test_store.py) runs against both. Values come back as
frozen dataclasses with UTC timestamps; hashes stay out of their reprs.

Conventions: `get_*` return None for an absent row; changing an absent row raises
`NotFoundError`; a clash with a stored row raises `ConflictError`; input the store cannot take
(a locator that is not Maidenhead, an unknown band, a booking that ends before it starts)
raises `BadRequestError` naming the field. Secrets (board secrets, pairing codes, refresh
tokens) reach the store only as hashes, made by the caller (`signaling.accounts`,
`signaling.auth`): the store never sees one in clear.

Times: every timestamp is timezone-aware and stored in UTC; a naive one is a `ValueError`.
"""

from __future__ import annotations

import abc
import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import TracebackType
from typing import ClassVar, Final, Literal, Self, TypeAlias

from signaling.errors import BadRequestError, NotFoundError
from signaling.validation import (
    BAND_NAMES,
)

#: What a grant lets a user do on someone else's board. The owner may do everything.
Right: TypeAlias = Literal["listen", "transmit"]
RIGHTS: Final = ("listen", "transmit")

#: Amateur bands a station can list, in the order the store keeps them (long to short waves).
BANDS: Final = BAND_NAMES
#: A board's name (after stripping blanks) has 1 … this many characters.
MAX_BOARD_NAME_CHARS: Final = 64
#: The highest hourly price an owner may set, in euros (prices have whole cents).
MAX_PRICE_EUR: Final = Decimal("10000.00")
#: What a subscription can be (no payment provider yet: set by an operator or, later, billing).
SUBSCRIPTION_STATUSES: Final = ("active", "cancelled", "expired")
_TIER = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_CENT: Final = Decimal("0.01")


class Unset(enum.Enum):
    """`UNSET`: leave this field as it is (`Store.update_board`)."""

    UNSET = 0


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class User:
    id: str
    email: str  # lower-cased
    callsign: str
    created_at: datetime
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class Board:
    """A station. `owner_id` is None while it is provisioned but not paired (or released)."""

    id: str  # UUID, lower-case with dashes
    owner_id: str | None
    name: str
    created_at: datetime
    secret_hash: str = field(repr=False)
    locator: str | None = None  # Maidenhead, canonical case: JO62qm
    public: bool = False
    last_seen: datetime | None = None
    bands: tuple[str, ...] = ()  # from BANDS, in BANDS order
    price_eur: Decimal | None = None  # per hour; None: free
    paired_at: datetime | None = None


@dataclass(frozen=True)
class Booking:
    """A guest's time on a station: [starts_at, ends_at), UTC. Active while not cancelled; the
    active bookings of one board never overlap (the database enforces it)."""

    id: str
    board_id: str
    user_id: str
    starts_at: datetime
    ends_at: datetime
    price_eur: Decimal | None  # the board's hourly price times duration when booked
    created_at: datetime
    cancelled_at: datetime | None = None

    def covers(self, when: datetime) -> bool:
        """Whether this booking is active and `when` falls inside its window."""
        return self.cancelled_at is None and self.starts_at <= when < self.ends_at


@dataclass(frozen=True)
class RefreshToken:
    """One refresh token (the token itself is known only to its holder; stored as a hash).

    Tokens rotate: each use replaces the token by a new one of the same `family_id` (the id of
    the first, issued at sign-in), `parent_id` pointing back. A token used twice means it was
    copied: the whole family is revoked.
    """

    id: str
    user_id: str
    family_id: str
    parent_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None  # rotated, signed_out, reused, …


@dataclass(frozen=True)
class Subscription:
    user_id: str
    tier: str
    status: str  # one of SUBSCRIPTION_STATUSES
    expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class TxSession:
    """One transmission: who keyed the station, when, and why it ended (None while on air)."""

    id: int
    board_id: str
    user_id: str | None
    callsign: str
    started_at: datetime
    ended_at: datetime | None
    reason: str | None


class Store(abc.ABC):
    """Accounts, boards, pairing, grants, blocks, bookings, refresh tokens, subscriptions and
    the TX audit log.

    Use as `async with store:` or call `open()` / `close()`. `open()` applies the migrations
    the database lacks (`signaling.store.migrations`) and refuses a database newer than this
    code.
    """

    #: The migrations (versions) the last `open()` applied; empty when it was up to date.
    applied_migrations: tuple[int, ...] = ()
    #: What the database's driver raises when the database does not answer (down, restarting,
    #: unreachable, timed out), as opposed to refusing a request: `is_outage`.
    outage_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, TimeoutError)

    def is_outage(self, exc: BaseException) -> bool:
        """Whether `exc` (or what it was raised from) says the database did not answer: the
        caller answers `UnavailableError` (503, try again) rather than a failure of its own."""
        seen: BaseException | None = exc
        for _ in range(8):  # a chain of causes is short; bounded all the same
            if seen is None:
                return False
            if isinstance(seen, self.outage_errors):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connections; safe to call twice."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version the database is at."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Run a trivial query: returns when the database answers, raises when it does not
        (`GET /ready`; the caller bounds the wait)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- users --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_user(self, email: str, password_hash: str, callsign: str) -> User:
        """A new user; `ConflictError` if the email (compared lower-cased) is registered."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    async def get_user_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    async def delete_user(self, user_id: str) -> None:
        """Delete the user and everything of theirs: the boards they own (with those boards'
        grants, blocks, bookings and TX log), their grants, blocks, bookings, refresh tokens
        and subscription. Their transmissions on other owners' stations stay in those
        stations' TX logs, with the callsign but no longer linked to an account.
        `NotFoundError` if there is no such user."""

    # -- boards -------------------------------------------------------------------------------

    async def create_board(
        self, owner_id: str, name: str, secret_hash: str, board_id: str | None = None
    ) -> Board:
        """A new board of `owner_id`, paired now (`board_id` from its QR code, else a fresh
        UUID): the `radiocore board add` path, for boards set up by hand.

        `BadRequestError` if `board_id` is not a UUID, `NotFoundError` if the owner does not
        exist, `ConflictError` if the board id is taken.
        """
        now = datetime.now(UTC)
        board = Board(
            id=canonical_board_id(board_id) if board_id is not None else str(uuid.uuid4()),
            owner_id=owner_id,
            name=name,
            created_at=now,
            secret_hash=secret_hash,
            paired_at=now,
        )
        await self._insert_board(board, None)
        return board

    async def provision_board(
        self, secret_hash: str, pairing_code_hash: str, board_id: str | None = None
    ) -> Board:
        """A new board with no owner yet, waiting to be paired with the code whose hash is
        `pairing_code_hash` (printed on its sticker). `ConflictError` if the id is taken."""
        check_hash(secret_hash, "the board secret")
        check_hash(pairing_code_hash, "the pairing code")
        board = Board(
            id=canonical_board_id(board_id) if board_id is not None else str(uuid.uuid4()),
            owner_id=None,
            name="",
            created_at=datetime.now(UTC),
            secret_hash=secret_hash,
        )
        await self._insert_board(board, pairing_code_hash)
        return board

    @abc.abstractmethod
    async def _insert_board(self, board: Board, pairing_code_hash: str | None) -> None:
        """Store `board` (with its pairing code's hash while unpaired); `NotFoundError` for an
        unknown owner, `ConflictError` for a taken id."""

    @abc.abstractmethod
    async def pair_board(
        self,
        board_id: str,
        user_id: str,
        pairing_code_hash: str,
        name: str,
        when: datetime | None = None,
    ) -> Board:
        """Make `user_id` the owner of a provisioned board, named `name`, if the code matches.

        The code is single-use: pairing forgets it. `ForbiddenError` for an unknown board or a
        wrong (or already used) code, the same answer for both; `ConflictError` if the board
        has an owner (only a release by that owner frees it); `BadRequestError` for an empty
        code hash or a bad name; `NotFoundError` if the user does not exist.
        """

    @abc.abstractmethod
    async def release_board(
        self, board_id: str, owner_id: str, pairing_code_hash: str, secret_hash: str
    ) -> Board:
        """The owner gives the board up: it has no owner again, waits for a new pairing code
        and gets a new agent secret (whoever had the old one can no longer act as the
        station). Its grants, blocks, bookings and TX log go, its name, locator, bands, price
        and public flag are reset. `NotFoundError` unless `owner_id` owns the board."""

    @abc.abstractmethod
    async def set_board_secret(
        self, board_id: str, secret_hash: str, *, owner_id: str | None = None
    ) -> Board:
        """Replace the board's agent secret (its hash): the old secret opens no connection
        from now on; nothing else of the board changes. With `owner_id`, only while that user
        owns the board (checked in the same statement: a board released meanwhile keeps the
        secret its release gave it); without, any board, paired or not (an administrator's
        `radiocore board rotate-secret`). `NotFoundError` for no such board (or not owned by
        `owner_id`); `BadRequestError` for an empty hash."""

    @abc.abstractmethod
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
        """Change the fields given (validated and canonicalised: see `canonical_locator`,
        `canonical_bands`, `canonical_price`); the board as stored. `NotFoundError` if there
        is no such board."""

    @abc.abstractmethod
    async def get_board(self, board_id: str) -> Board | None: ...

    @abc.abstractmethod
    async def board_ids(self) -> list[str]:
        """Every board's id, sorted (`GET /metrics`: one series per board)."""

    @abc.abstractmethod
    async def boards_of(self, owner_id: str) -> list[Board]:
        """The owner's boards, oldest first."""

    @abc.abstractmethod
    async def public_boards(
        self,
        locator_prefix: str | None = None,
        bands: tuple[str, ...] | list[str] = (),
        limit: int = 100,
    ) -> list[Board]:
        """Public, owned boards, oldest first: with `locator_prefix`, those whose locator starts
        with it (case-insensitive, `canonical_locator_prefix`); with `bands`, those listing at
        least one of them. `limit` is clamped to 1 … 1000."""

    @abc.abstractmethod
    async def touch_board(self, board_id: str, when: datetime) -> None:
        """Record that the board's agent was seen at `when`; `NotFoundError` if no such board."""

    # -- grants and blocks --------------------------------------------------------------------

    @abc.abstractmethod
    async def set_grant(self, board_id: str, user_id: str, right: Right | None) -> None:
        """Give `user_id` a right on the board, or take it away (None). `ConflictError` if the
        user is blocked from the board; `NotFoundError` if the board or user does not exist."""

    @abc.abstractmethod
    async def grant_of(self, board_id: str, user_id: str) -> Right | None: ...

    @abc.abstractmethod
    async def boards_granted_to(self, user_id: str) -> list[tuple[Board, Right]]:
        """Boards of other owners the user has a right on."""

    @abc.abstractmethod
    async def grantees(self, board_id: str) -> list[str]:
        """User ids with a right on the board (not the owner)."""

    @abc.abstractmethod
    async def block_user(self, board_id: str, user_id: str, when: datetime | None = None) -> None:
        """Bar `user_id` from the board: their grant goes, their bookings that have not ended
        by `when` are cancelled, and they can book no more. Idempotent. `BadRequestError` for
        the board's owner; `NotFoundError` if the board or user does not exist."""

    @abc.abstractmethod
    async def unblock_user(self, board_id: str, user_id: str) -> None:
        """Lift a block (nothing it cancelled comes back); no error if there was none."""

    @abc.abstractmethod
    async def is_blocked(self, board_id: str, user_id: str) -> bool: ...

    @abc.abstractmethod
    async def blocked_users(self, board_id: str) -> list[str]:
        """User ids blocked from the board."""

    @abc.abstractmethod
    async def boards_blocking(self, user_id: str) -> list[str]:
        """Board ids the user is blocked from."""

    # -- bookings -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_booking(
        self, board_id: str, user_id: str, starts_at: datetime, ends_at: datetime
    ) -> Booking:
        """Book [starts_at, ends_at) of an owned board for `user_id`, at the board's price.

        The database itself refuses an overlap with another active booking of the board,
        also under concurrent requests: `ConflictError`. Adjacent bookings (one ends when the
        next starts) do not overlap. `BadRequestError` unless `ends_at` is after `starts_at`;
        `NotFoundError` for an unknown (or unpaired) board or user; `ForbiddenError` if the
        user is blocked from the board.
        """

    @abc.abstractmethod
    async def get_booking(self, booking_id: str) -> Booking | None: ...

    @abc.abstractmethod
    async def cancel_booking(self, booking_id: str, when: datetime | None = None) -> Booking:
        """Cancel the booking (its slot is free again); cancelling twice keeps the first time.
        `NotFoundError` if there is no such booking."""

    @abc.abstractmethod
    async def bookings_of_user(
        self, user_id: str, *, include_cancelled: bool = False
    ) -> list[Booking]:
        """The user's bookings, earliest start first."""

    @abc.abstractmethod
    async def bookings_of_board(
        self,
        board_id: str,
        *,
        ending_after: datetime | None = None,
        include_cancelled: bool = False,
    ) -> list[Booking]:
        """The board's bookings (with `ending_after`: those that end after it), earliest
        start first."""

    @abc.abstractmethod
    async def booking_at(self, board_id: str, when: datetime) -> Booking | None:
        """The board's active booking whose window contains `when` (there is at most one)."""

    # -- refresh tokens -----------------------------------------------------------------------

    @abc.abstractmethod
    async def create_refresh_token(
        self, user_id: str, token_hash: str, expires_at: datetime, when: datetime | None = None
    ) -> RefreshToken:
        """A new refresh token (a sign-in): the first of a new family. `NotFoundError` if the
        user does not exist, `ConflictError` if the hash is already stored."""

    @abc.abstractmethod
    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    @abc.abstractmethod
    async def rotate_refresh_token(
        self,
        token_hash: str,
        new_token_hash: str,
        expires_at: datetime,
        when: datetime | None = None,
    ) -> RefreshToken:
        """Use a refresh token: it is revoked (reason `rotated`) and the new one, of the same
        family, returned. `AuthError` for an unknown, expired or revoked token; a token that
        was already rotated is being reused (stolen?): its whole family is revoked (reason
        `reused`) before the `AuthError`."""

    @abc.abstractmethod
    async def revoke_refresh_family(
        self, family_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        """Revoke every live token of the family (sign-out); how many were live."""

    @abc.abstractmethod
    async def revoke_refresh_tokens_of(
        self, user_id: str, reason: str = "signed_out", when: datetime | None = None
    ) -> int:
        """Revoke every live token of the user (sign out everywhere); how many were live."""

    @abc.abstractmethod
    async def refresh_tokens_of(self, user_id: str) -> list[RefreshToken]:
        """The user's tokens, oldest first."""

    @abc.abstractmethod
    async def purge_refresh_tokens(self, expired_before: datetime) -> int:
        """Delete tokens that expired before `expired_before`; how many."""

    # -- subscriptions ------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_subscription(self, user_id: str) -> Subscription | None: ...

    @abc.abstractmethod
    async def set_subscription(
        self,
        user_id: str,
        tier: str,
        status: str,
        expires_at: datetime | None,
        when: datetime | None = None,
    ) -> Subscription:
        """Create or replace the user's subscription. `BadRequestError` for a tier that is not
        a short lower-case identifier or a status not in `SUBSCRIPTION_STATUSES`;
        `NotFoundError` if the user does not exist."""

    # -- the TX audit log ---------------------------------------------------------------------

    @abc.abstractmethod
    async def start_tx(
        self, board_id: str, user_id: str | None, callsign: str, started_at: datetime
    ) -> int:
        """Record that a transmission started; its id, for `end_tx`."""

    @abc.abstractmethod
    async def end_tx(self, tx_id: int, ended_at: datetime, reason: str) -> None: ...

    @abc.abstractmethod
    async def close_open_tx(self, ended_at: datetime, reason: str) -> int:
        """End every transmission still recorded as on air (a server that stopped without
        closing them: it crashed); how many there were."""

    @abc.abstractmethod
    async def settle_open_tx(self, board_id: str, reason: str, released_at: datetime) -> int:
        """The station reports it confirmed its transmitter unkeyed at `released_at`: the
        board's records closed with `reason` (by `close_open_tx`) that started before and
        were closed later than that end at `released_at` instead; how many changed."""

    @abc.abstractmethod
    async def tx_sessions(self, board_id: str, limit: int = 100) -> list[TxSession]:
        """The board's transmissions, newest first."""

    @abc.abstractmethod
    async def tx_sessions_by_user(self, user_id: str, limit: int = 1000) -> list[TxSession]:
        """The user's transmissions on any board, newest first."""

    # -- export -------------------------------------------------------------------------------

    async def export_user(self, user_id: str) -> dict[str, object]:
        """Everything stored about the user, as JSON-ready values (strings, numbers, lists,
        dicts): the account, subscription, boards they own (with those boards' grants, blocks,
        bookings and TX log), rights granted to them, boards that block them, their bookings,
        refresh tokens (never the hashes) and transmissions. `NotFoundError` if no such
        user."""
        user = await self.get_user(user_id)
        if user is None:
            raise NotFoundError("no such user")
        boards = []
        for board in await self.boards_of(user_id):
            grants = [
                {"user_id": grantee, "right": await self.grant_of(board.id, grantee)}
                for grantee in await self.grantees(board.id)
            ]
            bookings = await self.bookings_of_board(board.id, include_cancelled=True)
            boards.append(
                {
                    **_board_json(board),
                    "grants": grants,
                    "blocked_user_ids": await self.blocked_users(board.id),
                    "bookings": [_booking_json(b) for b in bookings],
                    "tx_log": [_tx_json(t) for t in await self.tx_sessions(board.id, 1000)],
                }
            )
        subscription = await self.get_subscription(user_id)
        return {
            "user": {
                "id": user.id,
                "email": user.email,
                "callsign": user.callsign,
                "created_at": _json_time(user.created_at),
                "password": "stored only as a scrypt hash, not exported",
            },
            "subscription": None if subscription is None else _subscription_json(subscription),
            "boards": boards,
            "granted_to_me": [
                {"board_id": board.id, "board_name": board.name, "right": right}
                for board, right in await self.boards_granted_to(user_id)
            ],
            "blocked_from_board_ids": await self.boards_blocking(user_id),
            "bookings": [
                _booking_json(b)
                for b in await self.bookings_of_user(user_id, include_cancelled=True)
            ],
            "refresh_tokens": [_token_json(t) for t in await self.refresh_tokens_of(user_id)],
            "transmissions": [_tx_json(t) for t in await self.tx_sessions_by_user(user_id)],
        }


# -- validation shared by the implementations -------------------------------------------------


def normalize_email(email: str) -> str:
    return email.strip().lower()


def canonical_board_id(board_id: str) -> str:
    """`board_id` as a lower-case UUID with dashes; `BadRequestError` if it is not a UUID."""
    try:
        return str(uuid.UUID(board_id))
    except ValueError:
        raise BadRequestError("board id is not a UUID") from None


def canonical_board_name(name: str) -> str:
    """`name` stripped; `BadRequestError` unless it has 1 … `MAX_BOARD_NAME_CHARS` characters."""
    stripped = name.strip()
    if not stripped or len(stripped) > MAX_BOARD_NAME_CHARS:
        raise BadRequestError(f"name must have 1 … {MAX_BOARD_NAME_CHARS} characters")
    return stripped


def canonical_price(price: Decimal | None) -> Decimal | None:
    """An hourly price in euros with whole cents (0 … `MAX_PRICE_EUR`), or None (free)."""
    if price is None:
        return None
    try:
        value = Decimal(price)
        cents = value.quantize(_CENT)
    except (InvalidOperation, TypeError, ValueError):
        raise BadRequestError("price_eur must be a number of euros") from None
    if not value.is_finite() or cents != value or not 0 <= value <= MAX_PRICE_EUR:
        raise BadRequestError(
            f"price_eur must be 0 … {MAX_PRICE_EUR} euros with at most two decimals"
        )
    return cents


def check_subscription(tier: str, status: str) -> None:
    if not isinstance(tier, str) or not _TIER.fullmatch(tier):
        raise BadRequestError("tier must be a lower-case identifier of 1 … 32 characters")
    if status not in SUBSCRIPTION_STATUSES:
        raise BadRequestError(f"status must be one of {', '.join(SUBSCRIPTION_STATUSES)}")


def check_window(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    if ends_at <= starts_at:
        raise BadRequestError("ends_at must be after starts_at")


def booking_price(hourly: Decimal | None, starts_at: datetime, ends_at: datetime) -> Decimal | None:
    """What a booking costs at `hourly` euros per hour, rounded to the cent (None: free)."""
    if hourly is None:
        return None
    hours = Decimal((ends_at - starts_at) // timedelta(microseconds=1)) / Decimal(3_600_000_000)
    return (hourly * hours).quantize(_CENT, rounding=ROUND_HALF_UP)


def check_hash(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{what} is missing")


# -- JSON forms for the export ----------------------------------------------------------------


def _json_time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _json_price(price: Decimal | None) -> str | None:
    return None if price is None else str(price)


def _board_json(board: Board) -> dict[str, object]:
    return {
        "id": board.id,
        "name": board.name,
        "locator": board.locator,
        "bands": list(board.bands),
        "public": board.public,
        "price_eur": _json_price(board.price_eur),
        "created_at": _json_time(board.created_at),
        "paired_at": _json_time(board.paired_at),
        "last_seen": _json_time(board.last_seen),
    }


def _booking_json(booking: Booking) -> dict[str, object]:
    return {
        "id": booking.id,
        "board_id": booking.board_id,
        "user_id": booking.user_id,
        "starts_at": _json_time(booking.starts_at),
        "ends_at": _json_time(booking.ends_at),
        "price_eur": _json_price(booking.price_eur),
        "created_at": _json_time(booking.created_at),
        "cancelled_at": _json_time(booking.cancelled_at),
    }


def _token_json(token: RefreshToken) -> dict[str, object]:
    return {
        "id": token.id,
        "family_id": token.family_id,
        "parent_id": token.parent_id,
        "created_at": _json_time(token.created_at),
        "expires_at": _json_time(token.expires_at),
        "revoked_at": _json_time(token.revoked_at),
        "revoked_reason": token.revoked_reason,
    }


def _subscription_json(subscription: Subscription) -> dict[str, object]:
    return {
        "tier": subscription.tier,
        "status": subscription.status,
        "expires_at": _json_time(subscription.expires_at),
        "updated_at": _json_time(subscription.updated_at),
    }


def _tx_json(tx: TxSession) -> dict[str, object]:
    return {
        "id": tx.id,
        "board_id": tx.board_id,
        "user_id": tx.user_id,
        "callsign": tx.callsign,
        "started_at": _json_time(tx.started_at),
        "ended_at": _json_time(tx.ended_at),
        "reason": tx.reason,
    }
