"""`rig = "hamlib"`: the station's PTT guard runs rigctld itself (Hamlib's dummy rig, `-P RIG`),
restarts it when it dies and stops it on shutdown; clear errors when it cannot start; rigctld
ignores SIGTERM and dies with its owner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from board_agent.agent import BoardAgent
from board_agent.cli import main
from board_agent.errors import RigctldProcessError
from board_agent.hamlib_station import HamlibStation
from board_agent.rigctld_process import RigctldProcess
from radiocore_protocol import Ptt
from tests.support.rigctld import (
    RIGCTLD,
    RigctldServer,
    free_port,
    raw_query,
    require_rigctld,
    rig_ptt,
)

from .configs import make_config


@pytest.fixture(autouse=True)
def _rigctld_installed() -> None:
    require_rigctld()


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (ended, not yet reaped by a parent we do not own)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def until(condition: object, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s")


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux: /proc/PID/task/TID/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def rigctld_of(guard_pid: int | None) -> int | None:
    """The rigctld the guard runs, if any."""
    if guard_pid is None:
        return None
    pids = [pid for pid in children(guard_pid) if not process_gone(pid)]
    return pids[0] if pids else None


async def test_the_guard_runs_rigctld_restarts_it_and_stops_it() -> None:
    port = free_port()
    config = make_config(
        rig="hamlib", rigctld_path=RIGCTLD, rigctld_port=port, rig_model=1, rig_ptt_type="RIG"
    )
    agent = BoardAgent(config)  # the server is unreachable: the agent keeps retrying it
    station = agent.station
    assert isinstance(station, HamlibStation) and station.guard is not None
    guard = station.guard
    runner = asyncio.create_task(agent.run())
    try:
        await until(lambda: station.online, 10)
        guard_pid = guard.pid
        first_pid = rigctld_of(guard_pid)
        assert guard_pid is not None and first_pid is not None
        assert "rigctld" in _status_field(first_pid, "Name")
        assert await raw_query(port, "get_freq") == ["Frequency: 145000000"]
        await station.apply(Ptt(state=True))  # -P RIG: the dummy keys
        assert await rig_ptt(port) is True

        os.kill(first_pid, signal.SIGKILL)  # rigctld dies: the guard starts another
        await until(lambda: rigctld_of(guard_pid) not in (None, first_pid), 5)
        second_pid = rigctld_of(guard_pid)
        assert second_pid is not None
        for _ in range(100):  # bounded: the new rigctld answers within a second
            with contextlib.suppress(OSError, ConnectionError):
                assert await rig_ptt(port) is False  # a new dummy rig: not keyed
                break
            await asyncio.sleep(0.02)
        await station.apply(Ptt(state=False))  # the station reconnects to it
        assert guard.pid == guard_pid and guard.starts == 1  # the guard itself lived on
        assert not runner.done()
    finally:
        agent.stop()
        await asyncio.wait_for(runner, 10)
    assert process_gone(second_pid) and process_gone(guard_pid)
    with pytest.raises(OSError):
        await raw_query(port, "get_freq")  # nothing listens any more


_HOLD_RIGCTLD = """
import asyncio, sys
from board_agent.rigctld_process import RigctldProcess

async def main():
    process = RigctldProcess(path=sys.argv[1], model=1, port=int(sys.argv[2]), ptt_type="RIG")
    await process.start()
    print(process.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def _status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


async def test_rigctld_ignores_sigterm_and_dies_with_its_owner() -> None:
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_RIGCTLD,
        RIGCTLD,
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert agent.stdout is not None
        rigctld_pid = int(await asyncio.wait_for(agent.stdout.readline(), 10))
        assert not process_gone(rigctld_pid)
        blocked = int(_status_field(rigctld_pid, "SigBlk"), 16)
        assert blocked & (1 << (signal.SIGTERM - 1)), "SIGTERM is not blocked in rigctld"
        os.kill(rigctld_pid, signal.SIGTERM)  # a SIGTERM to everything cannot take it away
        await asyncio.sleep(0.2)
        assert not process_gone(rigctld_pid)
        agent.kill()  # no chance to clean up: the kernel kills rigctld (PR_SET_PDEATHSIG)
        await agent.wait()
        await until(lambda: process_gone(rigctld_pid), 3)
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()


async def test_unknown_model_is_a_clear_error() -> None:
    process = RigctldProcess(path=RIGCTLD, model=999_999, port=free_port())
    with pytest.raises(RigctldProcessError, match=r"exited with status 2 at start: Unknown rig"):
        await process.start()
    assert process.pid is None


async def test_missing_program_is_a_clear_error() -> None:
    process = RigctldProcess(path="/nonexistent/rigctld", model=1, port=free_port())
    with pytest.raises(RigctldProcessError, match=r"rigctld not found .* libhamlib-utils"):
        await process.start()


async def test_a_taken_port_is_a_clear_error(rigctld: RigctldServer) -> None:
    process = RigctldProcess(path=RIGCTLD, model=1, port=rigctld.port)
    with pytest.raises(RigctldProcessError, match=f"port {rigctld.port} on 127.0.0.1 is taken"):
        await process.start()


def test_an_agent_that_cannot_start_rigctld_exits_with_the_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config()
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", config.secret)
    code = main(
        [
            "--server",
            config.server_url,
            "--board-id",
            config.board_id,
            "--rig",
            "hamlib",
            "--rigctld-path",
            "/nonexistent/rigctld",
            "--rigctld-port",
            str(free_port()),
        ]
    )
    assert code == 2
    assert "rigctld not found" in capsys.readouterr().err
