"""Accounts over the REST API, as a client sees them, on SQLite and on a real PostgreSQL (the
same tests, `server` is parametrized): registering, signing in, short access tokens and
rotating refresh tokens (reuse revokes the sign-in, expiry, sign-out, sign-out everywhere), the
rate limits on sign-in and registration, the export of everything stored about the caller and
the deletion of an account (with its live Socket.IO connections). Real HTTP through aiohttp on
loopback; the rate limiters and the refresh tokens' clock are the server's own, on a clock the
test moves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import msgspec
import pytest
import socketio
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import keys
from signaling.accounts import register_board
from signaling.api.auth import CLOCK, SessionReply
from signaling.api.me import ExportReply
from signaling.api.openapi import ErrorReply
from signaling.app import create_app
from signaling.auth import (
    RETIRED_KEY_MESSAGE,
    JwtAuthority,
    OperatorIdentity,
    hash_refresh_token,
    key_id,
)
from signaling.config import load_server_config
from signaling.ratelimit import (
    LOGIN_PER_ADDRESS,
    REGISTRATION_PER_ADDRESS,
    Limit,
    MemoryRateLimiter,
)
from signaling.store import Store
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.waiting import wait_for

SECRET = "api-auth-test-" + "Zq8wX3" * 8
#: The signing key the server moves to in the key-rotation tests (SECRET being the old one).
NEW_SECRET = "api-auth-rotated-" + "Pv4kY7" * 8
#: A key the server once signed with and no longer has.
RETIRED_SECRET = "api-auth-retired-" + "Hn2sT9" * 8
PASSWORD = "correct horse battery"
REFRESH_TTL_S = 3600
#: The login limit (5 a minute per address): a burst of 5, then one every 12 s.
LOGIN_INTERVAL_S = LOGIN_PER_ADDRESS.period_s / LOGIN_PER_ADDRESS.count
#: Plenty, for tests that are not about the limits.
GENEROUS = Limit(100_000, 1.0)


class FakeClock:
    """The server's clocks, moved by the test: monotonic seconds for the rate limiters, UTC
    for the refresh tokens' lifetimes."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.start = datetime.now(UTC)

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def utc(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    raw: bytes

    def error(self) -> Any:
        """The error body, decoded strictly as documented."""
        return msgspec.json.decode(self.raw, type=ErrorReply, strict=True).error

    def session(self) -> SessionReply:
        return msgspec.json.decode(self.raw, type=SessionReply, strict=True)


@dataclass
class Api:
    """A running server and a client of its API."""

    app: web.Application
    url: str
    clock: FakeClock
    http: aiohttp.ClientSession
    kind: str
    registered: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def store(self) -> Store:
        return self.app[keys.STORE]

    async def stop(self) -> None:
        """Stops this server (the database stays, for the next one `start` brings up)."""
        if self.runner is not None:
            await self.runner.cleanup()

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        data: bytes | None = None,
        http: aiohttp.ClientSession | None = None,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if data is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with (http or self.http).request(
            method, self.url + path, data=data, headers=headers
        ) as reply:
            raw = await reply.read()
            parsed = json.loads(raw) if raw else None
            return Reply(reply.status, parsed, dict(reply.headers), raw)

    async def register(self, email: str, callsign: str, password: str = PASSWORD) -> SessionReply:
        reply = await self.call(
            "POST",
            "/api/auth/register",
            {"email": email, "password": password, "callsign": callsign},
        )
        assert reply.status == 201, reply.body
        return reply.session()

    async def login(self, email: str, password: str = PASSWORD) -> SessionReply:
        reply = await self.call("POST", "/api/auth/login", {"email": email, "password": password})
        assert reply.status == 200, reply.body
        return reply.session()

    async def refresh(self, refresh_token: str) -> Reply:
        return await self.call("POST", "/api/auth/refresh", {"refresh_token": refresh_token})


Starter = Callable[..., Awaitable[Api]]


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """This test's database: "" for SQLite in the data directory, or a fresh PostgreSQL
    database (a real server, started once for the session)."""
    if request.param == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    async with fresh_database(server) as url:
        yield url


@pytest.fixture
async def start(database_url: str, tmp_path: Path) -> AsyncIterator[Starter]:
    """Starts the server on this test's database: `await start()` with the seed's rate limits,
    `start(generous=True)` with none in the way; both on a clock the test moves. `env` replaces
    or adds environment variables (another signing key)."""
    async with contextlib.AsyncExitStack() as stack:

        async def starter(*, generous: bool = False, env: Mapping[str, str] | None = None) -> Api:
            clock = FakeClock()
            environment = {"RADIOCORE_SECRET": SECRET, **(env or {})}
            if database_url:
                environment["RADIOCORE_DATABASE_URL"] = database_url
            config = load_server_config(
                None,
                environment,
                {
                    "host": "127.0.0.1",
                    "port": 0,
                    "data_dir": str(tmp_path),
                    "refresh_ttl_s": REFRESH_TTL_S,
                },
            )
            app = create_app(config)
            app[CLOCK] = clock.utc

            async def limits_on_the_test_clock(app: web.Application) -> None:
                login = GENEROUS if generous else LOGIN_PER_ADDRESS
                registration = GENEROUS if generous else REGISTRATION_PER_ADDRESS
                app[keys.LIMITS] = dataclasses.replace(
                    app[keys.LIMITS],
                    login=MemoryRateLimiter(login, clock=clock.monotonic),
                    registration=MemoryRateLimiter(registration, clock=clock.monotonic),
                )

            app.on_startup.append(limits_on_the_test_clock)  # runs after the app's own
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = int(runner.addresses[0][1])
            http = await stack.enter_async_context(aiohttp.ClientSession())
            kind = "postgres" if database_url else "sqlite"
            return Api(app, f"http://127.0.0.1:{port}", clock, http, kind, runner=runner)

        yield starter


@pytest.fixture
async def api(start: Starter) -> Api:
    return await start()


# -- registering --------------------------------------------------------------------------------


async def test_registering_signs_in_at_once(api: Api) -> None:
    reply = await api.call(
        "POST",
        "/api/auth/register",
        {"email": " Ham@Example.org", "password": PASSWORD, "callsign": "dl1abc/p"},
    )
    assert reply.status == 201
    session = reply.session()
    assert set(reply.body) == {
        "user_id", "callsign", "token", "expires_in", "refresh_token", "refresh_expires_in",
    }  # fmt: skip
    assert session.callsign == "DL1ABC/P"  # kept upper-case
    assert session.expires_in == 900  # short access tokens (jwt_ttl_s)
    assert session.refresh_expires_in == REFRESH_TTL_S
    identity = api.app[keys.AUTHORITY].verify(session.token)
    assert identity == OperatorIdentity(session.user_id, "DL1ABC/P")
    user = await api.store.get_user(session.user_id)
    assert user is not None and user.email == "ham@example.org"
    assert PASSWORD not in user.password_hash
    # the refresh token is stored only as its hash
    [token] = await api.store.refresh_tokens_of(session.user_id)
    assert await api.store.get_refresh_token(hash_refresh_token(session.refresh_token)) == token
    # and the new account signs in
    again = await api.login("ham@example.org")
    assert again.user_id == session.user_id and again.callsign == "DL1ABC/P"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"password": "short-pw"}, "password"),  # 8: the old minimum; now 10
        ({"password": "x" * 1025}, "password"),
        ({"callsign": "OP"}, "callsign"),
        ({"callsign": "X"}, "callsign"),
        ({"callsign": "DL1 ABC"}, "callsign"),
        ({"callsign": "DL1ABC\x00"}, "callsign"),
        ({"callsign": 7}, "callsign"),
        ({"callsign": None}, "callsign"),
        ({"admin": True}, "admin"),
    ],
)
async def test_registration_refuses_a_bad_value_naming_the_field(
    api: Api, changes: dict[str, object], field: str
) -> None:
    body: dict[str, object] = {"email": "new@example.org", "password": PASSWORD}
    body["callsign"] = "DL1NEW"
    body.update(changes)
    reply = await api.call("POST", "/api/auth/register", body)
    assert reply.status == 422, reply.body
    error = reply.error()
    assert (error.code, error.field) == ("bad_request", field)
    assert field in error.message
    assert PASSWORD not in error.message
    assert await api.store.get_user_by_email("new@example.org") is None


async def test_a_missing_field_is_named(api: Api) -> None:
    reply = await api.call("POST", "/api/auth/register", {"email": "a@example.org"})
    assert reply.status == 422
    assert reply.error().field == "password"


async def test_a_registered_email_is_a_conflict(api: Api) -> None:
    first = await api.register("taken@example.org", "DL1TKN")
    reply = await api.call(
        "POST",
        "/api/auth/register",
        {"email": "Taken@Example.ORG", "password": "another password", "callsign": "DL2TKN"},
    )
    assert reply.status == 409
    assert reply.error().code == "conflict"
    # the first account is untouched: its password still works, the second's does not
    assert (await api.login("taken@example.org")).user_id == first.user_id
    refused = await api.call(
        "POST", "/api/auth/login", {"email": "taken@example.org", "password": "another password"}
    )
    assert refused.status == 401


async def test_registration_is_rate_limited_per_address_and_recovers(api: Api) -> None:
    limit = REGISTRATION_PER_ADDRESS
    for n in range(limit.count):
        await api.register(f"club{n}@example.org", f"DL{n}CLB")
    refused = await api.call(
        "POST",
        "/api/auth/register",
        {"email": "late@example.org", "password": PASSWORD, "callsign": "DL1LAT"},
    )
    assert refused.status == 429
    assert refused.error().code == "rate_limited"
    assert int(refused.headers["Retry-After"]) == round(limit.period_s / limit.count)
    assert await api.store.get_user_by_email("late@example.org") is None
    # a typo is answered without spending an attempt (checked before the limit)
    typo = await api.call(
        "POST", "/api/auth/register", {"email": "x", "password": PASSWORD, "callsign": "DL1LAT"}
    )
    assert typo.status == 422
    api.clock.advance(limit.period_s / limit.count)
    await api.register("late@example.org", "DL1LAT")


# -- signing in -----------------------------------------------------------------------------


async def test_login_keeps_its_fields_and_adds_the_refresh_token(api: Api) -> None:
    registered = await api.register("op@example.org", "DL1OP")
    reply = await api.call(
        "POST", "/api/auth/login", {"email": "OP@example.org ", "password": PASSWORD}
    )
    assert reply.status == 200
    # what the console reads, and the refresh token
    assert {"token", "expires_in", "callsign", "refresh_token", "refresh_expires_in"} <= set(
        reply.body
    )
    session = reply.session()
    assert (session.callsign, session.expires_in) == ("DL1OP", 900)
    assert session.refresh_token != registered.refresh_token
    # each sign-in is a family of its own
    tokens = await api.store.refresh_tokens_of(registered.user_id)
    assert len({token.family_id for token in tokens}) == 2


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("op@example.org", "wrong password!"),
        ("nobody@example.org", PASSWORD),
        ("not an address", PASSWORD),
        ("op@example.org\x00", PASSWORD),
    ],
)
async def test_a_wrong_login_is_refused_without_saying_which_part(
    api: Api, email: str, password: str
) -> None:
    await api.register("op@example.org", "DL1OP")
    reply = await api.call("POST", "/api/auth/login", {"email": email, "password": password})
    assert reply.status == 401
    error = reply.error()
    assert (error.code, error.message) == ("unauthorized", "wrong email or password")


async def test_login_is_limited_to_5_a_minute_per_address_and_recovers(api: Api) -> None:
    await api.register("op@example.org", "DL1OP")
    # failed and successful attempts both count
    statuses = []
    for password in (PASSWORD, "wrong password!", PASSWORD, "wrong password!", PASSWORD):
        reply = await api.call(
            "POST", "/api/auth/login", {"email": "op@example.org", "password": password}
        )
        statuses.append(reply.status)
    assert statuses == [200, 401, 200, 401, 200]
    refused = await api.call(
        "POST", "/api/auth/login", {"email": "op@example.org", "password": PASSWORD}
    )
    assert refused.status == 429
    assert refused.error().code == "rate_limited"
    assert int(refused.headers["Retry-After"]) == LOGIN_INTERVAL_S
    assert "token" not in refused.body
    # another address is not affected (loopback answers from any 127.x address)
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as elsewhere:
        other = await api.call(
            "POST",
            "/api/auth/login",
            {"email": "op@example.org", "password": PASSWORD},
            http=elsewhere,
        )
    assert other.status == 200
    # hammering does not lengthen the wait; after it, one more attempt is allowed
    for _ in range(3):
        again = await api.call(
            "POST", "/api/auth/login", {"email": "op@example.org", "password": PASSWORD}
        )
        assert again.status == 429
    api.clock.advance(LOGIN_INTERVAL_S)
    await api.login("op@example.org")
    again = await api.call(
        "POST", "/api/auth/login", {"email": "op@example.org", "password": PASSWORD}
    )
    assert again.status == 429


# -- refresh tokens -------------------------------------------------------------------------


async def test_refresh_rotates_both_tokens(api: Api) -> None:
    first = await api.register("op@example.org", "DL1OP")
    api.clock.advance(60)
    reply = await api.refresh(first.refresh_token)
    assert reply.status == 200, reply.body
    second = reply.session()
    assert second.refresh_token != first.refresh_token
    assert (second.user_id, second.callsign) == (first.user_id, "DL1OP")
    assert (second.expires_in, second.refresh_expires_in) == (900, REFRESH_TTL_S)
    # the new access token works
    assert (await api.call("GET", "/api/export", token=second.token)).status == 200
    # and the new refresh token too, once more: a chain of one family
    api.clock.advance(60)
    third = (await api.refresh(second.refresh_token)).session()
    tokens = await api.store.refresh_tokens_of(first.user_id)
    assert len(tokens) == 3 and len({t.family_id for t in tokens}) == 1
    assert [t.revoked_reason for t in tokens] == ["rotated", "rotated", None]
    assert await api.store.get_refresh_token(hash_refresh_token(third.refresh_token)) == tokens[2]
    assert tokens[2].parent_id == tokens[1].id and tokens[1].parent_id == tokens[0].id


async def test_a_reused_refresh_token_revokes_the_whole_sign_in(api: Api) -> None:
    victim = await api.register("op@example.org", "DL1OP")
    other_sign_in = await api.login("op@example.org")
    copied = victim.refresh_token
    legitimate = (await api.refresh(victim.refresh_token)).session()  # the owner refreshes
    # the thief spends the copy: refused, and the sign-in is revoked everywhere
    stolen = await api.refresh(copied)
    assert stolen.status == 401
    assert stolen.error().code == "unauthorized"
    assert "already used" in stolen.error().message
    # so the legitimate holder's next refresh fails too: they sign in again
    after = await api.refresh(legitimate.refresh_token)
    assert after.status == 401
    assert (await api.refresh(copied)).status == 401
    # another sign-in of the same account is not touched
    assert (await api.refresh(other_sign_in.refresh_token)).status == 200
    reasons = {t.revoked_reason for t in await api.store.refresh_tokens_of(victim.user_id)}
    assert "reused" in reasons


async def test_an_expired_refresh_token_is_refused_and_each_refresh_starts_it_again(
    api: Api,
) -> None:
    session = await api.register("op@example.org", "DL1OP")
    # used in time, again and again: each refresh gives a token valid the full time again
    for _ in range(3):
        api.clock.advance(REFRESH_TTL_S - 1)
        reply = await api.refresh(session.refresh_token)
        assert reply.status == 200, reply.body
        session = reply.session()
    api.clock.advance(REFRESH_TTL_S + 1)
    expired = await api.refresh(session.refresh_token)
    assert expired.status == 401
    assert "expired" in expired.error().message


@pytest.mark.parametrize("token", ["", "x", "a" * 43, "a" * 129, "é" * 50, "Bearer abc"], ids=repr)
async def test_an_unknown_refresh_token_is_refused(api: Api, token: str) -> None:
    await api.register("op@example.org", "DL1OP")
    reply = await api.refresh(token)
    assert reply.status == 401
    assert reply.error().code == "unauthorized"


async def test_logout_revokes_that_sign_in_only(api: Api) -> None:
    here = await api.register("op@example.org", "DL1OP")
    there = await api.login("op@example.org")
    rotated = (await api.refresh(here.refresh_token)).session()
    # signing out with the current token revokes its family (the rotated-away one included)
    reply = await api.call("POST", "/api/auth/logout", {"refresh_token": rotated.refresh_token})
    assert (reply.status, reply.raw) == (204, b"")
    assert (await api.refresh(rotated.refresh_token)).status == 401
    assert (await api.refresh(there.refresh_token)).status == 200
    # idempotent, and it says nothing about tokens it does not know
    for token in (rotated.refresh_token, "not a token", ""):
        again = await api.call("POST", "/api/auth/logout", {"refresh_token": token})
        assert again.status == 204
    bad = await api.call("POST", "/api/auth/logout", {"token": rotated.refresh_token})
    assert (bad.status, bad.error().field) == (422, "token")


async def test_logout_all_revokes_every_sign_in_of_the_caller_only(api: Api) -> None:
    first = await api.register("op@example.org", "DL1OP")
    second = await api.login("op@example.org")
    bystander = await api.register("other@example.org", "DL2OTH")
    reply = await api.call("POST", "/api/auth/logout-all", token=second.token)
    assert (reply.status, reply.raw) == (204, b"")
    assert (await api.refresh(first.refresh_token)).status == 401
    assert (await api.refresh(second.refresh_token)).status == 401
    assert (await api.refresh(bystander.refresh_token)).status == 200
    # a new sign-in works as before
    fresh = await api.login("op@example.org")
    assert (await api.refresh(fresh.refresh_token)).status == 200


# -- access tokens on the new endpoints ----------------------------------------------------


def _b64url(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bad_tokens(api: Api, user_id: str, callsign: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": user_id, "callsign": callsign, "iat": now, "exp": now + 600}
    claims["aud"] = "radiocore"
    identity = OperatorIdentity(user_id, callsign)
    authority = api.app[keys.AUTHORITY]
    return {
        "expired": authority.issue(identity, issued_at=time.time() - 2 * authority.ttl_s),
        "forged": jwt.encode(claims, "another-secret-" + "k" * 40, algorithm="HS256"),
        "alg_none": f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.",
        "garbage": "not.a.token",
        # signed with the server's own key, but naming a key it does not have
        "unknown_kid": jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "0" * 11}),
        # well signed by the key the server used before a rotation, now removed from it
        "kid_of_previous_key_removed": JwtAuthority(RETIRED_SECRET).issue(identity),
    }


async def _refused_operator(api: Api, token: str | None) -> dict[str, Any]:
    """The reason the `/operator` namespace refuses a connection with `token` (`connect_error`
    data); fails if the connection is admitted."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace="/operator")
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(
                api.url,
                namespaces=["/operator"],
                auth=None if token is None else {"token": token},
                transports=["websocket"],
                wait_timeout=10,
            )
    finally:
        await client.disconnect()
    assert errors and isinstance(errors[0], dict), errors
    reason = errors[0].get("data")
    assert isinstance(reason, dict), errors
    return reason


BAD_TOKEN_KINDS = [
    "expired",
    "forged",
    "alg_none",
    "garbage",
    "missing",
    "unknown_kid",
    "kid_of_previous_key_removed",
]


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
async def test_bad_access_tokens_are_refused_on_every_entry_point(api: Api, kind: str) -> None:
    session = await api.register("op@example.org", "DL1OP")
    token = None if kind == "missing" else _bad_tokens(api, session.user_id, "DL1OP")[kind]
    for method, path, body in [
        ("GET", "/api/export", None),
        ("DELETE", "/api/me", {"password": PASSWORD}),
        ("POST", "/api/auth/logout-all", None),
        ("GET", "/api/boards", None),
    ]:
        reply = await api.call(method, path, body, token=token)
        assert reply.status == 401, (method, path, reply.body)
        assert reply.error().code == "unauthorized"
        if kind.endswith("kid") or kind.endswith("removed"):
            assert reply.error().message == RETIRED_KEY_MESSAGE
    # the Socket.IO operator namespace refuses the connection, saying why
    reason = await _refused_operator(api, token)
    assert reason["code"] == "unauthorized", reason
    if kind.endswith("kid") or kind.endswith("removed"):
        assert reason["message"] == RETIRED_KEY_MESSAGE
    # nothing happened
    assert await api.store.get_user(session.user_id) is not None
    assert (await api.refresh(session.refresh_token)).status == 200


async def test_rotating_the_signing_key_keeps_operators_signed_in_for_the_overlap(
    start: Starter,
) -> None:
    before = await start(generous=True)  # signs with SECRET
    session = await before.register("op@example.org", "DL1OP")
    old_token = session.token
    assert jwt.get_unverified_header(old_token)["kid"] == key_id(SECRET)
    await before.stop()

    # restarted with a new key, the old one kept for verification
    rotated = await start(
        generous=True, env={"RADIOCORE_SECRET": NEW_SECRET, "RADIOCORE_PREVIOUS_SECRETS": SECRET}
    )
    assert (await rotated.call("GET", "/api/boards", token=old_token)).status == 200
    operator, _gone = await _operator(rotated, old_token)
    try:
        listed = await operator.call("list_boards", {}, namespace="/operator", timeout=10)
        assert listed["boards"] == []
    finally:
        await operator.disconnect()
    # new tokens are signed with the new key
    renewed = await rotated.login("op@example.org")
    assert jwt.get_unverified_header(renewed.token)["kid"] == key_id(NEW_SECRET)
    await rotated.stop()

    # the overlap is over: restarted without the old key
    after = await start(generous=True, env={"RADIOCORE_SECRET": NEW_SECRET})
    refused = await after.call("GET", "/api/boards", token=old_token)
    assert refused.status == 401
    assert (refused.error().code, refused.error().message) == ("unauthorized", RETIRED_KEY_MESSAGE)
    reason = await _refused_operator(after, old_token)
    assert reason == {"code": "unauthorized", "message": RETIRED_KEY_MESSAGE}
    # a token of the new key still works, and so do refresh tokens (opaque, in the database,
    # not signed): the console renews its access token without asking for the password
    assert (await after.call("GET", "/api/boards", token=renewed.token)).status == 200
    refreshed = await after.refresh(session.refresh_token)
    assert refreshed.status == 200, refreshed.body
    assert (await after.call("GET", "/api/export", token=refreshed.session().token)).status == 200
    # and a fresh sign-in works
    fresh = await after.login("op@example.org")
    operator, _gone = await _operator(after, fresh.token)
    try:
        assert operator.connected
    finally:
        await operator.disconnect()


# -- export and deletion ---------------------------------------------------------------------


async def _seed_everything(api: Api) -> tuple[SessionReply, SessionReply, dict[str, str]]:
    """`me` with something in every section of the export, and `other`, an owner `me` deals
    with; the ids made."""
    me = await api.register("me@example.org", "DL1ME")
    other = await api.register("other@example.org", "DL2OTH")
    third = await api.register("third@example.org", "DL3RD")
    store = api.store
    mine = (await register_board(store, me.user_id, "My station")).board
    await store.update_board(mine.id, locator="JO62qm", bands=("20m", "40m"), public=True)
    theirs = (await register_board(store, other.user_id, "Their station")).board
    barred = (await register_board(store, third.user_id, "Barred station")).board
    await store.set_grant(mine.id, other.user_id, "listen")
    await store.block_user(mine.id, third.user_id)
    await store.set_grant(theirs.id, me.user_id, "transmit")
    await store.block_user(barred.id, me.user_id)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    guest = await store.create_booking(mine.id, other.user_id, start, start + timedelta(hours=1))
    booked = await store.create_booking(theirs.id, me.user_id, start, start + timedelta(hours=1))
    await store.set_subscription(me.user_id, "club", "active", start + timedelta(days=30))
    tx_mine = await store.start_tx(mine.id, other.user_id, "DL2OTH", start)
    await store.end_tx(tx_mine, start + timedelta(seconds=30), "released")
    tx_theirs = await store.start_tx(theirs.id, me.user_id, "DL1ME", start)
    await store.end_tx(tx_theirs, start + timedelta(seconds=20), "released")
    ids = {
        "mine": mine.id, "theirs": theirs.id, "barred": barred.id,
        "guest_booking": guest.id, "my_booking": booked.id,
    }  # fmt: skip
    return me, other, ids


async def test_export_has_everything_stored_about_the_caller(api: Api) -> None:
    me, other, ids = await _seed_everything(api)
    reply = await api.call("GET", "/api/export", token=me.token)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    export = msgspec.json.decode(reply.raw, type=ExportReply, strict=True)
    assert (export.user.id, export.user.email, export.user.callsign) == (
        me.user_id, "me@example.org", "DL1ME",
    )  # fmt: skip
    assert export.subscription is not None and export.subscription.tier == "club"
    [board] = export.boards
    assert (board.id, board.name, board.locator, board.bands) == (
        ids["mine"], "My station", "JO62qm", ["40m", "20m"],  # long to short waves
    )  # fmt: skip
    assert [(g.user_id, g.right) for g in board.grants] == [(other.user_id, "listen")]
    assert len(board.blocked_user_ids) == 1
    assert [b.id for b in board.bookings] == [ids["guest_booking"]]
    assert [(t.callsign, t.reason) for t in board.tx_log] == [("DL2OTH", "released")]
    assert [(r.board_id, r.right) for r in export.granted_to_me] == [(ids["theirs"], "transmit")]
    assert export.blocked_from_board_ids == [ids["barred"]]
    assert [b.id for b in export.bookings] == [ids["my_booking"]]
    assert len(export.refresh_tokens) == 1 and export.refresh_tokens[0].revoked_at is None
    assert [(t.board_id, t.callsign) for t in export.transmissions] == [(ids["theirs"], "DL1ME")]
    # never a secret: no password, hash, refresh token or board secret
    user = await api.store.get_user(me.user_id)
    assert user is not None
    text = reply.raw.decode()
    for secret in (PASSWORD, user.password_hash, me.refresh_token):
        assert secret not in text
    assert hash_refresh_token(me.refresh_token) not in text
    board_row = await api.store.get_board(ids["mine"])
    assert board_row is not None and board_row.secret_hash not in text
    # someone else's export is theirs only
    theirs = await api.call("GET", "/api/export", token=other.token)
    assert msgspec.json.decode(theirs.raw, type=ExportReply).user.id == other.user_id


async def test_a_new_account_exports_empty_sections(api: Api) -> None:
    me = await api.register("me@example.org", "DL1ME")
    export = msgspec.json.decode(
        (await api.call("GET", "/api/export", token=me.token)).raw, type=ExportReply, strict=True
    )
    assert export.subscription is None
    assert export.boards == export.granted_to_me == export.bookings == export.transmissions == []
    assert export.blocked_from_board_ids == []


async def _operator(api: Api, token: str) -> tuple[socketio.AsyncClient, asyncio.Event]:
    """A Socket.IO operator connection; the event is set when the server disconnects it."""
    client = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()

    async def on_disconnect(*_: object) -> None:
        gone.set()

    client.on("disconnect", on_disconnect, namespace="/operator")
    await client.connect(
        api.url,
        namespaces=["/operator"],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )
    return client, gone


async def test_deleting_the_account_removes_everything_and_disconnects_it(api: Api) -> None:
    me, other, ids = await _seed_everything(api)
    mine, mine_gone = await _operator(api, me.token)
    second_tab, second_gone = await _operator(api, me.token)
    bystander, bystander_gone = await _operator(api, other.token)
    try:
        boards = await mine.call("list_boards", {}, namespace="/operator", timeout=10)
        assert {b["id"] for b in boards["boards"]} == {ids["mine"], ids["theirs"]}

        reply = await api.call("DELETE", "/api/me", {"password": PASSWORD}, token=me.token)
        assert (reply.status, reply.raw) == (204, b"")
        # the live connections of the account are closed at once; others stay
        assert await wait_for(lambda: mine_gone.is_set() and second_gone.is_set(), 10)
        assert not mine.connected and not second_tab.connected
        assert not bystander_gone.is_set() and bystander.connected
        listed = await bystander.call("list_boards", {}, namespace="/operator", timeout=10)
        assert {b["id"] for b in listed["boards"]} == {ids["theirs"]}  # my board is gone
    finally:
        for client in (mine, second_tab, bystander):
            await client.disconnect()

    # the tokens no longer open anything
    for method, path in [("GET", "/api/export"), ("POST", "/api/auth/logout-all")]:
        assert (await api.call(method, path, token=me.token)).status == 401
    assert (await api.refresh(me.refresh_token)).status == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _operator(api, me.token)
    refused = await api.call(
        "POST", "/api/auth/login", {"email": "me@example.org", "password": PASSWORD}
    )
    assert refused.status == 401
    # everything of the account went
    store = api.store
    assert await store.get_user(me.user_id) is None
    assert await store.get_board(ids["mine"]) is None
    assert await store.refresh_tokens_of(me.user_id) == []
    assert await store.get_subscription(me.user_id) is None
    assert await store.get_booking(ids["guest_booking"]) is None  # on my board
    assert await store.get_booking(ids["my_booking"]) is None  # mine on theirs
    assert await store.grant_of(ids["theirs"], me.user_id) is None
    assert me.user_id not in await store.blocked_users(ids["barred"])
    # my transmission stays in their station's log, without the account
    [tx] = await store.tx_sessions(ids["theirs"])
    assert (tx.callsign, tx.user_id) == ("DL1ME", None)
    # the other accounts are whole, and the address can register again
    assert (await api.refresh(other.refresh_token)).status == 200
    again = await api.register("me@example.org", "DL1ME")
    assert again.user_id != me.user_id


async def test_deleting_needs_the_password_typed_again(api: Api) -> None:
    me = await api.register("me@example.org", "DL1ME")
    client, gone = await _operator(api, me.token)
    try:
        for body, status in [
            ({"password": "not my password"}, 403),
            ({}, 422),
            ({"password": None}, 422),
        ]:
            reply = await api.call("DELETE", "/api/me", body, token=me.token)
            assert reply.status == status, reply.body
        assert client.connected and not gone.is_set()
    finally:
        await client.disconnect()
    assert await api.store.get_user(me.user_id) is not None
    assert (await api.refresh(me.refresh_token)).status == 200


async def test_password_guesses_at_deletion_are_limited_per_account(api: Api) -> None:
    me = await api.register("me@example.org", "DL1ME")
    for _ in range(LOGIN_PER_ADDRESS.count):
        wrong = await api.call("DELETE", "/api/me", {"password": "guess guess"}, token=me.token)
        assert wrong.status == 403
    limited = await api.call("DELETE", "/api/me", {"password": PASSWORD}, token=me.token)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) == LOGIN_INTERVAL_S
    assert await api.store.get_user(me.user_id) is not None
    api.clock.advance(LOGIN_INTERVAL_S)
    done = await api.call("DELETE", "/api/me", {"password": PASSWORD}, token=me.token)
    assert done.status == 204
    assert await api.store.get_user(me.user_id) is None


async def test_the_openapi_document_describes_the_account_endpoints(api: Api) -> None:
    reply = await api.call("GET", "/api/openapi.json")
    paths = reply.body["paths"]
    register = paths["/api/auth/register"]["post"]
    assert "201" in register["responses"] and {"409", "422", "429"} <= set(register["responses"])
    assert "Retry-After" in paths["/api/auth/login"]["post"]["responses"]["429"]["headers"]
    assert "401" in paths["/api/auth/refresh"]["post"]["responses"]
    assert "204" in paths["/api/auth/logout"]["post"]["responses"]
    assert paths["/api/auth/logout-all"]["post"]["security"] == [{"bearer": []}]
    export = paths["/api/export"]["get"]["responses"]["200"]["content"]["application/json"]
    assert export["schema"] == {"$ref": "#/components/schemas/ExportReply"}
    assert "403" in paths["/api/me"]["delete"]["responses"]


# -- no input makes the server fail ------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["op@example.org", "DL1OP", PASSWORD, "a@b.c", "", " ", "\x00"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = ["email", "password", "callsign", "refresh_token"]
_BODIES = _JSON | st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=4)


@pytest.fixture
async def unlimited(start: Starter) -> Api:
    """A server without rate limits in the way, and an account."""
    api = await start(generous=True)
    await api.register("op@example.org", "DL1OP")
    return api


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/refresh"])
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=_BODIES)
async def test_random_json_bodies_never_make_the_server_fail(
    unlimited: Api, path: str, body: object
) -> None:
    reply = await unlimited.call("POST", path, data=json.dumps(body).encode())
    assert reply.status in (200, 201, 400, 401, 409, 422), (body, reply.body)
    if reply.status >= 400:
        reply.error()  # the documented error body
