"""Accounts and sign-ins: `POST /api/auth/register`, `login`, `refresh`, `logout` and
`logout-all` (docs/protocol.md, REST).

A sign-in is a short access JWT (`jwt_ttl_s`, 15 minutes by default) and a refresh token
(`refresh_ttl_s`, 30 days unused): `refresh` spends the refresh token for a new pair (rotation;
a token spent twice revokes its whole family: `signaling.accounts`). Sign-ins and registrations
are rate-limited per client address (`app[keys.LIMITS]`), every attempt counting, good or bad.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeAlias

import msgspec
from aiohttp import web

from signaling import keys
from signaling.accounts import (
    SignedIn,
    create_account,
    refresh_session,
    sign_in,
    sign_out,
    sign_out_everywhere,
)
from signaling.api.http import API, Call
from signaling.auth import verify_password_async
from signaling.errors import AuthError, ValidationFailedError
from signaling.ratelimit import address_key
from signaling.store import User
from signaling.validation import validate_callsign, validate_email, validate_password

logger = logging.getLogger(__name__)

#: UTC now: what refresh tokens' lifetimes are counted by.
Clock: TypeAlias = Callable[[], datetime]
#: The app's clock for sign-ins, if not the system's (tests set one before the app starts).
CLOCK: Final[web.AppKey[Clock]] = web.AppKey("auth_clock")


def utc_now() -> datetime:
    return datetime.now(UTC)


def now(app: web.Application) -> datetime:
    """The time by the app's sign-in clock."""
    return app.get(CLOCK, utc_now)()


class RegisterRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: str
    #: 10 … 1024 characters, anything allowed.
    password: str
    #: An amateur radio callsign (DL1ABC, G4ABC/P, VK2/G4ABC); kept upper-case.
    callsign: str


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: str
    password: str


class RefreshRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: The refresh token of the last sign-in or refresh (each can be spent once).
    refresh_token: str


class SessionReply(msgspec.Struct, frozen=True):
    """A sign-in: what registering, signing in and refreshing answer."""

    #: The access token: `Authorization: Bearer <token>` on the API, `auth.token` on Socket.IO.
    token: str
    #: Seconds the access token stays valid.
    expires_in: int
    callsign: str
    user_id: str
    #: Spend it at `POST /api/auth/refresh` for new tokens, once; keep it out of storage a
    #: script can read (the console keeps it in memory).
    refresh_token: str
    #: Seconds the refresh token stays valid unused.
    refresh_expires_in: int


#: The sign-in reply (its former name).
LoginReply = SessionReply


async def _new_session(call: Call, user: User) -> SessionReply:
    """A new sign-in of `user` (registered or logged in): an access and a refresh token."""
    signed = await sign_in(
        call.app[keys.STORE],
        call.app[keys.AUTHORITY],
        user,
        call.app[keys.CONFIG].refresh_ttl_s,
        now(call.app),
    )
    return _reply(signed)


def _reply(signed: SignedIn) -> SessionReply:
    return SessionReply(
        token=signed.access_token,
        expires_in=signed.expires_in,
        callsign=signed.callsign,
        user_id=signed.user_id,
        refresh_token=signed.refresh_token,
        refresh_expires_in=signed.refresh_expires_in,
    )


@API.endpoint(
    "POST",
    "/api/auth/register",
    summary="Create an account; signed in at once (access and refresh token)",
    tag="auth",
    request=RegisterRequest,
    response=SessionReply,
    status=201,
    auth=False,
    errors=(409, 429, 503),
    description=(
        "422 names the field whose value is refused (email, password: 10 … 1024 characters, "
        "callsign: an amateur callsign); 409 `conflict` for an email already registered; 429 "
        "when this address registered too many accounts lately (Retry-After)."
    ),
)
async def register(call: Call) -> SessionReply:
    body: RegisterRequest = call.body
    # checked before the rate limit: a typo costs no attempt
    email = validate_email(body.email)
    validate_password(body.password)
    callsign = validate_callsign(body.callsign)
    decision = await call.app[keys.LIMITS].registration.hit(address_key(call.remote))
    if not decision.allowed:
        raise decision.refusal("too many registrations from this address; try again later")
    store = call.app[keys.STORE]
    user = await create_account(store, email, body.password, callsign)
    logger.info("operator %s registered", user.callsign)
    return await _new_session(call, user)


@API.endpoint(
    "POST",
    "/api/auth/login",
    summary="Sign in with email and password; an access token and a refresh token",
    tag="auth",
    request=LoginRequest,
    response=SessionReply,
    auth=False,
    errors=(401, 429, 503),
    description=(
        "At most [limits] login_per_minute attempts a minute (5 by default) per client "
        "address, successful ones included (429 with Retry-After)."
    ),
)
async def login(call: Call) -> SessionReply:
    body: LoginRequest = call.body
    decision = await call.app[keys.LIMITS].login.hit(address_key(call.remote))
    if not decision.allowed:
        raise decision.refusal("too many sign-in attempts from this address; try again later")
    store = call.app[keys.STORE]
    try:
        email: str | None = validate_email(body.email)
    except ValidationFailedError:
        email = None  # no such account can exist: the same answer as for a wrong password
    user = await store.get_user_by_email(email) if email is not None else None
    # verify against a hash even for an unknown user: no timing oracle for emails
    stored = user.password_hash if user is not None else None
    if not await verify_password_async(body.password, stored) or user is None:
        raise AuthError("wrong email or password")
    logger.info("operator %s logged in", user.callsign)
    return await _new_session(call, user)


@API.endpoint(
    "POST",
    "/api/auth/refresh",
    summary="Spend a refresh token for a new access token and a new refresh token",
    tag="auth",
    request=RefreshRequest,
    response=SessionReply,
    auth=False,
    errors=(401,),
    description=(
        "The refresh token is spent: the reply carries its successor. 401 for an unknown, "
        "expired or revoked token; a token spent a second time (copied) revokes its whole "
        "sign-in, so its successors stop working too."
    ),
)
async def refresh(call: Call) -> SessionReply:
    body: RefreshRequest = call.body
    try:
        signed = await refresh_session(
            call.app[keys.STORE],
            call.app[keys.AUTHORITY],
            body.refresh_token,
            call.app[keys.CONFIG].refresh_ttl_s,
            now(call.app),
        )
    except AuthError as exc:
        logger.info("refresh refused: %s", exc.message)
        raise
    return _reply(signed)


@API.endpoint(
    "POST",
    "/api/auth/logout",
    summary="Sign out: revoke this sign-in's refresh tokens",
    tag="auth",
    request=RefreshRequest,
    auth=False,
    description=(
        "Always 204, also for a token that is unknown, expired or already revoked. Access "
        "tokens already issued stay valid until they expire (jwt_ttl_s)."
    ),
)
async def logout(call: Call) -> None:
    body: RefreshRequest = call.body
    if await sign_out(call.app[keys.STORE], body.refresh_token, now(call.app)):
        logger.info("a sign-in was signed out")


@API.endpoint(
    "POST",
    "/api/auth/logout-all",
    summary="Sign out everywhere: revoke every refresh token of the caller",
    tag="auth",
    description="Access tokens already issued stay valid until they expire (jwt_ttl_s).",
)
async def logout_all(call: Call) -> None:
    revoked = await sign_out_everywhere(call.app[keys.STORE], call.caller.user_id, now(call.app))
    logger.info("operator %s signed out everywhere (%d tokens)", call.caller.callsign, revoked)
