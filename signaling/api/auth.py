"""Signing in: `POST /api/auth/login`."""

from __future__ import annotations

import logging

import msgspec

from signaling import keys
from signaling.api.http import API, Call
from signaling.auth import OperatorIdentity, verify_password_async
from signaling.errors import AuthError

logger = logging.getLogger(__name__)


class LoginRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: str
    password: str


class LoginReply(msgspec.Struct, frozen=True):
    #: The access token: `Authorization: Bearer <token>` on the API, `auth.token` on Socket.IO.
    token: str
    #: Seconds it stays valid.
    expires_in: int
    callsign: str


@API.endpoint(
    "POST",
    "/api/auth/login",
    summary="Sign in with email and password; an access token",
    tag="auth",
    request=LoginRequest,
    response=LoginReply,
    auth=False,
)
async def login(call: Call) -> LoginReply:
    body: LoginRequest = call.body
    store = call.app[keys.STORE]
    user = await store.get_user_by_email(body.email)
    # verify against a hash even for an unknown user: no timing oracle for emails
    stored = user.password_hash if user is not None else None
    if not await verify_password_async(body.password, stored) or user is None:
        raise AuthError("wrong email or password")
    authority = call.app[keys.AUTHORITY]
    token = authority.issue(OperatorIdentity(user_id=user.id, callsign=user.callsign))
    logger.info("operator %s logged in", user.callsign)
    return LoginReply(token=token, expires_in=authority.ttl_s, callsign=user.callsign)
