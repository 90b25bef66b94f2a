"""A real PostgreSQL 15 for tests: initdb in a temp dir, a random loopback port, its Unix socket
in that dir, fsync off; one server per test session (tests/signaling/conftest.py), a fresh
database per test.

The one way to start it is `bench.postgres` (`radiocore bench api` uses it too); this module adds
what tests need around it: a missing or unstartable server fails the test
(`tests.support.components.missing`; skipped only with TESTS_REQUIRE_COMPONENTS=0).
"""

from __future__ import annotations

from bench.postgres import (
    MISSING_REASON,
    PG_BIN,
    TEMPLATE,
    PostgresServer,
    PostgresUnavailableError,
    create_template,
    fresh_database,
)
from bench.postgres import start_postgres as _start_postgres
from tests.support.components import missing

__all__ = [
    "MISSING_REASON",
    "PG_BIN",
    "TEMPLATE",
    "PostgresServer",
    "create_template",
    "fresh_database",
    "start_postgres",
]


def start_postgres(*, durable_commits: bool = False) -> PostgresServer:
    """A started server (`bench.postgres.PostgresServer`), or the test fails (skips, opted
    out) saying why."""
    try:
        return _start_postgres(durable_commits=durable_commits)
    except PostgresUnavailableError as exc:
        missing(str(exc))
