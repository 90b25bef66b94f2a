"""The board agent's own /health and /metrics on loopback, as an operator's monitoring sees
them: a real rigctld dummy rig, the agent in this process (no server) or as its own process
against the real server, and an operator program keying through the server.

What is asserted is what a check or a Prometheus scrape would read: the status code and JSON
of /health, and the metrics parsed by `prometheus_client`'s own parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from board_agent.agent import BoardAgent
from board_agent.cli import main
from board_agent.errors import ConfigError
from board_agent.health import HealthServerError
from signaling.server import shutdown_gracefully
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    start_server,
    stop_server,
)
from tests.support.rigctld import RigctldServer, free_port, rig_ptt
from tests.support.waiting import wait_for

from .configs import BOARD, SECRET, make_config

#: Every series the agent must expose (the issue's names).
METRIC_NAMES = (
    "radiocore_agent_server_connected",
    "radiocore_agent_rig_online",
    "radiocore_agent_ptt_keyed",
    "radiocore_agent_reconnects_total",
    "radiocore_agent_audio_underruns_total",
    "radiocore_agent_ptt_sessions_total",
    "radiocore_agent_rig_errors_total",
    "radiocore_agent_uptime_seconds",
    "process_resident_memory_bytes",
    "process_open_fds",
)


class Probe:
    """Reads the agent's /health and /metrics at 127.0.0.1:`port`, as a monitoring check."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}"
        #: The last /health answer: (HTTP status, body); (0, {}) before one came.
        self.last: tuple[int, dict[str, Any]] = (0, {})

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(self.base + "/health") as reply:
            assert reply.content_type == "application/json"
            self.last = (reply.status, json.loads(await reply.text()))
        return self.last

    async def metrics(self) -> dict[str, float]:
        """Every sample by name (labels left out but for `reason`), parsed by
        prometheus_client."""
        async with self.http.get(self.base + "/metrics") as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await reply.text()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                reason = sample.labels.get("reason")
                samples[sample.name + (f"[{reason}]" if reason else "")] = sample.value
        return samples

    async def health_until(
        self, predicate: Callable[[int, dict[str, Any]], bool], seconds: float = 15.0
    ) -> tuple[int, dict[str, Any]]:
        """Poll /health every 50 ms until `predicate(status, body)` holds (bounded: `seconds`);
        returns the last answer (a refused connection counts as (0, {}))."""
        for _ in range(int(seconds / 0.05)):
            with contextlib.suppress(aiohttp.ClientConnectionError):
                status, body = await self.health()
                if predicate(status, body):
                    return status, body
            await asyncio.sleep(0.05)
        return self.last

    async def metrics_until(
        self, predicate: Callable[[dict[str, float]], bool], seconds: float = 10.0
    ) -> dict[str, float]:
        """Poll /metrics every 50 ms until `predicate(samples)` holds (bounded)."""
        samples: dict[str, float] = {}
        for _ in range(int(seconds / 0.05)):
            samples = await self.metrics()
            if predicate(samples):
                break
            await asyncio.sleep(0.05)
        return samples


@contextlib.asynccontextmanager
async def in_process_agent(**changes: object) -> AsyncIterator[tuple[BoardAgent, Probe]]:
    """A `BoardAgent` running in this event loop with /health on a free port; stopped after."""
    port = free_port()
    agent = BoardAgent(make_config(health_port=port, **changes))
    runner = asyncio.create_task(agent.run())
    try:
        async with aiohttp.ClientSession() as http:
            yield agent, Probe(http, port)
    finally:
        agent.stop()
        await asyncio.wait_for(runner, 15)


async def stop_gracefully(server: LiveServer) -> None:
    """What the server does on SIGTERM (`radiocore.server.serve`): no new connections, tell
    and disconnect every client, then close."""
    for site in list(server.runner.sites):
        await site.stop()
    await asyncio.wait_for(shutdown_gracefully(server.app), 5)
    await stop_server(server)


def vm_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------------------------------------


async def test_without_a_server_the_agent_is_degraded_and_counts_its_reconnects(
    rigctld: RigctldServer,
) -> None:
    async with in_process_agent(rig="rigctld", rigctld_port=rigctld.port) as (_, probe):
        status, body = await probe.health_until(lambda _, body: body.get("reconnects", 0) >= 2)
        assert status == 503, body
        assert body["status"] == "degraded"
        assert body["server_connected"] is False
        assert body["problems"] == ["no connection to the server"]
        assert body["rig_online"] is True  # the rig is fine: only the server link is down
        assert body["ptt_guard_running"] is True
        assert body["ptt"] is False
        first = body["reconnects"]

        _, later = await probe.health_until(lambda _, body: body["reconnects"] > first)
        assert later["reconnects"] > first, later  # it goes on trying
        assert later["uptime_s"] > body["uptime_s"]

        samples = await probe.metrics()
        for name in METRIC_NAMES:
            assert name in samples, f"/metrics has no {name}"
        assert samples["radiocore_agent_server_connected"] == 0
        assert samples["radiocore_agent_rig_online"] == 1
        assert samples["radiocore_agent_ptt_keyed"] == 0
        assert samples["radiocore_agent_reconnects_total"] >= later["reconnects"]
        assert samples["radiocore_agent_tx_stops_total[deadman]"] == 0
        # this process's own resources, as /proc tells them
        assert samples["process_open_fds"] == pytest.approx(len(os.listdir("/proc/self/fd")), abs=8)
        assert samples["process_resident_memory_bytes"] == pytest.approx(
            vm_rss_bytes(os.getpid()), rel=0.2
        )


async def test_a_station_with_a_server_and_a_rig_reports_ptt_rig_loss_and_server_loss(
    rigctld: RigctldServer, tmp_path: Path
) -> None:
    server = await start_server(tmp_path)
    health_port = free_port()
    agent = AgentProcess(
        server,
        sink=tmp_path / "tx.raw",
        extra_args=["--rig", "rigctld", "--rigctld-port", str(rigctld.port),
                    "--rig-reconnect-max-s", "0.3", "--health-port", str(health_port)],
    )  # fmt: skip
    agent.start()
    assert agent.process is not None
    operator: Operator | None = None
    server_up = True
    try:
        async with aiohttp.ClientSession() as http:
            probe = Probe(http, health_port)
            status, body = await probe.health_until(lambda status, _: status == 200, 30)
            log = agent.log.read_text()[-3000:] if agent.log else ""
            assert status == 200, (body, log)
            assert body["status"] == "ok" and body["problems"] == []
            assert body["server_connected"] is True
            assert body["rig_online"] is True
            samples = await probe.metrics()
            for name in METRIC_NAMES:
                assert name in samples, f"/metrics has no {name}"
            assert samples["radiocore_agent_server_connected"] == 1
            assert samples["radiocore_agent_ptt_keyed"] == 0
            assert samples["radiocore_agent_ptt_sessions_total"] == 0
            # the agent process's own resources, as /proc tells them
            pid = agent.process.pid
            assert samples["process_open_fds"] == pytest.approx(
                len(os.listdir(f"/proc/{pid}/fd")), abs=8
            )
            assert samples["process_resident_memory_bytes"] == pytest.approx(
                vm_rss_bytes(pid), rel=0.2
            )

            # an operator keys through the server: the agent shows it, the rig is keyed
            operator = Operator(server, await server.token(server.owner), tap=True)
            await operator.connect()
            joined = await operator.join_and_listen(server.board_id)
            assert joined["ok"], joined
            assert await wait_for(lambda: operator.channel.readyState == "open", 10)
            operator.key()
            keyed = await probe.metrics_until(lambda s: s["radiocore_agent_ptt_keyed"] == 1)
            assert keyed["radiocore_agent_ptt_keyed"] == 1
            assert keyed["radiocore_agent_ptt_sessions_total"] == 1
            assert await rig_ptt(rigctld.port) is True
            _, body = await probe.health()
            assert body["ptt"] is True
            operator.unkey()
            released = await probe.metrics_until(lambda s: s["radiocore_agent_ptt_keyed"] == 0)
            assert released["radiocore_agent_ptt_keyed"] == 0
            assert released["radiocore_agent_ptt_sessions_total"] == 1
            assert await rig_ptt(rigctld.port) is False
            await operator.close()
            operator = None

            # the agent's event loop stalls for 0.5 s: RX frames were not ready in time
            agent.process.send_signal(signal.SIGSTOP)
            await asyncio.sleep(0.5)
            agent.process.send_signal(signal.SIGCONT)
            late = await probe.metrics_until(
                lambda s: s["radiocore_agent_audio_underruns_total"] > 0
            )
            assert late["radiocore_agent_audio_underruns_total"] >= 10, late  # ~25 frames

            # rigctld dies: degraded, the rig offline
            rigctld.kill()
            status, body = await probe.health_until(lambda _, body: not body["rig_online"])
            assert status == 503, body
            assert body["status"] == "degraded"
            assert body["problems"] == ["the rig does not answer"]
            assert body["server_connected"] is True
            samples = await probe.metrics()
            assert samples["radiocore_agent_rig_online"] == 0
            assert samples["radiocore_agent_rig_outages_total"] >= 1

            # rigctld back on the same port: ok again
            rigctld.start()
            status, body = await probe.health_until(lambda status, _: status == 200)
            assert status == 200 and body["rig_online"] is True, body

            # the server stops (as on SIGTERM): degraded, and the agent keeps trying
            before = body["reconnects"]
            await stop_gracefully(server)
            server_up = False
            status, body = await probe.health_until(
                lambda _, body: not body["server_connected"] and body["reconnects"] > before
            )
            assert status == 503, body
            assert body["problems"] == ["no connection to the server"]
            assert body["reconnects"] > before
            assert body["rig_online"] is True
    finally:
        if operator is not None:
            await operator.close()
        await asyncio.to_thread(agent.stop)  # the server in this loop must answer its goodbye
        if server_up:
            await stop_server(server)


async def test_a_taken_health_port_stops_the_agent_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = BoardAgent(make_config(health_port=port))
        with pytest.raises(HealthServerError, match=f"cannot serve /health and /metrics.*{port}"):
            await asyncio.wait_for(agent.run(), 10)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "localhost", ""])
def test_health_on_a_non_loopback_address_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"health_host .* is not a loopback address"):
        make_config(health_port=9464, health_host=host)


def test_loopback_addresses_are_accepted_and_the_port_is_checked() -> None:
    assert make_config(health_port=9464, health_host="::1").health_host == "::1"
    assert make_config(health_port=9464, health_host="127.0.0.2").health_port == 9464
    assert make_config().health_port == 0  # off unless asked for
    with pytest.raises(ConfigError, match="health_port 70000 is outside"):
        make_config(health_port=70000)


def test_the_command_line_refuses_a_public_health_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", SECRET)
    code = main(["--board-id", BOARD, "--health-port", "9464", "--health-host", "0.0.0.0"])
    assert code == 2
    error = capsys.readouterr().err
    assert "health_host '0.0.0.0' is not a loopback address" in error
