"""The PTT guard process (`python -m board_agent.ptt_guard`) against a real rigctld (Hamlib's
dummy rig): it unkeys when its channel closes (the agent died), when the agent falls silent
while keyed (a stalled event loop), and on SIGTERM; with `rig = "hamlib"` it runs rigctld and
unkeys through it before stopping it. Then the agent's side: a release by the guard is a stop
of the transmission (`watchdog`), and a guard that dies is restarted while keying is refused.
The rig's PTT is read back over connections of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from board_agent.agent import BoardAgent
from board_agent.cli import main
from board_agent.errors import RigError
from board_agent.hamlib_station import HamlibStation
from board_agent.ptt_guard import RELEASE_WITHIN_S
from radiocore_protocol import Error, Ptt, TxStopped
from tests.support.rigctld import RIGCTLD, RigctldServer, free_port, raw_query, require_rigctld
from tests.support.rigctld import rig_ptt as read_rig_ptt

from .configs import BOARD, SECRET, make_config
from .test_board_agent import serving
from .test_station_control import wait_for

PTT_ON = '{"type":"ptt","state":true}'
KEEPALIVE = '{"type":"keepalive"}'
#: The guard's time-out in these tests (the default).
TIMEOUT_S = 0.6


@pytest.fixture(autouse=True)
def _rigctld_installed() -> None:
    require_rigctld()


async def rig_ptt(port: int) -> bool:
    """The rig's PTT; rigctld 4.5 may drop a new connection at once: asked again then."""
    for _ in range(4):
        with contextlib.suppress(ConnectionError):
            return await read_rig_ptt(port)
    return await read_rig_ptt(port)


async def key_rig(port: int) -> None:
    await raw_query(port, "set_ptt 1")
    assert await rig_ptt(port) is True


async def seconds_until_unkeyed(port: int, within: float) -> float:
    """Seconds until rigctld reports PTT off, read in a tight loop; fails after `within`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(int(within / 0.002)):
        if not await rig_ptt(port):
            return loop.time() - started
        await asyncio.sleep(0.002)
    raise AssertionError(f"the rig was still keyed after {within} s")


class Guard:
    """A guard process and the agent's end of its channel, driven by the test."""

    def __init__(self, process: asyncio.subprocess.Process, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._beats: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_unix_connection(sock=self.channel)

    def send(self, line: str) -> None:
        assert self.writer is not None
        self.writer.write(line.encode() + b"\n")

    async def line(self, within: float = 5.0) -> str:
        assert self.reader is not None
        raw = await asyncio.wait_for(self.reader.readline(), within)
        return raw.decode().strip()

    def beat(self) -> None:
        """Beat every 0.1 s, as the agent does, until `silence()`."""

        async def beats() -> None:
            for _ in range(600):  # bounded: a minute
                self.send("beat")
                await asyncio.sleep(0.1)

        self._beats = asyncio.create_task(beats())

    async def silence(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)
            self._beats = None

    def hang_up(self) -> None:
        """Close the agent's end, as the kernel does when the agent dies."""
        if self.writer is not None:
            self.writer.close()
        self.channel.close()

    async def exit_code(self, within: float) -> int:
        return await asyncio.wait_for(self.process.wait(), within)


@contextlib.asynccontextmanager
async def guard(tmp_path: Path, *args: str) -> AsyncIterator[Guard]:
    """`python -m board_agent.ptt_guard --fd N ARGS`, its log in tmp_path/guard.log; killed
    after the test if it is still running."""
    ours, theirs = socket.socketpair()
    with (tmp_path / "guard.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "board_agent.ptt_guard", "--fd", str(theirs.fileno()), *args,
            "--log-level", "DEBUG",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            pass_fds=(theirs.fileno(),), start_new_session=True,
        )  # fmt: skip
    theirs.close()
    handle = Guard(process, ours)
    try:
        await handle.connect()
        yield handle
    finally:
        await handle.silence()
        if process.returncode is None:
            process.kill()
            await process.wait()
        handle.hang_up()


@contextlib.asynccontextmanager
async def ready_guard(tmp_path: Path, port: int, *args: str) -> AsyncIterator[Guard]:
    async with guard(tmp_path, "--port", str(port), "--timeout", str(TIMEOUT_S), *args) as g:
        assert await g.line(10) == f"ready {port}"
        yield g


@pytest.fixture
async def watched(rigctld: RigctldServer, tmp_path: Path) -> AsyncIterator[Guard]:
    """A guard for the test's rigctld, ready, beating, told of keying 1, the rig keyed."""
    async with ready_guard(tmp_path, rigctld.port) as g:
        g.beat()
        g.send("keying 1")
        await key_rig(rigctld.port)
        yield g


async def test_the_agent_dying_while_keyed_unkeys_within_1_5_s(
    rigctld: RigctldServer, watched: Guard
) -> None:
    watched.hang_up()  # what the kernel does to the channel of a SIGKILLed agent
    released_after = await seconds_until_unkeyed(rigctld.port, 3.0)
    print(f"released {released_after * 1000:.0f} ms after the channel closed")
    assert released_after <= 1.5
    assert await watched.exit_code(RELEASE_WITHIN_S + 1) == 0


async def test_silence_while_keyed_releases_and_the_guard_keeps_running(
    rigctld: RigctldServer, watched: Guard
) -> None:
    await watched.silence()  # the agent's event loop stalls
    released_after = await seconds_until_unkeyed(rigctld.port, TIMEOUT_S + 2)
    print(f"released {released_after * 1000:.0f} ms after the last beat was due")
    assert released_after <= TIMEOUT_S + 0.9
    assert await watched.line(1) == "released watchdog 1"
    assert watched.process.returncode is None  # the agent may resume

    watched.beat()  # it resumes, and keys anew
    watched.send("keying 2")
    await key_rig(rigctld.port)
    await asyncio.sleep(1.5 * TIMEOUT_S)
    assert await rig_ptt(rigctld.port) is True
    await raw_query(rigctld.port, "set_ptt 0")
    watched.send("unkeyed 2")
    watched.send("stop")
    assert await watched.exit_code(3) == 0


async def test_beats_keep_a_keyed_rig_keyed(rigctld: RigctldServer, watched: Guard) -> None:
    for _ in range(30):  # 3 s, five time-outs
        await asyncio.sleep(0.1)
        assert await rig_ptt(rigctld.port) is True
    assert watched.reader is not None and not watched.reader._buffer  # nothing was said
    await raw_query(rigctld.port, "set_ptt 0")


async def test_an_old_release_does_not_disarm_a_new_keying(
    rigctld: RigctldServer, watched: Guard
) -> None:
    watched.send("keying 2")  # keyed anew before the release of keying 1 was confirmed
    watched.send("unkeyed 1")
    await watched.silence()
    await seconds_until_unkeyed(rigctld.port, TIMEOUT_S + 2)
    assert await watched.line(1) == "released watchdog 2"


async def test_sigterm_unkeys_and_exits_0(rigctld: RigctldServer, watched: Guard) -> None:
    watched.process.send_signal(signal.SIGTERM)
    assert await watched.exit_code(RELEASE_WITHIN_S + 1) == 0
    assert await rig_ptt(rigctld.port) is False


async def test_not_keyed_an_end_of_the_channel_exits_cleanly(
    rigctld: RigctldServer, tmp_path: Path
) -> None:
    async with ready_guard(tmp_path, rigctld.port) as g:
        g.beat()
        await asyncio.sleep(0.3)
        g.hang_up()
        assert await g.exit_code(2) == 0
    async with ready_guard(tmp_path, rigctld.port) as g:
        g.send("stop")  # a clean stop, nothing keyed: no release needed
        assert await g.exit_code(2) == 0
    assert "the agent stopped cleanly" in (tmp_path / "guard.log").read_text()


async def test_a_rigctld_that_is_not_there_is_logged_and_the_guard_exits(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    async with ready_guard(tmp_path, port) as g:
        g.send("keying 1")
        g.hang_up()
        started = time.monotonic()
        assert await g.exit_code(RELEASE_WITHIN_S + 3) == 1
        assert time.monotonic() - started < RELEASE_WITHIN_S + 2
    log = (tmp_path / "guard.log").read_text()
    # refused at once, or (a loaded machine stalling the guard's loop past its 1 s bound)
    # timed out: either way said, with the address
    assert (
        f"could not release PTT: cannot reach rigctld at 127.0.0.1:{port}" in log
        or f"could not release PTT: rigctld at 127.0.0.1:{port} did not answer within" in log
    ), log


def read_ptt_until_closed(port: int, reads: list[str], answered: threading.Event) -> None:
    """`t` (get_ptt) on one connection, as fast as rigctld answers, until it closes (bounded:
    10 s); every answer is appended to `reads`. rigctld 4.5 may close a connection it has just
    accepted: one closed before any answer is opened again (twice)."""
    deadline = time.monotonic() + 10
    for _ in range(3):
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
        ):
            stream = sock.makefile("rw", newline="\n")
            while time.monotonic() < deadline:
                stream.write("t\n")
                stream.flush()
                line = stream.readline()
                if not line:
                    break
                reads.append(line.strip())
                answered.set()
        if reads:
            return


async def test_hamlib_mode_the_guard_runs_rigctld_and_unkeys_before_stopping_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    rigctld = ["--rigctld", RIGCTLD, "--rig-model", "1", "--rig-ptt-type", "RIG"]
    async with ready_guard(tmp_path, port, *rigctld) as g:
        g.beat()
        g.send("keying 1")
        await key_rig(port)
        reads: list[str] = []
        answered = threading.Event()
        reader = threading.Thread(target=read_ptt_until_closed, args=(port, reads, answered))
        reader.start()
        try:
            assert await asyncio.to_thread(answered.wait, 5)
            await g.silence()
            g.hang_up()  # the agent dies
            assert await g.exit_code(RELEASE_WITHIN_S + 5) == 0
        finally:
            await asyncio.to_thread(reader.join, 12)
        # keyed until the guard unkeyed, then unkeyed until rigctld was gone
        # (once rigctld closed the rig on SIGINT, it answers `RPRT -1` until it is gone)
        states = list(itertools.takewhile(lambda value: value in ("0", "1"), reads))
        assert set(reads[len(states) :]) <= {"RPRT -1"}, reads[-20:]
        assert states and states[0] == "1" and states[-1] == "0", reads[-20:]
        released = states.index("0")
        assert set(states[:released]) == {"1"} and set(states[released:]) == {"0"}
    with pytest.raises(OSError):
        await raw_query(port, "get_ptt")  # the guard stopped its rigctld


async def test_hamlib_mode_a_rigctld_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    async with guard(
        tmp_path, "--port", str(free_port()), "--rigctld", "/nonexistent/rigctld"
    ) as g:
        line = await g.line(10)
        assert line.startswith("error rigctld not found ('/nonexistent/rigctld')"), line
        assert await g.exit_code(5) == 2


def test_the_guard_loads_no_heavy_library() -> None:
    heavy = ("aiortc", "aioice", "av", "socketio", "engineio", "msgspec", "aiohttp", "numpy")
    code = (
        "import sys, board_agent.ptt_guard; "
        f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {heavy!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=30)
    assert done.stdout.decode().strip() == "[]"


def test_the_unkey_command_releases_a_keyed_rig(
    rigctld: RigctldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", SECRET)
    asyncio.run(raw_query(rigctld.port, "set_ptt 1"))
    assert main(["--board-id", BOARD, "--rig", "rigctld", "--rigctld-port", str(rigctld.port),
                 "--unkey"]) == 0  # fmt: skip
    assert asyncio.run(rig_ptt(rigctld.port)) is False


def test_the_unkey_command_with_rig_hamlib_starts_a_rigctld_of_its_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", SECRET)
    caplog.set_level("INFO", logger="board_agent")
    argv = ["--board-id", BOARD, "--rig", "hamlib", "--rigctld-path", RIGCTLD, "--rig-model", "1",
            "--rig-ptt-type", "RIG", "--rigctld-port", "0", "--unkey"]  # fmt: skip
    assert main(argv) == 0
    assert "starting rigctld to release PTT" in caplog.text
    assert "PTT released (rigctld confirmed set_ptt 0)" in caplog.text


# ---------------------------------------------------------------------------------------------
# The agent's side


def guarded_agent(rigctld: RigctldServer) -> tuple[BoardAgent, HamlibStation]:
    agent = BoardAgent(make_config(rig="rigctld", rigctld_port=rigctld.port))
    assert isinstance(agent.station, HamlibStation) and agent.station.guard is not None
    return agent, agent.station


async def test_a_stalled_agent_loop_is_released_by_the_guard_and_reported(
    rigctld: RigctldServer,
) -> None:
    agent, _ = guarded_agent(rigctld)
    control = agent.control
    async with serving(control) as outbox:
        control.receive(PTT_ON)
        for _ in range(5):
            await asyncio.sleep(0.1)
            control.receive(KEEPALIVE)
        assert await rig_ptt(rigctld.port) is True
        time.sleep(1.3)  # noqa: ASYNC251 - the point: the agent's event loop stalls, keyed
        # by now both the guard's release and the agent's own dead-man (1 s) are due: the
        # guard's comes first, and nobody keys again
        await wait_for(outbox, lambda m: m == TxStopped(reason="watchdog"), 1)
        errors = [m for m in outbox.of(Error) if isinstance(m, Error)]
        assert any("PTT guard released PTT" in e.message for e in errors), errors
        assert control.tx_stops == ["watchdog"] and not control.ptt
        for _ in range(5):  # keep-alives do not key it again
            control.receive(KEEPALIVE)
            await asyncio.sleep(0.1)
        assert await rig_ptt(rigctld.port) is False
        control.receive(PTT_ON)  # a new press does
        for _ in range(100):
            if await rig_ptt(rigctld.port):
                break
            await asyncio.sleep(0.01)
        assert await rig_ptt(rigctld.port) is True
    assert await rig_ptt(rigctld.port) is False


async def test_a_dead_guard_unkeys_refuses_keying_and_comes_back(rigctld: RigctldServer) -> None:
    agent, station = guarded_agent(rigctld)
    guard_link = station.guard
    assert guard_link is not None
    control = agent.control
    async with serving(control) as outbox:
        control.receive(PTT_ON)
        for _ in range(100):
            if await rig_ptt(rigctld.port):
                break
            await asyncio.sleep(0.01)
        first = guard_link.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the guard dies (the agent lives on)
        for _ in range(200):
            if not guard_link.ready:
                break
            await asyncio.sleep(0.005)
        with pytest.raises(RigError, match="PTT guard is not running"):
            await station.apply(Ptt(state=True))
        await wait_for(outbox, lambda m: m == TxStopped(reason="rig_error"), 2)
        assert await rig_ptt(rigctld.port) is False
        assert control.tx_stops == ["rig_error"]
        for _ in range(300):  # restarted after 0.25 … 0.5 s
            if guard_link.ready:
                break
            await asyncio.sleep(0.01)
        assert guard_link.ready and guard_link.pid not in (None, first)
        control.receive(PTT_ON)
        for _ in range(100):
            if await rig_ptt(rigctld.port):
                break
            await asyncio.sleep(0.01)
        assert await rig_ptt(rigctld.port) is True
    assert await rig_ptt(rigctld.port) is False
