"""Fixtures of the board agent's tests: a real Hamlib dummy rig behind rigctld."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .rigctld_harness import MISSING_REASON, RigctldServer, free_port, rigctld_missing


@pytest.fixture
def rigctld(tmp_path: Path) -> Iterator[RigctldServer]:
    """`rigctld -m 1 -P RIG` on a free loopback port, stopped after the test."""
    if rigctld_missing():
        print(MISSING_REASON)
        pytest.skip(MISSING_REASON)
    server = RigctldServer(free_port(), tmp_path / "rigctld.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
