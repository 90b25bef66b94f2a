"""Fixtures: a live server on loopback and a board agent process connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.tools import free_port
from radiocore import aiortc_hooks
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Rigctld,
    sfu_of,
    start_server,
    stop_server,
)
from tests.support.rigctld import require_rigctld
from tests.support.waiting import wait_for


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rigctld]:
    """Hamlib's dummy rig behind a real rigctld on a free loopback port."""
    require_rigctld()
    daemon = Rigctld(free_port(), tmp_path / "rigctld.log")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = await start_server(tmp_path)
    yield live
    await stop_server(live)
    aiortc_hooks.set_host_addresses(())


@pytest.fixture
async def agent(server: LiveServer, tmp_path: Path) -> AsyncIterator[AgentProcess]:
    process = AgentProcess(server, sink=tmp_path / "tx.raw")
    process.start()
    online = await wait_for(lambda: sfu_of(server).station_online(server.board_id), seconds=30)
    if not online:
        process.stop()
        log = process.log.read_text() if process.log and process.log.exists() else ""
        pytest.fail(f"the board agent did not come online; its log:\n{log[-3000:]}")
    yield process
    await asyncio.to_thread(process.stop)  # the server in this loop must answer its goodbye
