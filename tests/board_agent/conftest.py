"""Fixtures of the board agent's tests: a real Hamlib dummy rig behind rigctld."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rigctld import RigctldServer, free_port, require_rigctld


@pytest.fixture
def rigctld(tmp_path: Path) -> Iterator[RigctldServer]:
    """`rigctld -m 1 -P RIG` on a free loopback port, stopped after the test."""
    require_rigctld()
    server = RigctldServer(free_port(), tmp_path / "rigctld.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
