"""Creating accounts and registering boards: the one way every caller does it.

The `radiocore user add` / `board add` commands, the demo, the benchmarks and the tests all
provision through these functions (and the REST registration and pairing will), so a password
rule or the form of a board secret is decided in one place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from signaling.auth import hash_board_secret, hash_password_async, new_board_secret
from signaling.errors import BadRequestError
from signaling.store import Board, Store, User, canonical_board_id

#: The shortest password an account may have.
MIN_PASSWORD_CHARS: Final = 8
#: Pairing codes (printed on a board's sticker): 12 characters from an alphabet without the
#: look-alikes 0/O, 1/I/L and U, in groups of four (`7KQ2-M9XD-R4TB`), about 59 random bits.
PAIRING_CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
PAIRING_CODE_CHARS: Final = 12


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


@dataclass(frozen=True)
class ProvisionedBoard:
    """A board waiting for its owner: its agent secret and pairing code, shown once (the
    sticker and the agent's configuration), then kept only as hashes."""

    board: Board
    secret: str = field(repr=False)
    pairing_code: str = field(repr=False)


def new_pairing_code() -> str:
    """A fresh pairing code, `XXXX-XXXX-XXXX`."""
    chars = "".join(secrets.choice(PAIRING_CODE_ALPHABET) for _ in range(PAIRING_CODE_CHARS))
    return "-".join(chars[i : i + 4] for i in range(0, PAIRING_CODE_CHARS, 4))


def hash_pairing_code(code: str) -> str:
    """The stored form of a pairing code: SHA-256 of it upper-cased without dashes or blanks
    (so `7kq2 m9xd r4tb` typed by hand matches). Like a board secret, a fast hash: the code is
    random, single-use and pairing attempts are rate-limited."""
    return hash_board_secret("".join(code.split()).replace("-", "").upper())


async def provision_board(store: Store, board_id: str | None = None) -> ProvisionedBoard:
    """A new board with no owner, a fresh agent secret and a fresh pairing code."""
    secret, code = new_board_secret(), new_pairing_code()
    board = await store.provision_board(
        hash_board_secret(secret), hash_pairing_code(code), board_id
    )
    return ProvisionedBoard(board, secret, code)


async def pair_board(store: Store, board_id: str, user_id: str, code: str, name: str) -> Board:
    """`user_id` becomes the owner of a provisioned board, given the code from its sticker
    (see `Store.pair_board` for the refusals); `BadRequestError` if the code is missing."""
    if not code or not code.strip():
        raise BadRequestError("the pairing code is missing")
    return await store.pair_board(
        canonical_board_id(board_id), user_id, hash_pairing_code(code), name
    )


async def release_board(store: Store, board_id: str, owner_id: str) -> ProvisionedBoard:
    """The owner gives the board up: a new pairing code and agent secret, shown once."""
    secret, code = new_board_secret(), new_pairing_code()
    board = await store.release_board(
        canonical_board_id(board_id), owner_id, hash_pairing_code(code), hash_board_secret(secret)
    )
    return ProvisionedBoard(board, secret, code)
