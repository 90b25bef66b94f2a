"""What the server stores, behind one interface: `Store`, and the values it returns.

Implementations: `SqliteStore` (`signaling.store.sqlite`, the embedded default); PostgreSQL comes
behind the same interface, so nothing outside this package speaks SQL. Values come back as
frozen `User`, `Board` and `TxSession` dataclasses with UTC timestamps; hashes stay out of their
reprs.

Conventions: `get_*` return None for an absent row; changing an absent row raises
`NotFoundError`; a clash with a stored row raises `ConflictError`.
"""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Final, Literal, Self, TypeAlias

from signaling.errors import (
    BadRequestError,
)

#: What a grant lets a user do on someone else's board. The owner may do everything.
Right: TypeAlias = Literal["listen", "transmit"]
RIGHTS: Final = ("listen", "transmit")


@dataclass(frozen=True)
class User:
    id: str
    email: str  # lower-cased
    callsign: str
    created_at: datetime
    password_hash: str = field(repr=False)


@dataclass(frozen=True)
class Board:
    id: str  # UUID, lower-case with dashes
    owner_id: str
    name: str
    created_at: datetime
    secret_hash: str = field(repr=False)
    location: str | None = None  # Maidenhead locator
    public: bool = False
    last_seen: datetime | None = None


class Store(abc.ABC):
    """Accounts, boards, grants and the TX audit log.

    Use as `async with store:` or call `open()` / `close()`.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if it is missing (idempotent)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection; safe to call twice."""

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

    @abc.abstractmethod
    async def create_user(self, email: str, password_hash: str, callsign: str) -> User:
        """A new user; `ConflictError` if the email (compared lower-cased) is registered."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    async def get_user_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    async def delete_user(self, user_id: str) -> None:
        """Delete the user and, with it, their boards; `NotFoundError` if there is none."""

    @abc.abstractmethod
    async def create_board(
        self, owner_id: str, name: str, secret_hash: str, board_id: str | None = None
    ) -> Board:
        """A new board of `owner_id` (`board_id` from its QR code, else a fresh UUID).

        `BadRequestError` if `board_id` is not a UUID, `NotFoundError` if the owner does not
        exist, `ConflictError` if the board id is taken.
        """

    @abc.abstractmethod
    async def get_board(self, board_id: str) -> Board | None: ...

    @abc.abstractmethod
    async def boards_of(self, owner_id: str) -> list[Board]:
        """The owner's boards, oldest first."""

    @abc.abstractmethod
    async def touch_board(self, board_id: str, when: datetime) -> None:
        """Record that the board's agent was seen at `when`; `NotFoundError` if no such board."""

    @abc.abstractmethod
    async def set_grant(self, board_id: str, user_id: str, right: Right | None) -> None:
        """Give `user_id` a right on the board, or take it away (None)."""

    @abc.abstractmethod
    async def grant_of(self, board_id: str, user_id: str) -> Right | None: ...

    @abc.abstractmethod
    async def boards_granted_to(self, user_id: str) -> list[tuple[Board, Right]]:
        """Boards of other owners the user has a right on."""

    @abc.abstractmethod
    async def grantees(self, board_id: str) -> list[str]:
        """User ids with a right on the board (not the owner)."""

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


def normalize_email(email: str) -> str:
    return email.strip().lower()


def canonical_board_id(board_id: str) -> str:
    """`board_id` as a lower-case UUID with dashes; `BadRequestError` if it is not a UUID."""
    try:
        return str(uuid.UUID(board_id))
    except ValueError:
        raise BadRequestError("board id is not a UUID") from None
