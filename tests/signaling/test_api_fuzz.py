"""Bad input gets no 500 anywhere, and every answer is the one the OpenAPI document promises:
schemathesis (its own command line, as a developer would run it) against the document the live
server serves at `/api/openapi.json`, over every operation, on SQLite and on a real PostgreSQL.

What is checked on every answer: no server error (5xx), a status the operation documents, the
documented content type, a body that fits the documented schema (success and error alike), and
the documented headers (Retry-After on 429). Schemathesis runs its phases in turn: examples,
coverage (boundary and malformed values, wrong types, missing fields, methods no route has),
fuzzing (`MAX_EXAMPLES` generated cases per operation, positive and negative) and stateful
(sequences that feed one answer into the next request, e.g. a login's refresh token into
`refresh`). The seed is fixed, so CI runs the same cases every time.

Random ids only ever find nothing (404), so the run is given what a real client has: the
owner's access token (the caller of every operation), its board, another user, a booking, a
board waiting to be paired with its code, booking windows. Each is drawn for most cases of
the parameter it fits (a schemathesis dictionary), the rest stay random, and the test asserts
that the cases got through to the handlers' work: every operation answered a success at least
once (except `EXPECTED_NEVER_2XX`, each with its reason).

Nothing is excluded. The operations that end things cannot end the run:
- `DELETE /api/me` never learns the owner's password (no dictionary holds it), so it is
  fuzzed up to the password check (403) and never deletes the account the run signs in with;
- `POST /api/auth/logout` and `logout-all` revoke refresh tokens, never the access token the
  run uses (it stays valid until it expires, 15 minutes);
- `DELETE /api/boards/{board_id}` (release) is pointed mostly at a spare board of the
  owner's, and every board it releases (the stateful phase finds the others through
  `GET /api/boards`) is paired back to the owner by the test's side of the server (a
  middleware, with the code the release answers), so what follows still has its boards.

Rate limits are raised (generous in-process limiters) so that the fuzz reaches the handlers
behind them; a second, shorter run keeps the seed's limits on the four operations behind one
(register, login, pair, delete the account), which soon answer 429: checked as documented,
Retry-After included.

Schemathesis never puts `{` or `}` in a path segment; a plain hypothesis test sends any
characters there (aiohttp's default route pattern refused those two, and the router answered a
plain-text 404 the document does not promise).

Run longer, or on other seeds, by hand: TESTS_FUZZ_EXAMPLES=500 TESTS_FUZZ_SEED=7 pytest
tests/signaling/test_api_fuzz.py (and `--timeout` above the default 120 s).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import accounts, keys
from signaling.api import openapi_document
from signaling.api.openapi import ErrorReply
from signaling.app import create_app
from signaling.config import load_server_config
from signaling.ratelimit import Limit, MemoryRateLimiter
from tests.support.postgres import PostgresServer, fresh_database

SECRET: Final = "api-fuzz-test-" + "Wq7rT2" * 8
OWNER_EMAIL: Final = "owner@example.org"
#: Never given to schemathesis: DELETE /api/me cannot delete the account the run signs in with.
OWNER_PASSWORD: Final = "owner password, kept from the fuzz"
OTHER_EMAIL: Final = "other@example.org"
#: Given to schemathesis for `login` (so that it signs in and chains refresh, logout) and
#: `register`; never the password of the account the run signs in with.
OTHER_PASSWORD: Final = "other password 1"

#: Cases per operation and phase, and the seed: fixed for CI, overridable for a longer hunt.
MAX_EXAMPLES: Final = int(os.environ.get("TESTS_FUZZ_EXAMPLES", "25"))
SEED: Final = int(os.environ.get("TESTS_FUZZ_SEED", "20261201"))
#: The whole schemathesis run, at most (~15 s here at 25 examples; a hang fails the test).
RUN_TIMEOUT_S: Final = 240.0 * max(1.0, MAX_EXAMPLES / 25)
#: Each request, at most (the server answers in milliseconds).
REQUEST_TIMEOUT_S: Final = 10.0

CHECKS: Final = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
#: No generous limits let the fuzz past these; the reasons.
EXPECTED_NEVER_2XX: Final = {
    ("DELETE", "/api/me"): "the owner's password is kept from the fuzz (403 at best)",
}
GENEROUS: Final = Limit(1_000_000, 1.0)
#: The operations behind a rate limit (429 documented, with Retry-After).
RATE_LIMITED: Final = ("register", "login", "pair_board", "delete_me")
#: The document, as the server makes it (the fuzz reads the one it serves).
DOCUMENT: Final = openapi_document()
#: The JUnit report's entry for the stateful phase (the others are `METHOD /path`).
STATEFUL: Final = "Stateful tests"


@dataclass
class Seeded:
    """What the fuzz is given to reach the handlers' work."""

    owner_id: str = ""
    other_id: str = ""
    #: The owner's board, public, with a booking of the other user's on it.
    board_id: str = ""
    #: Another board of the owner's: the one releases are pointed at.
    spare_id: str = ""
    #: A board waiting to be paired, and its code.
    unpaired_id: str = ""
    pairing_code: str = ""
    booking_id: str = ""
    #: Starts of windows to book (RFC 3339, UTC), around the booking: some overlap it (409).
    starts: list[str] = field(default_factory=list)


@dataclass
class Server:
    app: web.Application
    url: str
    seeded: Seeded
    #: (method, documented path) → statuses answered, as the server saw them.
    answered: dict[tuple[str, str], collections.Counter[int]]
    #: The boards released by the fuzz, each paired back to the owner.
    repaired: list[str]
    #: The owner's access token, from a sign-in over HTTP.
    token: str


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """SQLite in the data directory (""), or a fresh database of the session's PostgreSQL."""
    if request.param == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    async with fresh_database(server) as url:
        yield url


async def seed(app: web.Application, now: datetime) -> Seeded:
    store = app[keys.STORE]
    owner = await accounts.create_account(store, OWNER_EMAIL, OWNER_PASSWORD, "DL1OWN")
    other = await accounts.create_account(store, OTHER_EMAIL, OTHER_PASSWORD, "DL2OTH")
    board = (await accounts.register_board(store, owner.id, "Fuzzed station")).board
    await store.update_board(board.id, public=True, bands=("20m", "40m"), locator="JO62qm")
    spare = (await accounts.register_board(store, owner.id, "Spare station")).board
    unpaired = await accounts.provision_board(store)
    tomorrow = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    booking = await store.create_booking(
        board.id, other.id, tomorrow, tomorrow + timedelta(hours=1)
    )
    return Seeded(
        owner_id=owner.id,
        other_id=other.id,
        board_id=board.id,
        spare_id=spare.id,
        unpaired_id=unpaired.board.id,
        pairing_code=unpaired.pairing_code,
        booking_id=booking.id,
        starts=[
            (tomorrow + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
            for hours in (-6, -3, 0, 2, 5)
        ],
    )


def documented_route(request: web.Request) -> tuple[str, str] | None:
    resource = request.match_info.route.resource
    if resource is None or not resource.canonical.startswith("/api/"):
        return None
    return request.method, resource.canonical


@contextlib.asynccontextmanager
async def serve(database_url: str, data_dir: Path, *, generous: bool) -> AsyncIterator[Server]:
    """The server on `database_url`, seeded, listening on loopback; with the seed's rate limits
    or (`generous`) limits that the fuzz never reaches."""
    env = {"RADIOCORE_SECRET": SECRET}
    if database_url:
        env["RADIOCORE_DATABASE_URL"] = database_url
    config = load_server_config(
        None, env, {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir)}
    )
    app = create_app(config)
    seeded = Seeded()
    answered: dict[tuple[str, str], collections.Counter[int]] = collections.defaultdict(
        collections.Counter
    )
    repaired: list[str] = []

    @web.middleware
    async def observe(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        route = documented_route(request)
        if route is not None:
            answered[route][response.status] += 1
        if route == ("DELETE", "/api/boards/{board_id}") and response.status == 200:
            # a release: the board goes back to its owner (the run's caller), for what follows
            assert isinstance(response, web.Response) and isinstance(response.body, bytes)
            released = json.loads(response.body)
            await accounts.pair_board(
                request.app[keys.STORE],
                released["board_id"],
                seeded.owner_id,
                released["pairing_code"],
                "Paired back",
            )
            repaired.append(released["board_id"])
        return response

    app.middlewares.append(observe)

    async def generous_limits(app: web.Application) -> None:  # after the app's own start-up
        app[keys.LIMITS] = dataclasses.replace(
            app[keys.LIMITS],
            login=MemoryRateLimiter(GENEROUS),
            registration=MemoryRateLimiter(GENEROUS),
            pairing=MemoryRateLimiter(GENEROUS),
        )

    if generous:
        app.on_startup.append(generous_limits)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        vars(seeded).update(vars(await seed(app, datetime.now(UTC))))
        url = f"http://127.0.0.1:{int(runner.addresses[0][1])}"
        yield Server(app, url, seeded, answered, repaired, await bearer_token(url))
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    async with serve(database_url, tmp_path / "data", generous=True) as running:
        yield running


@pytest.fixture
async def limited_server(tmp_path: Path) -> AsyncIterator[Server]:
    """On SQLite only: the limiters are in process, whatever the database."""
    async with serve("", tmp_path / "data", generous=False) as running:
        yield running


def schemathesis_config(seeded: Seeded) -> str:
    """The run's schemathesis.toml: the dictionaries of real values, and where they go."""

    def values(*items: str) -> str:
        return json.dumps(list(items))

    return f"""
[generation]
database = "none"

[dictionaries.boards]
values = {values(seeded.board_id)}
[dictionaries.spare]
values = {values(seeded.spare_id)}
[dictionaries.unpaired]
values = {values(seeded.unpaired_id)}
[dictionaries.codes]
values = {values(seeded.pairing_code)}
[dictionaries.users]
values = {values(seeded.other_id)}
[dictionaries.bookings]
values = {values(seeded.booking_id)}
[dictionaries.emails]
values = {values(OTHER_EMAIL)}
[dictionaries.new-emails]
values = {values(*(f"new{n}@example.org" for n in range(5)), OTHER_EMAIL)}
[dictionaries.callsigns]
values = {values("DL3NEW", "G4ABC/P", "VK2/G4XYZ")}
[dictionaries.passwords]
values = {values(OTHER_PASSWORD)}
[dictionaries.names]
values = {values("Paired by the fuzz")}
[dictionaries.starts]
values = {values(*seeded.starts)}
[dictionaries.grids]
values = {values("JO", "JO62", "jo62QM")}
[dictionaries.bands]
values = {values("20m", "40m,20m", "2m")}

[parameters]
"path.board_id" = {{ dictionary = "boards", probability = 0.8 }}
"path.user_id" = {{ dictionary = "users", probability = 0.8 }}
"path.booking_id" = {{ dictionary = "bookings", probability = 0.8 }}
"query.grid" = {{ dictionary = "grids", probability = 0.5 }}
"query.bands" = {{ dictionary = "bands", probability = 0.5 }}
"body.user_id" = {{ dictionary = "users", probability = 0.8 }}
"body.email" = {{ dictionary = "emails", probability = 0.5 }}
"body.start" = {{ dictionary = "starts", probability = 0.7 }}

[[operations]]
include-operation-id = "release_board"
parameters = {{ "path.board_id" = {{ dictionary = "spare", probability = 0.8 }} }}

[[operations]]
include-operation-id = "pair_board"
parameters = {{ "body.board_id" = {{ dictionary = "unpaired", probability = 0.8 }}, \
"body.code" = {{ dictionary = "codes", probability = 0.8 }}, \
"body.name" = {{ dictionary = "names", probability = 0.5 }} }}

[[operations]]
include-operation-id = "register"
parameters = {{ "body.email" = {{ dictionary = "new-emails", probability = 0.7 }}, \
"body.password" = {{ dictionary = "passwords", probability = 0.7 }}, \
"body.callsign" = {{ dictionary = "callsigns", probability = 0.7 }} }}

[[operations]]
include-operation-id = "login"
parameters = {{ "body.email" = {{ dictionary = "emails", probability = 0.8 }}, \
"body.password" = {{ dictionary = "passwords", probability = 0.6 }} }}
"""


async def bearer_token(url: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        ) as reply,
    ):
        assert reply.status == 200, await reply.text()
        token = (await reply.json())["token"]
    assert isinstance(token, str)
    return token


async def run_schemathesis(server: Server, workdir: Path, *options: str) -> tuple[int, str, Path]:
    """Schemathesis' command line against the live document, as the owner, with `options`
    added; its exit code, its output and its JUnit report."""
    config = workdir / "schemathesis.toml"
    config.write_text(schemathesis_config(server.seeded))
    junit = workdir / "junit.xml"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config),
        "run", server.url + "/api/openapi.json",
        "--header", f"Authorization: Bearer {server.token}",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--request-timeout", str(REQUEST_TIMEOUT_S),
        "--report", "junit", "--report-junit-path", str(junit),
        *options,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "120"},
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        pytest.fail(f"schemathesis did not finish within {RUN_TIMEOUT_S:.0f} s")
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace"), junit


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def junit_results(junit: Path) -> dict[str, list[str]]:
    """Each tested operation (`METHOD /path`) and what went wrong with it (empty: passed)."""
    results: dict[str, list[str]] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        problems = [
            f"{child.tag}: {child.get('message', '')}\n{child.text or ''}".strip()
            for child in case
            if child.tag in ("failure", "error")
        ]
        results[case.get("name", "")] = problems
    return results


async def test_no_input_gets_a_500_and_every_answer_is_as_documented(
    server: Server, tmp_path: Path
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/api/openapi.json") as reply,
    ):
        document = await reply.json()
    documented = operations(document)

    code, output, junit = await run_schemathesis(server, tmp_path)

    assert code == 0, output[-20_000:]
    results = junit_results(junit)
    assert not {name: problems for name, problems in results.items() if problems}
    tested = {tuple(name.split(" ", 1)) for name in results if name != STATEFUL}
    assert tested == documented, output[-5000:]
    assert STATEFUL in results  # sequences of calls too, not only one call at a time
    # the fuzz got through to the handlers' work, not only to their refusals
    answered = {route: server.answered[route] for route in documented}
    without_success = {
        route for route, statuses in answered.items() if not any(200 <= s < 300 for s in statuses)
    }
    assert without_success == set(EXPECTED_NEVER_2XX), {
        route: dict(answered[route]) for route in without_success
    }
    assert server.repaired  # releases were fuzzed, and each was undone
    # and the run's own footing is intact: the owner, still signed in, with their board
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            server.url + "/api/boards", headers={"Authorization": f"Bearer {server.token}"}
        ) as reply,
    ):
        assert reply.status == 200
        boards = {board["id"] for board in (await reply.json())["boards"]}
    assert {server.seeded.board_id, server.seeded.spare_id} <= boards


async def test_rate_limited_answers_are_as_documented(
    limited_server: Server, tmp_path: Path
) -> None:
    """With the seed's limits, the operations behind them soon answer 429: as documented,
    Retry-After included (`response_headers_conformance`)."""
    chosen = [f"--include-operation-id={operation_id}" for operation_id in RATE_LIMITED]
    code, output, junit = await run_schemathesis(
        limited_server, tmp_path, *chosen, "--phases=coverage,fuzzing"
    )

    assert code == 0, output[-20_000:]
    results = junit_results(junit)
    assert not {name: problems for name, problems in results.items() if problems}
    limited = {
        (method.upper(), path)
        for path, ops in DOCUMENT["paths"].items()
        for method, operation in ops.items()
        if operation["operationId"] in RATE_LIMITED
    }
    assert {tuple(name.split(" ", 1)) for name in results} == limited
    answered = {route: dict(limited_server.answered[route]) for route in limited}
    assert all(429 in statuses for statuses in answered.values()), answered


# -- what schemathesis leaves out -----------------------------------------------------------------

#: Path parameters as a client may send them: any characters, percent-encoded (schemathesis
#: never puts `{` or `}` in a path segment).
PATH_VALUES: Final = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(
    lambda text: text not in (".", "..")  # these change the path itself
)
#: Every documented operation with a path parameter.
WITH_PATH_PARAMETERS: Final = sorted(
    (method, path) for method, path in operations(DOCUMENT) if "{" in path
)
#: A body that decodes, so that the answer is about the path.
BODIES: Final[dict[tuple[str, str], object]] = {
    ("PUT", "/api/boards/{board_id}"): {"public": True},
    ("POST", "/api/boards/{board_id}/grants"): {"email": OTHER_EMAIL, "right": "listen"},
    ("POST", "/api/boards/{board_id}/blocks"): {"user_id": "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"},
    ("POST", "/api/stations/{board_id}/book"): {
        "start": "2099-01-01T00:00:00Z",
        "duration_minutes": 60,
    },
}


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operation=st.sampled_from(WITH_PATH_PARAMETERS), value=PATH_VALUES)
async def test_any_path_parameter_gets_a_documented_json_answer(
    server: Server, operation: tuple[str, str], value: str
) -> None:
    method, template = operation
    encoded = quote(value, safe="")
    path = re.sub(r"\{[a-z_]+\}", lambda _: encoded, template)
    responses = DOCUMENT["paths"][template][method.lower()]["responses"]
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            server.url + path,
            headers={"Authorization": f"Bearer {server.token}"},
            json=BODIES.get(operation),
        ) as reply,
    ):
        raw = await reply.read()
        assert reply.status < 500, raw
        assert str(reply.status) in responses, (path, reply.status, raw)
        assert reply.content_type == "application/json", (path, reply.status, raw)
    if reply.status >= 400:
        msgspec.json.decode(raw, type=ErrorReply, strict=True)
