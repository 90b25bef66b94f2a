"""A live session seen through `/metrics` and the JSON logs: a real board agent process (logging
JSON), the real server, a real aiortc operator that listens and keys. The metrics move as a
person would expect (the board goes online and offline, audio is forwarded, a transmission ends
`released`); every log line of server and agent parses as JSON, the join lines carry the board
and operator ids, and no secret, password or token appears anywhere in them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.tools import free_port
from radiocore.logs import JsonFormatter
from signaling import keys
from tests.integration.harness import AgentProcess, LiveServer, Operator
from tests.support.waiting import wait_for

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "radiocore-dashboard.json"
#: A metric's name in a PromQL expression (labels, functions and ranges around it).
METRIC_NAME = re.compile(r"\b((?:radiocore|process)_[a-z_]+)\b")


@pytest.fixture(autouse=True)
def agent_health_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """The agent's own /health and /metrics on this loopback port (set before it starts)."""
    port = free_port()
    monkeypatch.setenv("RADIOCORE_AGENT_HEALTH_PORT", str(port))
    return port


@pytest.fixture(autouse=True)
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The server's log (this process) as JSON lines, from before it starts; the agent's too
    (its environment)."""
    monkeypatch.setenv("RADIOCORE_AGENT_LOG_FORMAT", "json")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def scrape(server: LiveServer | str) -> dict[str, float]:
    """`/metrics` (the server's, or at a URL) from loopback, parsed: `name{label="value",...}`
    → value."""
    url = server if isinstance(server, str) else server.url + "metrics"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
        http.get(url) as reply,
    ):
        assert reply.status == 200
        body = await reply.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def metrics_until(
    server: LiveServer, key: str, expected: float, seconds: float = 20.0
) -> dict[str, float]:
    """Scrape (bounded) until `key` reads `expected`; the last scrape."""
    samples: dict[str, float] = {}
    for _ in range(int(seconds / 0.25)):
        samples = await scrape(server)
        if samples.get(key) == expected:
            return samples
        await asyncio.sleep(0.25)
    raise AssertionError(f"{key} is {samples.get(key)}, not {expected}, after {seconds} s")


def secrets_of(server: LiveServer) -> list[str]:
    return [
        server.board_secret,
        server.owner.password,
        server.other.password,
        server.app[keys.CONFIG].secret,  # the JWT signing secret
    ]


def parsed(lines: list[str], where: str) -> list[dict[str, Any]]:
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"a {where} log line is not JSON: {line[:300]!r}") from None
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        entries.append(entry)
    return entries


async def test_a_live_session_in_metrics_and_json_logs_without_secrets(
    server: LiveServer, agent: AgentProcess, json_logs: io.StringIO, agent_health_port: int
) -> None:
    board = f'radiocore_board_online{{board="{server.board_id}"}}'
    other = f'radiocore_board_online{{board="{server.other_board_id}"}}'
    samples = await metrics_until(server, board, 1)
    assert samples[other] == 0
    assert samples["radiocore_rooms"] == 1

    token = await server.token(server.owner)
    operator = Operator(server, token, mic_hz=700.0)
    try:
        await operator.connect()
        assert (await operator.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: len(operator.frames) >= 50, seconds=20)
        assert await wait_for(lambda: operator.channel.readyState == "open")
        samples = await scrape(server)
        assert samples["radiocore_operators"] == 1
        assert samples["radiocore_listeners"] == 1
        assert samples["radiocore_packets_forwarded_total"] >= 50
        assert samples["radiocore_bytes_forwarded_total"] > 50 * 20  # Opus frames
        assert samples["radiocore_forward_latency_seconds_count"] >= 50  # every packet sampled

        operator.key()
        await metrics_until(server, "radiocore_ptt_active", 1)
        await asyncio.sleep(0.5)
        operator.unkey()
        samples = await metrics_until(
            server, 'radiocore_ptt_sessions_total{end_reason="released"}', 1
        )
        assert samples["radiocore_ptt_active"] == 0
        # every series the shipped Grafana dashboard queries exists, at the server or the agent
        agent_samples = await scrape(f"http://127.0.0.1:{agent_health_port}/metrics")
        assert agent_samples["radiocore_agent_ptt_sessions_total"] == 1
        exposed = {name.split("{")[0] for name in [*samples, *agent_samples]}
        dashboard = json.loads(DASHBOARD.read_text())
        queried = {
            name
            for panel in dashboard["panels"]
            for target in panel["targets"]
            for name in METRIC_NAME.findall(target["expr"])
        }
        assert len(queried) >= 15
        assert queried <= exposed, f"the dashboard queries, unexposed: {queried - exposed}"
    finally:
        await operator.close()
    await metrics_until(server, "radiocore_operators", 0)
    forwarded = (await scrape(server))["radiocore_packets_forwarded_total"]

    await asyncio.to_thread(agent.stop)
    samples = await metrics_until(server, board, 0)
    assert samples["radiocore_rooms"] == 0
    # the counters count what rooms that are gone forwarded too
    assert samples["radiocore_packets_forwarded_total"] >= forwarded

    server_lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    assert agent.log is not None
    agent_lines = [line for line in agent.log.read_text().splitlines() if line.strip()]
    entries = parsed(server_lines, "server")
    parsed(agent_lines, "agent")
    joins = [e for e in entries if "joined board" in e["message"]]
    assert joins, "no join line"
    assert all(e.get("board_id") == server.board_id for e in joins), joins
    assert any(e.get("operator_id") == server.owner.user_id for e in joins), joins
    assert any(
        e.get("board_id") == server.board_id and "keyed station" in e["message"] for e in entries
    )
    assert any(e.get("reason") == "released" for e in entries)
    everything = "\n".join(server_lines + agent_lines)
    for secret in filter(None, secrets_of(server)):
        assert secret not in everything, "a secret or a password is in the logs"
    assert token not in everything
    found = JWT.search(everything)
    assert found is None, f"a JWT is in the logs: {found.group(0) if found else ''}"
