"""Station control that is safe, end to end: operators -> server -> board agent -> a real
`rigctld -m 1 -P RIG`. The rig's state is read back from rigctld on its own connection, never
from what our code believes.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import radiocore_protocol as protocol
from bench.control import _operator
from bench.rig_reader import RigReader
from bench.tools import login, seed, stop_process
from bench.tools import start_server as start_server_process
from radiocore import aiortc_hooks
from signaling import keys
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    Rigctld,
    sfu_of,
    start_server,
    stop_server,
    tx_log,
)
from tests.support.rigctld import require_rigctld
from tests.support.waiting import wait_for


@pytest.fixture(autouse=True)
def _rigctld_installed() -> None:
    require_rigctld()


PTT_ON = protocol.encode(protocol.Ptt(state=True)).decode()


def send(operator: Operator, message: protocol.OperatorMessage) -> None:
    operator.send(protocol.encode(message).decode())


def spawn_agent(
    url: str, board_id: str, secret: str, args: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """`python -m board_agent` for the board, its output in `log` (read it when a test fails)."""
    env = dict(os.environ, RADIOCORE_AGENT_SECRET=secret)
    command = [sys.executable, "-m", "board_agent", "--server", url, "--board-id", board_id,
               "--ice-host-address", "127.0.0.1", *args]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def rig_args(rig: Rigctld) -> list[str]:
    return ["--rig", "rigctld", "--rigctld-port", str(rig.port)]


@pytest.fixture
async def controlled(tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = await start_server(
        tmp_path, config={"floor.tx_timeout_s": 3.0, "floor.tx_warning_s": 1.0}
    )
    yield live
    await stop_server(live)
    aiortc_hooks.set_host_addresses(())


@pytest.fixture
async def rig_agent(controlled: LiveServer, rig: Rigctld, tmp_path: Path) -> AsyncIterator[Any]:
    agent = AgentProcess(controlled, sink=tmp_path / "tx.raw", extra_args=rig_args(rig))
    agent.start()
    online = await wait_for(lambda: sfu_of(controlled).station_online(controlled.board_id), 30)
    room = sfu_of(controlled).room(controlled.board_id)
    assert online and await wait_for(lambda: room is not None and room.capabilities is not None), (
        agent.log.read_text()[-3000:] if agent.log else "agent did not start"
    )
    yield agent
    await asyncio.to_thread(agent.stop)  # the server in this loop must answer its goodbye


@contextlib.asynccontextmanager
async def watching(rig: Rigctld, *operators: Operator) -> AsyncIterator[RigReader]:
    """A reader of the rig's real state; closes it and the operators afterwards."""
    reader = rig.reader()
    try:
        yield reader
    finally:
        reader.close()
        for op in operators:
            await op.close()


async def keyed_operator_process(url: str, token: str, board_id: str) -> tuple[Any, Any]:
    """An operator in a process of its own (so it can be killed hard) that has pressed PTT,
    and the pipe that commands it (keep it: the process ends when its pipe closes)."""
    ctx = multiprocessing.get_context("spawn")
    pipe, child_end = ctx.Pipe()
    holder = ctx.Process(target=_operator, args=(url, token, board_id, child_end))
    holder.start()
    assert await asyncio.to_thread(pipe.poll, 60) and pipe.recv() == "ready"
    pipe.send(("key",))
    await asyncio.to_thread(pipe.recv)
    return holder, pipe


@dataclass
class ProcessStation:
    """`radiocore serve` and the agent as processes, an operator process holding PTT, and a
    reader of the rig; `server` may be replaced (a restart) before the station closes."""

    url: str
    board_id: str
    token: str
    server: subprocess.Popen[bytes]
    agent: subprocess.Popen[bytes]
    reader: RigReader


@contextlib.asynccontextmanager
async def keyed_process_station(rig: Rigctld, tmp_path: Path) -> AsyncIterator[ProcessStation]:
    """A station of real processes on `rig`, keyed by an operator; all of it stopped after."""
    board_id, secret = await seed(tmp_path)
    url, server = await asyncio.to_thread(
        start_server_process, tmp_path, '[ice]\nhost_addresses = ["127.0.0.1"]\n'
    )
    agent = spawn_agent(url, board_id, secret, rig_args(rig), tmp_path / "agent.log")
    station = ProcessStation(url, board_id, "", server, agent, rig.reader())
    holder = None
    try:
        station.token = await asyncio.to_thread(login, url)
        holder, _pipe = await keyed_operator_process(url, station.token, board_id)
        assert await wait_for(lambda: station.reader.ptt(), seconds=5), "could not key the rig"
        yield station
    finally:
        station.reader.close()
        if holder is not None:
            holder.kill()
            holder.join(timeout=5)
        stop_process(station.agent)
        stop_process(station.server)


async def operator(server: LiveServer, account: Any) -> Operator:
    op = Operator(server, await server.token(account), tap=True)
    await op.connect()
    reply = await op.join_and_listen(server.board_id)
    assert reply["ok"], reply
    assert await wait_for(lambda: op.channel.readyState == "open")
    return op


async def test_operator_tunes_and_keys_the_real_rig(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    reader = rig.reader()
    owner = await operator(controlled, controlled.owner)
    try:
        send(owner, protocol.SetFrequency(value=7_100_000))
        send(owner, protocol.SetMode(value="LSB"))
        assert await wait_for(lambda: reader.freq() == 7_100_000)
        assert await wait_for(lambda: reader.mode() == "LSB")
        owner.key()
        assert await wait_for(lambda: reader.ptt(), seconds=5)
        owner.unkey()
        assert await wait_for(lambda: not reader.ptt(), seconds=5)
        statuses = lambda: [  # noqa: E731
            protocol.decode_station_message(m) for m in owner.messages("status")
        ]
        assert await wait_for(
            lambda: any(
                isinstance(s, protocol.Status) and s.freq == 7_100_000 and s.smeter is not None
                for s in statuses()
            )
        ), "the rig's state (with its S-meter) did not reach the operator"
    finally:
        reader.close()
        await owner.close()


async def test_two_operators_race_for_ptt_and_exactly_one_wins(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    first = await operator(controlled, controlled.other)  # the guest, twice
    second = await operator(controlled, controlled.other)
    async with watching(rig, first, second) as reader:
        first.send(PTT_ON)
        second.send(PTT_ON)
        busy = lambda op: any("floor_busy" in m for m in op.messages("error"))  # noqa: E731
        assert await wait_for(lambda: busy(first) or busy(second))
        await asyncio.sleep(0.3)
        assert busy(first) != busy(second), "both or neither got the floor"
        assert reader.ptt()


async def test_owner_takes_over_and_the_guest_is_told(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    guest = await operator(controlled, controlled.other)
    owner = await operator(controlled, controlled.owner)
    async with watching(rig, guest, owner) as reader:
        guest.key()
        assert await wait_for(lambda: reader.ptt(), seconds=5)
        owner.key()
        assert await wait_for(lambda: guest.messages("ptt_released"))
        released = protocol.decode_server_message(guest.messages("ptt_released")[0])
        assert released == protocol.PttReleased(reason="override", by="DL1OWN")
        assert await wait_for(
            lambda: any('"holder":"DL1OWN"' in m for m in guest.messages("floor"))
        )
        assert await wait_for(lambda: reader.ptt(), seconds=5)
        owner.unkey()
        assert await wait_for(lambda: not reader.ptt(), seconds=5)


async def test_holder_killed_mid_transmission_unkeys_the_rig(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    token = await controlled.token(controlled.owner)
    holder, _pipe = await keyed_operator_process(controlled.url, token, controlled.board_id)
    reader = rig.reader()
    try:
        assert await wait_for(lambda: reader.ptt(), seconds=5)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        os.kill(holder.pid or 0, signal.SIGKILL)
        assert await wait_for(lambda: not reader.ptt(), seconds=5)
        assert loop.time() - killed < 2.5, "the dead-man took longer than its bound"
    finally:
        reader.close()
        holder.join(timeout=5)
    sessions: list[dict[str, Any]] = []
    for _ in range(50):  # the audit log is written a moment after the release
        sessions = await tx_log(controlled.url, token, controlled.board_id)
        if sessions and sessions[0]["reason"]:
            break
        await asyncio.sleep(0.1)
    assert sessions[0]["callsign"] == "DL1OWN"
    assert sessions[0]["reason"] in ("deadman", "link_lost"), sessions
    guest = await controlled.token(controlled.other)
    async with aiohttp.ClientSession() as http:
        refused = await http.get(
            controlled.url + f"api/boards/{controlled.board_id}/tx-log",
            headers={"Authorization": f"Bearer {guest}"},
        )
        assert refused.status == 403


async def test_tx_timeout_releases_the_rig(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    owner = await operator(controlled, controlled.owner)
    async with watching(rig, owner) as reader:
        owner.key()
        assert await wait_for(lambda: reader.ptt(), seconds=5)
        loop = asyncio.get_running_loop()
        keyed = loop.time()
        assert await wait_for(lambda: not reader.ptt(), seconds=8)
        assert 2.0 < loop.time() - keyed < 4.5, "the 3 s time-out was not honoured within 1 s"
        assert owner.messages("tx_warning"), "no warning before the time-out"
        assert any('"reason":"timeout"' in m for m in owner.messages("ptt_released"))


async def test_invalid_commands_get_errors_and_never_reach_the_rig(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    owner = await operator(controlled, controlled.owner)
    async with watching(rig, owner) as reader:
        before = reader.freq()
        send(owner, protocol.SetFrequency(value=50_000))  # below the dummy's 150 kHz
        send(owner, protocol.SetMode(value="PKTUSB"))  # the dummy has no packet modes
        owner.send('{"type":"mode","value":"WARP"}')
        owner.send('{"type":"freq","value":-5}')
        assert await wait_for(lambda: len(owner.messages("error")) >= 4)
        codes = [protocol.decode_server_message(m) for m in owner.messages("error")]
        assert all(isinstance(c, protocol.Error) and c.code.value == "bad_request" for c in codes)
        await asyncio.sleep(0.5)
        assert reader.freq() == before
        assert reader.mode() != "PKTUSB"
        assert not reader.ptt()


async def test_listener_cannot_key(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    await controlled.app[keys.STORE].set_grant(
        controlled.board_id, controlled.other.user_id, "listen"
    )
    listener = await operator(controlled, controlled.other)
    async with watching(rig, listener) as reader:
        listener.send(PTT_ON)
        assert await wait_for(lambda: any("forbidden" in m for m in listener.messages("error")))
        await asyncio.sleep(0.5)
        assert not reader.ptt()


async def test_rigctld_dying_is_reported_and_recovered(
    controlled: LiveServer, rig: Rigctld, rig_agent: AgentProcess
) -> None:
    owner = await operator(controlled, controlled.owner)
    try:
        rig.kill()
        offline = lambda: any('"rig_online":false' in m for m in owner.messages("status"))  # noqa: E731
        assert await wait_for(offline, seconds=10), "the operator was not told the rig is offline"
        assert rig_agent.process is not None and rig_agent.process.poll() is None
        count = len(owner.messages("status"))
        rig.start()
        assert await wait_for(
            lambda: any('"rig_online":true' in m for m in owner.messages("status")[count:]),
            seconds=20,
        ), "the agent did not recover when rigctld came back"
    finally:
        await owner.close()


async def test_agent_unkeys_when_the_server_dies(rig: Rigctld, tmp_path: Path) -> None:
    async with keyed_process_station(rig, tmp_path) as station:
        loop = asyncio.get_running_loop()
        killed = loop.time()
        station.server.send_signal(signal.SIGKILL)
        assert await wait_for(lambda: not station.reader.ptt(), seconds=5), "the rig stayed keyed"
        assert loop.time() - killed < 2.5
        assert station.agent.poll() is None, "the agent died with the server"
