"""The TURN allocation check as an operator of the server sees it: `GET /health` of a real server
app and its log, against a real coturn with the right secret, a wrong one, and nothing there."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bench.tools import free_port
from signaling.app import create_app
from signaling.config import load_server_config
from tests.support.coturn import Coturn, require_coturn
from tests.support.waiting import wait_for
from turn.probe import PROBE_IDENTITY

JWT_SECRET = "probe-test-" + "s3cr3t" * 8


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    require_coturn()
    relay = Coturn(tmp_path)
    relay.start()
    yield relay
    relay.stop()


class Server:
    """A real server app on loopback, as `radiocore serve` builds it."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port
        self.last: dict[str, Any] = {}

    async def health(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}/health") as reply,
        ):
            assert reply.status == 200
            self.last = await reply.json()
        return self.last

    async def checked(self) -> dict[str, Any]:
        """`/health` once the TURN check has finished (bounded: 15 s)."""
        for _ in range(60):
            if (await self.health())["turn"].get("checked_at") is not None:
                return self.last
            await asyncio.sleep(0.25)
        raise AssertionError(f"the TURN check did not finish: {self.last}")


async def start_server(tmp_path: Path, urls: tuple[str, ...], turn_secret: str) -> Server:
    env = {"RADIOCORE_SECRET": JWT_SECRET}
    if urls:
        env["RADIOCORE_TURN__SECRET"] = turn_secret
    config = load_server_config(
        None,
        env,
        {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path / "data"), "turn.urls": urls},
    )
    runner = web.AppRunner(create_app(config), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Server(runner, int(runner.addresses[0][1]))


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        await server.runner.cleanup()


async def test_the_right_secret_is_granted_an_allocation_per_transport(
    tmp_path: Path, coturn: Coturn, servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    urls = (coturn.url("udp"), coturn.url("tcp"))
    server = await start_server(tmp_path, urls, coturn.secret)
    servers.append(server)
    health = await server.checked()
    assert health["status"] == "ok"
    turn = health["turn"]
    assert turn["configured"] is True and turn["ok"] is True, turn
    assert [(c["url"], c["transport"], c["ok"]) for c in turn["checks"]] == [
        (urls[0], "udp", True),
        (urls[1], "tcp", True),
    ]
    for check in turn["checks"]:
        assert check["relayed_address"].startswith("127.0.0.1:")
        assert check["detail"] == f"relayed address {check['relayed_address']}"
    granted = [r.getMessage() for r in caplog.records if "granted an allocation" in r.message]
    assert len(granted) == 2 and all(r.startswith("TURN relay at turn:") for r in granted)

    # coturn granted the health identity two allocations and saw both deleted at once
    def seen(what: str) -> int:
        lines = coturn.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if f":{PROBE_IDENTITY}>" in line and what in line)

    assert await wait_for(lambda: seen("lifetime=0") == 2, 5), coturn.log_text()[-2000:]
    assert seen("ALLOCATE processed, success") == 2
    # and the log never shows the secret
    assert coturn.secret not in caplog.text and coturn.secret not in str(health)


async def test_a_wrong_secret_is_reported_as_refused_authentication(
    tmp_path: Path, coturn: Coturn, servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = secrets.token_urlsafe(32)
    server = await start_server(tmp_path, (coturn.url("udp"), coturn.url("tcp")), wrong)
    servers.append(server)
    turn = (await server.checked())["turn"]
    assert turn["ok"] is False
    for check in turn["checks"]:
        assert check["ok"] is False and check["relayed_address"] is None
        assert check["detail"].startswith("authentication refused (401"), check
        assert "[turn] secret differs from coturn's static-auth-secret" in check["detail"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "turn.probe"]
    assert len(errors) == 2 and all("authentication refused" in r.getMessage() for r in errors)
    assert wrong not in caplog.text and coturn.secret not in caplog.text
    # the server is up all the same (a direct path may still work)
    assert (await server.health())["status"] == "ok"


async def test_a_relay_that_does_not_answer_is_reported_unreachable_without_delaying_start_up(
    tmp_path: Path, servers: list[Server], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there, on UDP or TCP
    urls = (f"turn:127.0.0.1:{port}?transport=udp", f"turn:127.0.0.1:{port}?transport=tcp")
    server = await start_server(tmp_path, urls, secrets.token_urlsafe(32))
    servers.append(server)
    # started and serving while the UDP check still waits for an answer
    first = await server.health()
    assert first["status"] == "ok"
    assert first["turn"] == {"configured": True, "ok": None, "checked_at": None, "checks": []}
    turn = (await server.checked())["turn"]
    assert turn["ok"] is False
    udp, tcp = turn["checks"]
    assert udp["transport"] == "udp" and udp["detail"].startswith("unreachable: no answer")
    assert tcp["transport"] == "tcp" and tcp["detail"].startswith("unreachable: connection refused")
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"TURN relay at {urls[0]}: unreachable" in message for message in logged)


async def test_without_a_relay_health_says_none_is_configured(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = await start_server(tmp_path, (), "")
    servers.append(server)
    assert await server.health() == {"status": "ok", "turn": {"configured": False}}
