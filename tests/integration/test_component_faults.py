"""The rest of the kill matrix: the services the server depends on — PostgreSQL, Redis, coturn —
killed (SIGKILL, as a crash) while an operator transmits, and restarted.

One server on a real PostgreSQL, a real Redis (the shared rate limits) and a real coturn (its
TURN), a real board agent process keying Hamlib's dummy rig through a real rigctld, whose PTT is
read on a connection of its own. Each time, what a person would notice:

- the transmission goes on through the outage, and the rig unkeys as soon as the operator
  releases (within the kill matrix's bound; the time is printed);
- while the service is down, a new sign-in gets what it should: PostgreSQL down is `503
  unavailable` with `Retry-After` (nothing half-done), Redis down still signs in (this node
  counts the attempts on its own), coturn down still signs in and joins;
- once it is back, without restarting the server, `/ready` says so, and another operator signs
  in, joins, keys and releases the rig;
- nothing is lost: both transmissions are in the TX log, each closed with `released` — the end
  of the one that went on through a database outage included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.coturn import Coturn
from bench.postgres import PostgresServer
from radiocore import aiortc_hooks
from tests.integration.harness import (
    Account,
    AgentProcess,
    LiveServer,
    Operator,
    Rigctld,
    sfu_of,
    start_server,
    stop_server,
    tx_log,
)
from tests.support.coturn import require_coturn
from tests.support.postgres import start_postgres
from tests.support.redis import RedisServer, start_redis
from tests.support.waiting import wait_for

#: The kill matrix's bound on the rig unkeying after the operator released (its target: 1 s).
RELEASE_BOUND_S = 1.5
#: How long a restarted service may take until the server says it is ready again.
RECOVERY_BOUND_S = 30.0

pytestmark = pytest.mark.timeout(180)


@dataclass
class Services:
    postgres: PostgresServer
    redis: RedisServer
    coturn: Coturn

    def kill(self, name: str) -> None:
        if name == "postgres":
            self.postgres.kill()
        elif name == "redis":
            self.redis.kill()
        else:
            assert self.coturn.process is not None
            self.coturn.process.kill()
            self.coturn.process.wait(10)

    def restart(self, name: str) -> None:
        if name == "postgres":
            self.postgres.restart()
        elif name == "redis":
            self.redis.restart()
        else:
            self.coturn.start()  # the same port and secret


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    require_coturn()
    # its own servers: each test kills one; commits kept through a crash of PostgreSQL, as
    # with its default settings (the suite's other clusters trade that for speed)
    postgres = start_postgres(durable_commits=True)
    redis = start_redis()
    coturn = Coturn(tmp_path)
    try:
        coturn.start()
        yield Services(postgres, redis, coturn)
    finally:
        coturn.stop()
        redis.stop()
        postgres.stop()


@pytest.fixture
async def live(tmp_path: Path, services: Services) -> AsyncIterator[LiveServer]:
    env = {
        "RADIOCORE_DATABASE_URL": services.postgres.url(),
        "RADIOCORE_REDIS_URL": services.redis.url,
        "RADIOCORE_TURN__SECRET": services.coturn.secret,
    }
    server = await start_server(
        tmp_path,
        # the relay checked every 5 s (60 by default), so /ready follows coturn in this test
        config={"turn.urls": (services.coturn.url("udp"),), "turn.check_interval_s": 5.0},
        env=env,
    )
    try:
        yield server
    finally:
        await stop_server(server)
        aiortc_hooks.set_host_addresses(())


@pytest.fixture
async def station(live: LiveServer, rig: Rigctld, tmp_path: Path) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(
        live,
        sink=tmp_path / "tx.raw",
        extra_args=["--rig", "rigctld", "--rigctld-port", str(rig.port)],
    )
    agent.start()
    try:
        online = await wait_for(lambda: sfu_of(live).station_online(live.board_id), seconds=30)
        assert online, agent.log.read_text()[-3000:] if agent.log else "the agent did not start"
        yield agent
    finally:
        await asyncio.to_thread(agent.stop)


async def sign_in(server: LiveServer, account: Account) -> tuple[int, dict[str, Any], str]:
    """`POST /api/auth/login`: status, JSON body and `Retry-After` ("" when absent)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
        http.post(
            server.url + "api/auth/login",
            json={"email": account.email, "password": account.password},
        ) as reply,
    ):
        return reply.status, await reply.json(), reply.headers.get("Retry-After", "")


async def ready(server: LiveServer) -> str:
    """`GET /ready`'s `status`: `ready`, `degraded` (200) or `not_ready` (503)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.get(server.url + "ready") as reply,
    ):
        body = await reply.json()
        assert reply.status == (503 if body["status"] == "not_ready" else 200), body
        return str(body["status"])


async def ready_becomes(server: LiveServer, state: str) -> bool:
    """Whether `/ready` says `state` within `RECOVERY_BOUND_S` (polled every 0.25 s)."""
    for _ in range(int(RECOVERY_BOUND_S / 0.25)):
        if await ready(server) == state:
            return True
        await asyncio.sleep(0.25)
    return False


async def keyed(server: LiveServer, token: str, rig: Rigctld) -> Operator:
    """An operator who joined, listens and holds PTT, with the rig read keyed."""
    operator = Operator(server, token, mic_hz=700.0)
    await operator.connect()
    reply = await operator.join_and_listen(server.board_id)
    assert reply["ok"], reply
    assert await wait_for(lambda: operator.channel.readyState == "open")
    operator.key()
    reader = rig.reader()
    try:
        assert await wait_for(reader.ptt, seconds=5), "the rig did not key"
    finally:
        reader.close()
    return operator


async def released_in(operator: Operator, rig: Rigctld) -> float:
    """Release PTT; seconds until the rig reads unkeyed (the test fails past the bound)."""
    reader = rig.reader()
    try:
        started = time.monotonic()
        operator.unkey()
        unkeyed = await wait_for(lambda: not reader.ptt(), seconds=RELEASE_BOUND_S, step=0.01)
        took = time.monotonic() - started
    finally:
        reader.close()
    assert unkeyed, f"the rig was still keyed {RELEASE_BOUND_S} s after the release"
    return took


@pytest.mark.parametrize("service", ["postgres", "redis", "coturn"])
async def test_a_service_killed_mid_transmission(
    service: str, live: LiveServer, station: AgentProcess, rig: Rigctld, services: Services
) -> None:
    status, body, _ = await sign_in(live, live.owner)
    assert status == 200, body
    owner_token = str(body["token"])
    first = await keyed(live, owner_token, rig)
    try:
        heard = len(first.frames)
        await asyncio.to_thread(services.kill, service)
        # the transmission and the station's audio go on through the outage
        assert await wait_for(lambda: len(first.frames) >= heard + 50, seconds=10)
        reader = rig.reader()
        try:
            assert reader.ptt(), "the rig unkeyed by itself when the service died"
        finally:
            reader.close()
        took = await released_in(first, rig)
        print(f"{service} killed: the rig unkeyed {took * 1000:.0f} ms after the release")

        status, body, retry_after = await sign_in(live, live.other)
        if service == "postgres":
            assert status == 503, body
            assert body["error"]["code"] == "unavailable", body
            assert "database" in body["error"]["message"], body
            assert int(retry_after) >= 1
            assert await ready(live) == "not_ready"
        else:
            # Redis down: this node counts sign-ins on its own; coturn down: credentials for
            # it are still issued (the direct path needs none)
            assert status == 200, body
        # the node serves on without Redis or the relay (a load balancer must not drain every
        # node for a service they share), and says what is missing
        if service == "redis":
            assert await ready(live) == "degraded"
        if service == "coturn":  # the next relay check sees it gone
            assert await ready_becomes(live, "degraded"), "/ready did not see the relay die"
    finally:
        await first.close()

    await asyncio.to_thread(services.restart, service)
    assert await ready_becomes(live, "ready"), (
        f"/ready still 503 {RECOVERY_BOUND_S} s after {service} came back"
    )

    status, body, _ = await sign_in(live, live.other)
    assert status == 200, body
    second = await keyed(live, str(body["token"]), rig)
    try:
        await asyncio.sleep(0.3)
        await released_in(second, rig)
    finally:
        await second.close()

    # nothing lost: both transmissions, each closed as released (written once the database
    # answered again, for the one that went on through its outage)
    async def both_logged() -> bool:
        sessions = await tx_log(live.url, owner_token, live.board_id)
        return len(sessions) == 2 and all(s["reason"] == "released" for s in sessions)

    logged = False
    for _ in range(40):  # bounded: 10 s
        if logged := await both_logged():
            break
        await asyncio.sleep(0.25)
    sessions = await tx_log(live.url, owner_token, live.board_id)
    assert logged, sessions
    assert {s["callsign"] for s in sessions} == {live.owner.callsign, live.other.callsign}
    assert all(s["ended_at"] for s in sessions), sessions
