"""Creating accounts and registering boards: the one way every caller does it.

The `radiocore user add` / `board add` commands, the demo, the benchmarks and the tests all
provision through these functions (and the REST registration and pairing will), so a password
rule or the form of a board secret is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from signaling.auth import hash_board_secret, hash_password_async, new_board_secret
from signaling.errors import BadRequestError
from signaling.store import Board, Store, User

#: The shortest password an account may have.
MIN_PASSWORD_CHARS: Final = 8


@dataclass(frozen=True)
class RegisteredBoard:
    """A board just registered, and its secret: shown once, then kept only as a hash."""

    board: Board
    secret: str = field(repr=False)


async def create_account(store: Store, email: str, password: str, callsign: str) -> User:
    """A new operator account; `BadRequestError` for a short password, `ConflictError` for an
    email already registered."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadRequestError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return await store.create_user(email, await hash_password_async(password), callsign)


async def register_board(
    store: Store, owner_id: str, name: str, board_id: str | None = None
) -> RegisteredBoard:
    """A new board of `owner_id` with a fresh secret (`board_id`: from its sticker, else new)."""
    secret = new_board_secret()
    board = await store.create_board(owner_id, name, hash_board_secret(secret), board_id)
    return RegisteredBoard(board, secret)
