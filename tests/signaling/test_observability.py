"""Observability of the real server: `/ready` follows its database and Redis (real ones, stopped
and started under it), `/metrics` parses as Prometheus text, names every metric the dashboards
and `radiocore bench soak` read, is refused to whoever is neither on loopback nor holds the
token, and moves when a user is refused; the log formats (`radiocore.logs`) and their settings.

A live session with a real board agent (board online, PTT, forwarding, JSON logs without a
secret) is in tests/integration/test_observability.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from radiocore.logs import JsonFormatter, formatter
from signaling.accounts import create_account, register_board
from signaling.app import create_app
from signaling.config import load_server_config
from signaling.errors import ConfigError
from signaling.store import SqliteStore
from tests.support.postgres import start_postgres
from tests.support.redis import start_redis

EMAIL = "watch@example.org"
PASSWORD = "watch-password-1"
SECRET = "observability-" + "s3cr3t" * 8
METRICS_TOKEN = "mT0k-" + "9fQz2LpX7wRc4VbN" * 3

#: Every name other tools depend on (docs/monitoring.md), as the text format spells samples.
METRIC_NAMES = (
    "radiocore_rooms",
    "radiocore_operators",
    "radiocore_listeners",
    "radiocore_relayed_rooms",
    "radiocore_forwarding_lane_compiled",
    "radiocore_packets_forwarded_total",
    "radiocore_bytes_forwarded_total",
    "radiocore_packets_dropped_total",
    "radiocore_forward_latency_seconds_bucket",
    "radiocore_forward_latency_seconds_count",
    "radiocore_event_loop_lag_seconds_bucket",
    "radiocore_event_loop_lag_seconds_count",
    "radiocore_asyncio_tasks",
    "radiocore_ptt_sessions_total",
    "radiocore_ptt_active",
    "radiocore_auth_failures_total",
    "radiocore_rate_limited_total",
    "radiocore_agents_placed_elsewhere_total",
    "radiocore_udp_unclaimed_datagrams_total",
    "radiocore_board_online",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_cpu_seconds_total",
)


@contextlib.asynccontextmanager
async def running(
    data_dir: Path, env: dict[str, str] | None = None, **overrides: object
) -> AsyncIterator[tuple[web.Application, str]]:
    """The real server on a free loopback port, one account with one board seeded (in SQLite);
    (app, base URL)."""
    async with SqliteStore(data_dir / "radiocore.sqlite3") as store:
        user = await create_account(store, EMAIL, PASSWORD, "DL1OBS")
        await register_board(store, user.id, "Observed station")
    config = load_server_config(
        None,
        {"RADIOCORE_SECRET": SECRET, **(env or {})},
        {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir), **overrides},
    )
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def get(
    url: str, headers: dict[str, str] | None = None, source: str | None = None
) -> tuple[int, str]:
    """GET `url` (from the local address `source`, if given); (status, body)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None)
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
        http.get(url, headers=headers or {}) as reply,
    ):
        return reply.status, await reply.text()


async def ready(base: str) -> tuple[int, dict[str, Any]]:
    status, body = await get(base + "/ready")
    return status, json.loads(body)


async def scrape(base: str, **kwargs: Any) -> dict[str, float]:
    """`/metrics`, parsed: every sample as `name{label="value",...}` → value."""
    status, body = await get(base + "/metrics", **kwargs)
    assert status == 200, body
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def ready_becomes(
    base: str, status: int, seconds: float = 15.0, state: str | None = None
) -> dict[str, Any]:
    """Poll `/ready` (bounded) until it answers `status` (with `"status": state`, if given);
    its last body."""
    body: dict[str, Any] = {}
    for _ in range(int(seconds / 0.2)):
        got, body = await ready(base)
        if got == status and state in (None, body.get("status")):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"/ready did not answer {status} within {seconds} s: {body}")


# -- /ready ------------------------------------------------------------------------------------


async def test_ready_on_sqlite_and_health_stays_liveness(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, base):
        status, body = await ready(base)
        assert status == 200, body
        assert body == {
            "status": "ready",
            "checks": {
                "database": {"ok": True},
                "redis": {"ok": True, "configured": False},
                "turn": {"ok": True, "configured": False},
            },
        }
        status, text = await get(base + "/health")
        assert status == 200 and json.loads(text)["status"] == "ok"


async def test_ready_says_redis_is_down_and_recovers_when_it_is_back(tmp_path: Path) -> None:
    redis = start_redis()
    try:
        async with running(tmp_path, {"RADIOCORE_REDIS_URL": redis.url}) as (_, base):
            status, body = await ready(base)
            assert status == 200, body
            assert body["checks"]["redis"] == {"ok": True}

            assert redis.process is not None
            redis.process.terminate()
            redis.process.wait(10)
            # the node still serves (this node counts the rate limits): degraded, not drained
            status, body = await ready(base)
            assert status == 200, body
            assert body["status"] == "degraded" and body["degraded"] == ["redis"], body
            assert body["checks"]["database"] == {"ok": True}
            check = body["checks"]["redis"]
            # the first PING finds its connection closed, the next one is refused
            assert check["ok"] is False, check
            assert check["error"].startswith(("connection closed", "connection refused")), check
            status, body = await ready(base)
            assert status == 200 and body["checks"]["redis"]["ok"] is False, body
            assert body["checks"]["redis"]["error"].startswith("connection refused"), body
            assert str(redis.port) not in json.dumps(body), "an internal address in /ready"
            status, _ = await get(base + "/health")
            assert status == 200, "liveness must not follow a dependency"

            await asyncio.to_thread(redis.restart)
            body = await ready_becomes(base, 200, state="ready")
            assert body["checks"]["redis"] == {"ok": True} and "degraded" not in body
    finally:
        redis.stop()


async def test_ready_on_postgresql_then_not_ready_when_it_stops(tmp_path: Path) -> None:
    postgres = start_postgres()  # its own cluster: this test stops it
    try:
        url = postgres.url()
        async with running(tmp_path / "data", {"RADIOCORE_DATABASE_URL": url}) as (_, base):
            status, body = await ready(base)
            assert status == 200, body
            assert body["checks"]["database"] == {"ok": True}

            postgres.stop()
            status, body = await ready(base)
            assert status == 503, body
            check = body["checks"]["database"]
            assert check["ok"] is False and check["error"], check
            assert str(postgres.port) not in json.dumps(body)
    finally:
        postgres.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


# -- /metrics ----------------------------------------------------------------------------------


async def test_metrics_from_loopback_parse_and_name_every_metric(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, base):
        await asyncio.sleep(0.6)  # one event-loop lag observation
        samples = await scrape(base)
        names = {key.split("{", 1)[0] for key in samples}
        assert set(METRIC_NAMES) <= names, set(METRIC_NAMES) - names
        assert samples["radiocore_rooms"] == 0
        assert samples["radiocore_forwarding_lane_compiled"] == 1  # make test requires it built
        assert samples["radiocore_asyncio_tasks"] >= 1
        assert samples["process_resident_memory_bytes"] > 10_000_000
        assert samples["process_open_fds"] > 3
        assert samples["radiocore_event_loop_lag_seconds_count"] >= 1
        assert samples['radiocore_ptt_sessions_total{end_reason="released"}'] == 0
        assert samples['radiocore_packets_dropped_total{reason="queue_full"}'] == 0
        assert samples['radiocore_auth_failures_total{entry="rest_login"}'] == 0
        (board,) = [key for key in samples if key.startswith("radiocore_board_online{")]
        assert samples[board] == 0, "a board whose agent never connected is offline"


async def test_metrics_are_refused_through_a_proxy_and_from_elsewhere_without_the_token(
    tmp_path: Path,
) -> None:
    env = {"RADIOCORE_METRICS__TOKEN": METRICS_TOKEN}
    async with running(tmp_path, env) as (_, base):
        url = base + "/metrics"
        # a reverse proxy on this machine connects from loopback for everyone
        assert (await get(url, {"X-Forwarded-For": "198.51.100.7"}))[0] == 403
        # another address (127.0.0.2 is not this server's loopback address)
        assert (await get(url, source="127.0.0.2"))[0] == 403
        wrong = {"Authorization": "Bearer " + METRICS_TOKEN[:-1] + "x"}
        assert (await get(url, wrong, source="127.0.0.2"))[0] == 403
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await get(url, {**right, "X-Forwarded-For": "198.51.100.7"}))[0] == 200
        samples = await scrape(base, headers=right, source="127.0.0.2")
        assert "radiocore_asyncio_tasks" in samples
        # /ready and /health are public
        assert (await get(base + "/ready", source="127.0.0.2"))[0] == 200


async def test_refused_credentials_and_rate_limits_are_counted(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, base):
        async with aiohttp.ClientSession() as http:
            for _ in range(6):  # the sixth is over the login limit (5 a minute)
                async with http.post(
                    base + "/api/auth/login", json={"email": EMAIL, "password": "wrong-one-1"}
                ) as reply:
                    last = reply.status
            assert last == 429
            async with http.get(
                base + "/api/boards", headers={"Authorization": "Bearer eyJ.forged.token"}
            ) as reply:
                assert reply.status == 401
        for namespace, auth in (
            ("/operator", {"token": "not-a-token"}),
            ("/agent", {"board_id": "12345678-1234-4234-8234-123456789abc", "secret": "x" * 40}),
        ):
            client = socketio.AsyncClient(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(
                    base, namespaces=[namespace], auth=auth, transports=["websocket"],
                    wait_timeout=10,
                )  # fmt: skip
            await client.disconnect()
        samples = await scrape(base)
        assert samples['radiocore_auth_failures_total{entry="rest_login"}'] == 5
        assert samples['radiocore_auth_failures_total{entry="rest_token"}'] == 1
        assert samples['radiocore_auth_failures_total{entry="socketio_operator"}'] == 1
        assert samples['radiocore_auth_failures_total{entry="socketio_agent"}'] == 1
        assert samples['radiocore_rate_limited_total{limit="login"}'] == 1
        assert samples['radiocore_rate_limited_total{limit="pairing"}'] == 0


# -- settings and log format -------------------------------------------------------------------


def test_log_format_and_metrics_token_settings() -> None:
    env = {"RADIOCORE_SECRET": SECRET}
    assert load_server_config(None, env).log_format == "text"
    config = load_server_config(
        None, {**env, "RADIOCORE_LOG_FORMAT": "JSON", "RADIOCORE_METRICS__TOKEN": METRICS_TOKEN}
    )
    assert config.log_format == "json" and config.metrics.token == METRICS_TOKEN
    assert METRICS_TOKEN not in repr(config) and METRICS_TOKEN not in config.summary()
    with pytest.raises(ConfigError, match="log_format 'xml' is not one of text, json"):
        load_server_config(None, {**env, "RADIOCORE_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match=r"metrics\.token is shorter than 32"):
        load_server_config(None, {**env, "RADIOCORE_METRICS__TOKEN": "short"})


def test_json_lines_carry_the_context_ids_and_nothing_else_of_extra() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    log = logging.getLogger("tests.observability.json")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        log.info(
            "operator %s joined board %s",
            "DL1OBS",
            "b-1",
            extra={"board_id": "b-1", "operator_id": "u-1", "password": "hunter2-hunter2"},
        )
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "operator DL1OBS joined board b-1"
    assert first["level"] == "INFO" and first["logger"] == "tests.observability.json"
    assert first["board_id"] == "b-1" and first["operator_id"] == "u-1"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "password" not in first and "hunter2" not in stream.getvalue()
    assert "ValueError: boom" in second["exception"]
    assert isinstance(formatter("json"), JsonFormatter)
    with pytest.raises(ValueError, match="not one of text, json"):
        formatter("xml")
