"""Never leave the rig keyed when the board agent itself fails: operators -> server -> a real
agent process -> a real `rigctld -m 1 -P RIG`, and the agent killed (SIGKILL), frozen
(SIGSTOP) or stopped (SIGTERM) while keyed. The station's PTT guard must release PTT within
1.5 s of the agent's death or freeze. The rig's state is read from rigctld on connections of
the test's own, never from what the agent reports. Last, the receiver's sound card failing
mid-session must not end the session nor drop PTT.

There is no systemd here: what systemd does when it stops the unit (KillMode=control-group:
SIGTERM to every process left in the unit, then ExecStopPost=`radiocore agent --unkey`) is
done by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from bench.rig_reader import RigReader
from bench.tools import free_port
from tests.integration.harness import (
    Account,
    AgentProcess,
    LiveServer,
    Operator,
    Rigctld,
    sfu_of,
)
from tests.support.rigctld import RIGCTLD, require_rigctld
from tests.support.waiting import wait_for

#: The issue's bound: PTT released this soon after the agent died or froze (the guard's
#: time-out, 0.6 s, plus one unkey through rigctld, ~0.05 s; the rest is margin).
RELEASE_BOUND_S = 1.5


@pytest.fixture(autouse=True)
def _rigctld_installed() -> None:
    require_rigctld()


def rigctld_args(rig: Rigctld) -> list[str]:
    return ["--rig", "rigctld", "--rigctld-port", str(rig.port)]


def hamlib_args(port: int) -> list[str]:
    """The agent runs rigctld itself (under its PTT guard) on `port`."""
    return ["--rig", "hamlib", "--rigctld-path", RIGCTLD, "--rig-model", "1",
            "--rig-ptt-type", "RIG", "--rigctld-port", str(port)]  # fmt: skip


@contextlib.asynccontextmanager
async def running_agent(
    server: LiveServer, tmp_path: Path, args: list[str]
) -> AsyncIterator[AgentProcess]:
    """A board agent process, online with its capabilities known; stopped (or reaped)
    afterwards, with every process it left."""
    agent = AgentProcess(server, sink=tmp_path / "tx.raw", extra_args=args)
    agent.start()
    assert agent.process is not None
    try:
        online = await wait_for(lambda: sfu_of(server).station_online(server.board_id), 30)
        room = sfu_of(server).room(server.board_id)
        ready = online and await wait_for(lambda: room is not None and room.capabilities)
        assert ready, agent.log.read_text()[-3000:] if agent.log else "the agent did not start"
        yield agent
    finally:
        left = descendants(agent.process.pid)
        await asyncio.to_thread(agent.stop)  # the server in this loop must answer its goodbye
        for pid in left:  # bounded: what the agent started, should it have outlived it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux: /proc/PID/task/TID/children), at most 100."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 100:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in task.read_text().split()]
                found += children
                todo += children
    return found


def process_state(pid: int) -> str:
    """`R`, `S`, `T` (stopped), `Z` (zombie) …; "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def gone(pid: int) -> bool:
    """No such process, or only its zombie."""
    return process_state(pid) in ("", "Z")


async def keyed_operator(
    server: LiveServer, account: Account, reader: RigReader, *, tap: bool = True
) -> Operator:
    """An operator holding PTT (keep-alives every 250 ms) with the rig keyed; `tap`: keeps the
    RTP packets, else decodes the station's audio into `frames`."""
    op = Operator(server, await server.token(account), tap=tap)
    await op.connect()
    reply = await op.join_and_listen(server.board_id)
    assert reply["ok"], reply
    assert await wait_for(lambda: op.channel.readyState == "open")
    op.key()
    assert await wait_for(lambda: reader.ptt(), seconds=5), "the rig did not key"
    return op


async def seconds_until_unkeyed(reader: RigReader, since: float, within: float) -> float:
    """Seconds from `since` (time.time()) until rigctld reports PTT off (polled every 2 ms
    in a thread: the server runs on this event loop)."""
    at = await asyncio.to_thread(reader.wait_until, lambda r: not r.ptt(), within)
    assert at is not None, f"the rig was still keyed {within} s later"
    return at - since


#: Reads `t` (get_ptt) on one connection as fast as rigctld answers, until it closes (bounded:
#: 15 s); prints `answered` after the first answer and, at the end, `TIME VALUE` per answer.
#: rigctld 4.5 may close a connection it has just accepted: opened again then (twice). A
#: process of its own: a thread here would wait for the server's event loop (the GIL) and
#: could miss the moment between the guard's release and the end of rigctld.
_RECORDER = """
import socket, sys, time
port, deadline, reads = int(sys.argv[1]), time.monotonic() + 15, []
for _ in range(3):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            stream = sock.makefile("rw", newline="\\n")
            while time.monotonic() < deadline:
                stream.write("t\\n")
                stream.flush()
                line = stream.readline()
                if not line:
                    break
                reads.append((time.time(), line.strip()))
                if len(reads) == 1:
                    print("answered", flush=True)
    except OSError:
        pass
    if reads:
        break
for at, value in reads:
    print(f"{at:.6f} {value}")
"""


def keyed_then_released(reads: Iterable[str]) -> None:
    """The answers to `t`, in order, until rigctld was gone: keyed, then released, and never
    keyed again; the last ones may be errors (rigctld closed the rig, then answers `RPRT -1`)."""
    answers = list(reads)
    states = list(itertools.takewhile(lambda value: value in ("0", "1"), answers))
    assert set(answers[len(states) :]) <= {"RPRT -1"}, answers[-20:]
    assert states and states[0] == "1" and states[-1] == "0", answers[-20:]
    released = states.index("0")
    assert set(states[released:]) == {"0"}, answers[released - 5 : released + 20]


class PttRecorder:
    """The rig's PTT as fast as rigctld answers on a connection of its own (in a process of
    its own, `_RECORDER`), with the time of each answer, until the connection closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reads: list[tuple[float, str]] = []
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start reading; return after the first answer."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _RECORDER, str(self.port), stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        first = await asyncio.wait_for(self._process.stdout.readline(), 5)
        assert first == b"answered\n", "rigctld did not answer"

    async def join(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        out = await asyncio.wait_for(self._process.stdout.read(), 20)
        await self._process.wait()
        for line in out.decode().splitlines():
            at, _, value = line.partition(" ")
            self.reads.append((float(at), value))

    def first_unkeyed_at(self) -> float:
        return next(at for at, value in self.reads if value == "0")


async def test_agent_killed_while_keyed_is_released_by_its_guard(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    async with running_agent(server, tmp_path, rigctld_args(rig)) as agent:
        assert agent.process is not None
        reader = rig.reader()
        owner = await keyed_operator(server, server.owner, reader)
        try:
            guard = descendants(agent.process.pid)
            killed = time.time()
            agent.process.send_signal(signal.SIGKILL)
            released = await seconds_until_unkeyed(reader, killed, 5)
            print(f"rig=rigctld: released {released * 1000:.0f} ms after SIGKILL")
            assert released <= RELEASE_BOUND_S
            assert len(guard) == 1, guard  # the PTT guard (rigctld runs elsewhere)
            assert await wait_for(lambda: gone(guard[0]), 5), "the guard did not exit"
        finally:
            reader.close()
            await owner.close()


async def test_agent_killed_while_keyed_with_its_own_rigctld(
    server: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    async with running_agent(server, tmp_path, hamlib_args(port)) as agent:
        assert agent.process is not None
        reader = RigReader(port)
        owner = await keyed_operator(server, server.owner, reader)
        reader.close()
        recorder = PttRecorder(port)
        try:
            left = descendants(agent.process.pid)
            await recorder.start()
            killed = time.time()
            agent.process.send_signal(signal.SIGKILL)
            await recorder.join()  # until the guard stopped rigctld
            keyed_then_released(value for _, value in recorder.reads)
            released = recorder.first_unkeyed_at() - killed
            print(f"rig=hamlib: released {released * 1000:.0f} ms after SIGKILL")
            assert released <= RELEASE_BOUND_S
            assert len(left) == 2, left  # the guard and its rigctld
            assert await wait_for(lambda: all(gone(pid) for pid in left), 5), left
        finally:
            await owner.close()


async def test_agent_frozen_while_keyed_is_released_and_not_keyed_again(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    async with running_agent(server, tmp_path, rigctld_args(rig)) as agent:
        assert agent.process is not None
        reader = rig.reader()
        owner = await keyed_operator(server, server.owner, reader)
        guest: Operator | None = None
        try:
            frozen = time.time()
            agent.process.send_signal(signal.SIGSTOP)
            try:
                released = await seconds_until_unkeyed(reader, frozen, 5)
                print(f"released {released * 1000:.0f} ms after SIGSTOP")
                assert released <= RELEASE_BOUND_S
                assert agent.process.poll() is None
                assert process_state(agent.process.pid) == "T"  # still stopped
            finally:
                agent.process.send_signal(signal.SIGCONT)
            watchdog = lambda: any(  # noqa: E731
                '"reason":"watchdog"' in m for m in owner.messages("ptt_released")
            )
            assert await wait_for(watchdog, 5), owner.inbox[-10:]
            assert any("PTT guard released PTT" in m for m in owner.messages("error"))
            for _ in range(20):  # the owner's keep-alives go on: never keyed again
                assert not await asyncio.to_thread(reader.ptt)
                await asyncio.sleep(0.05)
            owner.unkey(silently=True)

            guest = await keyed_operator(server, server.other, reader)  # the station works
            guest.unkey()
            assert await wait_for(lambda: not reader.ptt(), seconds=5)
        finally:
            reader.close()
            await owner.close()
            if guest is not None:
                await guest.close()


async def test_agent_stopped_with_sigterm_unkeys_first_and_exits_0(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    async with running_agent(server, tmp_path, rigctld_args(rig)) as agent:
        assert agent.process is not None
        process = agent.process
        reader = rig.reader()
        owner = await keyed_operator(server, server.owner, reader)
        try:
            process.send_signal(signal.SIGTERM)

            def released_while_running() -> bool:
                for _ in range(5000):  # bounded: 10 s at 2 ms
                    running = process.poll() is None
                    if not reader.ptt():
                        return running
                    time.sleep(0.002)
                return False

            assert await asyncio.to_thread(released_while_running), "unkeyed only after exit"
            assert await asyncio.to_thread(process.wait, 10) == 0
        finally:
            reader.close()
            await owner.close()


def unkey_command(agent: AgentProcess) -> subprocess.CompletedProcess[bytes]:
    """`radiocore agent --unkey` with the agent's settings, as ExecStopPost= runs it."""
    assert agent.process is not None
    argv = [str(arg) for arg in agent.process.args]  # type: ignore[union-attr]
    env = dict(os.environ, RADIOCORE_AGENT_SECRET=agent.server.board_secret)
    return subprocess.run([*argv, "--unkey"], env=env, capture_output=True, timeout=30, check=False)


async def test_a_systemd_like_stop_leaves_the_rig_unkeyed(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    """The agent SIGKILLed (e.g. by the OOM killer) and, at the same instant, SIGTERM to every
    other process of the unit (KillMode=control-group: here, the agent's descendants, whatever
    their session), then ExecStopPost=`radiocore agent --unkey`."""
    async with running_agent(server, tmp_path, rigctld_args(rig)) as agent:
        assert agent.process is not None
        reader = rig.reader()
        owner = await keyed_operator(server, server.owner, reader)
        try:
            rest = descendants(agent.process.pid)
            assert rest
            agent.process.send_signal(signal.SIGKILL)
            for pid in rest:
                os.kill(pid, signal.SIGTERM)
            assert await wait_for(lambda: all(gone(pid) for pid in rest), 5), rest
            await asyncio.to_thread(agent.process.wait, 5)
            done = await asyncio.to_thread(unkey_command, agent)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            assert b"PTT released" in done.stderr
            assert not reader.ptt()
        finally:
            reader.close()
            await owner.close()


async def test_exec_stop_post_unkeys_a_rig_left_keyed(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    """Everything SIGKILLed at once (guard included): only ExecStopPost= is left to unkey."""
    async with running_agent(server, tmp_path, rigctld_args(rig)) as agent:
        assert agent.process is not None
        reader = rig.reader()
        owner = await keyed_operator(server, server.owner, reader)
        try:
            everything = [agent.process.pid, *descendants(agent.process.pid)]
            owner.unkey(silently=True)  # no more keep-alives to a dead station
            for pid in everything:  # stopped first: none may see another die and unkey
                os.kill(pid, signal.SIGSTOP)
            for pid in everything:
                os.kill(pid, signal.SIGKILL)
            await asyncio.to_thread(agent.process.wait, 5)
            assert await wait_for(lambda: all(gone(pid) for pid in everything), 5)
            assert reader.ptt(), "something released PTT although everything was killed"
            done = await asyncio.to_thread(unkey_command, agent)
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            assert not reader.ptt()
        finally:
            reader.close()
            await owner.close()


def test_the_unkey_command_fails_without_rigctld(tmp_path: Path) -> None:
    env = dict(os.environ, RADIOCORE_AGENT_SECRET="s3cret-s3cret-s3cret")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "board_agent", "--board-id", "12345678-1234-4234-8234-123456789abc",
         "--rig", "rigctld", "--rigctld-port", str(free_port()), "--unkey"],
        env=env, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr.decode()
    assert b"could not release PTT: cannot reach rigctld" in done.stderr
    assert time.monotonic() - started < 10


#: A receiver's sound card that delivers 2 s of a 700 Hz tone after each opening, then stops
#: (FFmpeg's lavfi device through the agent's capture-device path; arealtime paces it).
ENDING_DEVICE = "lavfi:sine=frequency=700:sample_rate=48000:duration=2,arealtime"


def loud(frame: np.ndarray) -> bool:
    return float(np.sqrt(np.mean((frame / 32768.0) ** 2))) > 0.05


async def test_audio_device_failing_mid_session_keeps_the_session_and_ptt(
    server: LiveServer, rig: Rigctld, tmp_path: Path
) -> None:
    """The station's sound card stops delivering while an operator listens and transmits: the
    agent sends silence and reopens it (every `audio_retry_s`); the operator's peer connection,
    the board's presence and the keyed rig are untouched, the tone comes back, the agent's
    /health names the failure; the release still unkeys."""
    health_port = free_port()
    args = [*rigctld_args(rig), "--audio-source", ENDING_DEVICE, "--audio-retry-s", "1",
            "--health-port", str(health_port)]  # fmt: skip
    async with running_agent(server, tmp_path, args) as agent:
        assert agent.process is not None
        reader = rig.reader()
        op = await keyed_operator(server, server.owner, reader, tap=False)
        try:
            pc = op.pc
            assert pc is not None

            # ~7 s: the device ends at least twice; the rig read back every 0.5 s meanwhile
            first = len(op.frames)
            health_seen: list[dict[str, Any]] = []
            keyed: list[bool] = []
            for _ in range(14):  # bounded: 14 x 0.5 s
                await asyncio.sleep(0.5)
                keyed.append(await asyncio.to_thread(reader.ptt))
                async with aiohttp.ClientSession() as http:
                    got = await http.get(f"http://127.0.0.1:{health_port}/health")
                    health_seen.append({"http": got.status, **(await got.json())})
            heard = [loud(frame) for frame in op.frames[first:]]

            assert all(keyed), f"the rig dropped PTT while the audio failed: {keyed}"
            assert pc.connectionState == "connected", "the operator's connection was lost"
            assert sfu_of(server).station_online(server.board_id)
            assert agent.process.poll() is None, "the agent exited"
            # silence while the device was gone, then the tone again, on the same connection
            runs = [k for k, _ in itertools.groupby(heard)]
            assert len(heard) >= 250, f"{len(heard)} frames in 7 s: the stream stalled"
            assert runs.count(False) >= 2 and runs.count(True) >= 2, runs
            assert any(h["http"] == 503 and any("receiver audio failed" in p
                                                 for p in h["problems"])
                       for h in health_seen), health_seen  # fmt: skip
            assert health_seen[-1]["audio_failures"] >= 2
            assert health_seen[-1]["reconnects"] == 0, "the agent started a new session"

            op.unkey()
            assert await wait_for(lambda: not reader.ptt(), seconds=2), "still keyed"
        finally:
            reader.close()
            await op.close()
        log = agent.log.read_text() if agent.log else ""
        assert "RX audio failed" in log and "RX audio is back" in log, log[-2000:]
