"""Accounts, sign-ins and boards: the one way every caller does it.

The `radiocore user add` / `board add` commands, the REST API (registration, sign-in, pairing),
the demo, the benchmarks and the tests all go through these functions, so a password rule, the
form of a board secret or how a refresh token rotates is decided in one place.

A sign-in (`sign_in`) is a short access JWT and a refresh token: 256 random bits given to the
client once and stored only as its SHA-256, the first of a *family*. `refresh_session` spends
the refresh token for a new access token and a new refresh token of the same family (rotation);
spending one twice means it was copied, and the store revokes the whole family, so the thief
and the legitimate holder are both signed out (`Store.rotate_refresh_token`). `sign_out`
revokes a family, `sign_out_everywhere` all of a user's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from signaling.auth import (
    MAX_REFRESH_TOKEN_CHARS,
    JwtAuthority,
    OperatorIdentity,
    hash_board_secret,
    hash_password_async,
    hash_refresh_token,
    new_board_secret,
    new_refresh_token,
    verify_password_async,
)
from signaling.errors import AuthError, BadRequestError, ForbiddenError
from signaling.store import Board, Store, User, canonical_board_id
from signaling.validation import (
    MIN_PASSWORD_CHARS,
    validate_callsign,
    validate_email,
    validate_password,
)

__all__ = [
    "MIN_PASSWORD_CHARS",
    "PAIRING_CODE_ALPHABET",
    "PAIRING_CODE_CHARS",
    "ProvisionedBoard",
    "RegisteredBoard",
    "SignedIn",
    "create_account",
    "delete_account",
    "hash_pairing_code",
    "new_pairing_code",
    "pair_board",
    "provision_board",
    "refresh_session",
    "register_board",
    "release_board",
    "rotate_board_secret",
    "sign_in",
    "sign_out",
    "sign_out_everywhere",
]

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
    """A new operator account, its email, password and callsign checked by
    `signaling.validation` (`ValidationFailedError` naming the field: a password of fewer than
    `MIN_PASSWORD_CHARS` characters, a callsign that is not an amateur callsign, …; the callsign
    is kept upper-case); `ConflictError` for an email already registered."""
    email = validate_email(email)
    validate_password(password)
    callsign = validate_callsign(callsign)
    return await store.create_user(email, await hash_password_async(password), callsign)


async def delete_account(store: Store, user_id: str, password: str) -> list[str]:
    """Delete the account and everything of it (`Store.delete_user`), if `password` is its
    password (re-typed: a stolen access token alone cannot delete an account); the ids of the
    boards that went with it. `ForbiddenError` for a wrong password, `AuthError` if the
    account is already gone."""
    user = await store.get_user(user_id)
    if not await verify_password_async(password, user.password_hash if user else None):
        if user is None:
            raise AuthError("the account no longer exists")
        raise ForbiddenError("wrong password; the account was not deleted")
    boards = [board.id for board in await store.boards_of(user_id)]
    await store.delete_user(user_id)
    return boards


# -- sign-ins: access and refresh tokens ------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """What a sign-in or a refresh gives the client: both tokens are shown once."""

    user_id: str
    callsign: str
    access_token: str = field(repr=False)
    #: Seconds the access token stays valid.
    expires_in: int
    refresh_token: str = field(repr=False)
    #: Seconds the refresh token stays valid unused.
    refresh_expires_in: int


async def sign_in(
    store: Store, authority: JwtAuthority, user: User, refresh_ttl_s: int, now: datetime
) -> SignedIn:
    """A new sign-in of `user` (whose password was checked): an access token and the first
    refresh token of a new family, valid `refresh_ttl_s` from `now`."""
    refresh = new_refresh_token()
    await store.create_refresh_token(
        user.id, hash_refresh_token(refresh), now + timedelta(seconds=refresh_ttl_s), when=now
    )
    return _signed_in(authority, user, refresh, refresh_ttl_s)


async def refresh_session(
    store: Store, authority: JwtAuthority, refresh_token: str, refresh_ttl_s: int, now: datetime
) -> SignedIn:
    """Spend `refresh_token`: a new access token and a new refresh token of its family (valid
    `refresh_ttl_s` from `now`); the spent one is revoked. `AuthError` for an unknown, expired
    or revoked token; one spent before (copied) revokes its whole family first."""
    if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_CHARS:
        raise AuthError("unknown refresh token")
    fresh = new_refresh_token()
    rotated = await store.rotate_refresh_token(
        hash_refresh_token(refresh_token),
        hash_refresh_token(fresh),
        now + timedelta(seconds=refresh_ttl_s),
        when=now,
    )
    user = await store.get_user(rotated.user_id)
    if user is None:  # deleted meanwhile (its tokens went with it)
        raise AuthError("the account no longer exists")
    return _signed_in(authority, user, fresh, refresh_ttl_s)


async def sign_out(store: Store, refresh_token: str, now: datetime) -> bool:
    """Revoke the family of `refresh_token` (that sign-in, on every token it rotated to);
    whether there was such a token. Idempotent."""
    if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_CHARS:
        return False
    stored = await store.get_refresh_token(hash_refresh_token(refresh_token))
    if stored is None:
        return False
    await store.revoke_refresh_family(stored.family_id, "signed_out", when=now)
    return True


async def sign_out_everywhere(store: Store, user_id: str, now: datetime) -> int:
    """Revoke every sign-in of the user; how many live refresh tokens there were. (Access
    tokens already issued stay valid until they expire: minutes.)"""
    return await store.revoke_refresh_tokens_of(user_id, "signed_out_everywhere", when=now)


def _signed_in(authority: JwtAuthority, user: User, refresh: str, refresh_ttl_s: int) -> SignedIn:
    token = authority.issue(OperatorIdentity(user_id=user.id, callsign=user.callsign))
    return SignedIn(user.id, user.callsign, token, authority.ttl_s, refresh, refresh_ttl_s)


async def register_board(
    store: Store, owner_id: str, name: str, board_id: str | None = None
) -> RegisteredBoard:
    """A new board of `owner_id` with a fresh secret (`board_id`: from its sticker, else new)."""
    secret = new_board_secret()
    board = await store.create_board(owner_id, name, hash_board_secret(secret), board_id)
    return RegisteredBoard(board, secret)


async def rotate_board_secret(
    store: Store, board_id: str, owner_id: str | None = None
) -> RegisteredBoard:
    """A new agent secret for the board, shown once (kept only as its hash): the old one opens
    no connection from now on (the caller disconnects an agent connected with it). With
    `owner_id`, only while that user owns the board; without, any board (an administrator).
    `NotFoundError` for no such board (or not `owner_id`'s), `BadRequestError` for an id that
    is not a UUID."""
    secret = new_board_secret()
    board = await store.set_board_secret(
        canonical_board_id(board_id), hash_board_secret(secret), owner_id=owner_id
    )
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
