"""`radiocore bench api` runs end to end, small, on both databases and reports every figure; its
admission checks (in-process and through Socket.IO `join`) answer what the seed says for each
kind of user; no two stored bookings overlap afterwards. Speeds are not judged here.

And the premise of its login phase: `[limits] login_per_minute` is what the server applies
(the default stays the seed's 5 a minute per address; the benchmark raises it)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bench.api import KINDS
from signaling.app import create_app
from signaling.config import load_server_config
from tests.support.components import require
from tests.support.postgres import MISSING_REASON, PG_BIN

USERS = 200
BOARDS = 20
ADMISSION_CALLS = 400
JOIN_CALLS = 120
CLIENTS = 6
SECRET = "bench-api-test-" + "Vb7qR2" * 8

NUMBERS = {
    "admission": ("ms_p50", "ms_p99", "ms_max"),
    "join": ("ms_p50", "ms_p99", "ms_max", "connect_ms_p50", "connect_ms_p99"),
    "booking": (
        "accepted_per_s", "conflicts_per_s", "requests_per_s", "hot_calendar_booked_pct",
        "ms_p50", "ms_p99", "server_cpu_pct",
    ),
    "login": (
        "logins_per_s", "ms_p50", "ms_p99", "server_cpu_pct", "server_cpu_ms_per_login",
        "logins_per_core_per_s", "password_hash_ms", "password_hashes_per_core_per_s",
    ),
}  # fmt: skip


def run_bench(database: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "api", "--database", database,
         "--users", str(USERS), "--boards", str(BOARDS), "--seconds", "2",
         "--admission-calls", str(ADMISSION_CALLS), "--join-calls", str(JOIN_CALLS),
         "--clients", str(CLIENTS), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def assert_decisions(section: dict[str, Any], calls: int) -> None:
    """Every kind was asked, and every answer was what the seed says."""
    decisions = section["decisions"]
    assert set(decisions) == set(KINDS)
    assert sum(d["calls"] for d in decisions.values()) == calls
    for kind, tally in decisions.items():
        assert tally["calls"] > 0, kind
        assert tally["as_expected"] == tally["calls"], (kind, section["unexpected"])
    assert section["unexpected"] == []


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_bench_api_reports_every_figure_and_checks_its_answers(database: str) -> None:
    if database == "postgres":
        require(os.access(PG_BIN / "initdb", os.X_OK), MISSING_REASON)
    report = run_bench(database)

    assert report["database"] == database
    assert (report["users"], report["boards"]) == (USERS, BOARDS)
    seed = report["seed"]
    assert (seed["users"], seed["boards"]) == (USERS, BOARDS)
    assert seed["grants"] == 3 * BOARDS and seed["bookings"] == 3 * BOARDS
    assert "computed once" in seed["password_hash"]
    for section, names in NUMBERS.items():
        for name in names:
            value = report[section][name]
            assert isinstance(value, int | float) and value >= 0, (section, name, value)

    assert report["admission"]["calls"] == ADMISSION_CALLS
    assert_decisions(report["admission"], ADMISSION_CALLS)
    assert report["admission"]["goal_ms_p99"] == 5.0
    join = report["join"]
    assert join["calls"] == join["one_in_flight"]["calls"] == JOIN_CALLS
    for name in ("ms_p50", "ms_p99", "ms_max"):
        assert isinstance(join["one_in_flight"][name], float), name
    assert_decisions(join, 2 * JOIN_CALLS)  # one at a time, then several in flight

    booking = report["booking"]
    assert booking["clients"] == CLIENTS
    assert booking["accepted"] >= 1
    assert booking["accepted"] + booking["conflicts"] == booking["requests"]
    assert booking["other_statuses"] == {}
    assert booking["no_overlapping_bookings"] is True
    assert booking["boards_with_overlaps"] == 0
    assert booking["stored_match_accepted"] is True
    assert booking["bookings_checked"] >= 3 * BOARDS + booking["accepted"]
    if database == "postgres":
        assert isinstance(booking["database_cpu_pct"], float)
    else:
        assert booking["database_cpu_pct"] is None  # SQLite runs inside the server

    login = report["login"]
    assert login["logins"] >= 1
    assert login["other_statuses"] == {}  # no 429: the raised limit held, no 401 either


def test_bench_api_refuses_a_seed_too_small() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "api", "--users", "5"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--users must be at least 10" in result.stderr


# -- the login limit the benchmark raises -------------------------------------------------------


@contextlib.asynccontextmanager
async def _server(tmp_path: Path, overrides: dict[str, object]) -> AsyncIterator[str]:
    config = load_server_config(
        None,
        {"RADIOCORE_SECRET": SECRET},
        {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path), **overrides},
    )
    runner = web.AppRunner(create_app(config), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _login_statuses(url: str, attempts: int) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(attempts):
            async with http.post(
                url + "/api/auth/login",
                json={"email": "nobody@example.org", "password": "not the password"},
            ) as reply:
                statuses.append(reply.status)
    return statuses


@pytest.mark.parametrize(("overrides", "allowed"), [({}, 5), ({"limits.login_per_minute": 8}, 8)])
async def test_login_per_minute_is_the_limit_the_server_applies(
    tmp_path: Path, overrides: dict[str, object], allowed: int
) -> None:
    # a burst of `allowed` attempts (every attempt counts, bad ones too), then 429; the next
    # is allowed only 60/allowed s later, far longer than these attempts take
    async with _server(tmp_path, overrides) as url:
        statuses = await _login_statuses(url, allowed + 1)
        assert statuses == [401] * allowed + [429]
