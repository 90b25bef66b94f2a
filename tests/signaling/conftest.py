"""Fixtures every signaling test module shares.

`postgres_server` lives here, not in a test module: a fixture imported into several modules is
a separate fixture in each (one cluster per module); defined once here, one PostgreSQL serves
the whole session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, start_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session (tests/support/postgres.py); each test takes a fresh
    database of it with `fresh_database`."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
