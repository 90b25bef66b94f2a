"""The server stopping or dying while a station transmits: the rig is released (read from
rigctld on its own connection), the clients are told, and the TX log says what happened."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import socketio

from bench.tools import restart_server, seed, stop_process
from bench.tools import start_server as start_server_process
from signaling import keys
from signaling.store import SQLITE_FILE_NAME, SqliteStore
from tests.integration.harness import LiveServer, start_server, stop_server, tx_log
from tests.integration.test_station_control import keyed_process_station
from tests.support.rigctld import require_rigctld
from tests.support.waiting import wait_for

SERVER_CONFIG = '[ice]\nhost_addresses = ["127.0.0.1"]\n'


@pytest.fixture(autouse=True)
def _rigctld_installed() -> None:
    require_rigctld()


async def test_sigterm_with_clients_connected_releases_tells_and_exits_in_time(
    rig: Any, tmp_path: Path
) -> None:
    bystander = socketio.AsyncClient(reconnection=False)
    notices: list[Any] = []
    bystander.on("shutdown", notices.append, namespace="/operator")
    async with keyed_process_station(rig, tmp_path) as station:
        try:
            await bystander.connect(
                station.url,
                namespaces=["/operator"],
                auth={"token": station.token},
                transports=["websocket"],
            )
            signalled = time.monotonic()
            station.server.send_signal(signal.SIGTERM)
            assert await wait_for(lambda: not station.reader.ptt(), seconds=3, step=0.01), (
                "still keyed"
            )
            released_s = time.monotonic() - signalled
            code = await asyncio.to_thread(station.server.wait, 10)
            stopped_s = time.monotonic() - signalled
            assert code == 0, f"the server exited with {code}"
            assert released_s < 1.5, f"PTT released {released_s:.2f} s after SIGTERM"
            assert stopped_s < 5.0, f"the server took {stopped_s:.2f} s to stop"
            assert notices == [{"message": "the server is stopping", "retry_after_s": 5}]
            assert await wait_for(lambda: not bystander.connected, seconds=2)
            async with SqliteStore(tmp_path / SQLITE_FILE_NAME) as store:
                sessions = await store.tx_sessions(station.board_id)
            assert sessions[0].reason == "server_shutdown" and sessions[0].ended_at is not None
            assert station.agent.poll() is None, "the agent died with the server"
        finally:
            if bystander.connected:
                await bystander.disconnect()


async def test_sigterm_with_nobody_connected_exits_0_at_once(tmp_path: Path) -> None:
    await seed(tmp_path)
    _, server = await asyncio.to_thread(start_server_process, tmp_path, SERVER_CONFIG)
    try:
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.wait, 10)
        assert code == 0, f"the server exited with {code}"
        assert time.monotonic() - signalled < 5.0
    finally:
        stop_process(server)


async def test_a_killed_server_closes_the_record_it_left_open_when_it_restarts(
    rig: Any, tmp_path: Path
) -> None:
    async with keyed_process_station(rig, tmp_path) as station:
        url, token, board_id = station.url, station.token, station.board_id
        killed_at = datetime.now(UTC)
        station.server.send_signal(signal.SIGKILL)
        station.server.wait(5)
        assert await wait_for(lambda: not station.reader.ptt(), seconds=3), "still keyed"
        await asyncio.sleep(1.0)  # so that the restart is clearly later than the unkey
        restarted_at = datetime.now(UTC)
        station.server = await asyncio.to_thread(restart_server, tmp_path, url)
        sessions = await tx_log(url, token, board_id)
        assert sessions[0]["reason"] == "server_restart", sessions[0]
        # closed at the restart, unless the reconnecting agent already settled it (a race the
        # agent may win: it reconnects as soon as the server answers)
        first_end = datetime.fromisoformat(sessions[0]["ended_at"])
        assert first_end >= restarted_at or killed_at < first_end < restarted_at, first_end
        # the agent reconnects and says when it unkeyed (at the link loss): that is the end
        ends: list[datetime] = []

        async def settled() -> bool:
            record = (await tx_log(url, token, board_id))[0]
            ends.append(datetime.fromisoformat(record["ended_at"]))
            return ends[-1] < restarted_at

        for _ in range(60):  # the agent's back-off: a few seconds
            if await settled():
                break
            await asyncio.sleep(0.25)
        assert ends[-1] < restarted_at, "the station's unkey time never reached the TX log"
        assert killed_at < ends[-1] < killed_at + timedelta(seconds=2)


async def test_a_stations_hello_gives_the_real_end_of_a_record_left_open(
    tmp_path: Path,
) -> None:
    live: LiveServer = await start_server(tmp_path)
    store = live.app[keys.STORE]
    agent = socketio.AsyncClient(reconnection=False)
    try:
        keyed_at = datetime.now(UTC) - timedelta(minutes=5)
        tx = await store.start_tx(live.board_id, live.owner.user_id, "DL1OWN", keyed_at)
        restart = datetime.now(UTC) - timedelta(minutes=1)
        await store.close_open_tx(restart, "server_restart")
        await agent.connect(
            live.url,
            namespaces=["/agent"],
            auth={"board_id": live.board_id, "secret": live.board_secret},
            transports=["websocket"],
        )
        bad = await agent.call("hello", {"ptt_released_at": "soon"}, namespace="/agent")
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
        future = (datetime.now(UTC) + timedelta(hours=1)).timestamp()
        assert (await agent.call("hello", {"ptt_released_at": future}, namespace="/agent"))["ok"]
        assert (await store.tx_sessions(live.board_id))[0].ended_at == restart  # not the future
        unkeyed = keyed_at + timedelta(seconds=42)
        reply = await agent.call(
            "hello", {"ptt_released_at": unkeyed.timestamp()}, namespace="/agent"
        )
        assert reply["ok"], reply
        record = (await store.tx_sessions(live.board_id))[0]
        assert record.id == tx and record.reason == "server_restart"
        assert abs((record.ended_at - unkeyed).total_seconds()) < 0.001
    finally:
        if agent.connected:
            await agent.disconnect()
        await stop_server(live)
