"""`radiocore bench faults`: how fast the rig is released when something fails while it
transmits — the operator, the server or the agent killed (SIGKILL), frozen (SIGSTOP) or stopped
(SIGTERM) — read at Hamlib's dummy rig through rigctld on its own connection, never from what
our code reports. After each fault heals (the process resumed or restarted) the bench checks the
rig does not key again. JSON out: per fault, release time p50/p99/max over the rounds.

Every component is real and on loopback: rigctld (`-m 1 -P RIG`), `radiocore serve`, the board
agent (`--rig rigctld`, so its PTT guard runs) and an operator process keyed with keep-alives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from bench.control import _operator
from bench.rig_reader import RigReader
from bench.tools import (
    free_port,
    login,
    percentile_ms,
    restart_server,
    seed,
    start_agent,
    start_server,
    stop_process,
)

#: Every fault, in the order they run.
FAULTS: Final = (
    "operator_sigkill",
    "operator_sigstop",
    "server_sigkill",
    "server_sigstop",
    "server_sigterm",
    "agent_sigkill",
    "agent_sigstop",
)
#: How long a fault may take to release the rig before the round counts as failed.
RELEASE_BOUND_S: Final = 10.0
#: How long a frozen process stays frozen (longer than every dead-man and the guard's time-out).
FREEZE_S: Final = 3.0
#: After a fault healed, how long the rig is watched for keying again.
WATCH_AFTER_HEAL_S: Final = 1.5


@dataclass
class FaultFigures:
    release_s: list[float] = field(default_factory=list)
    rekeyed: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "rounds": len(self.release_s) + len(self.failed),
            "release_ms_p50": percentile_ms(self.release_s, 50),
            "release_ms_p99": percentile_ms(self.release_s, 99),
            "release_ms_max": round(max(self.release_s) * 1000, 1) if self.release_s else None,
            "rekeyed_after_heal": self.rekeyed,
            "failed_rounds": self.failed,
        }


class Station:
    """rigctld, the server and the agent, each restartable; the rig read on its own link."""

    def __init__(
        self, data_dir: Path, rigctld: str, extra_config: str = "", top_config: str = ""
    ) -> None:
        """`extra_config`: more of the server's TOML (sections, after `[ice]`'s);
        `top_config`: top-level keys (before it)."""
        self.data_dir = data_dir
        self.rigctld = rigctld
        self.board_id, self.secret = asyncio.run(seed(data_dir))
        self.rig_port = free_port()
        self.rig_process = self._start_rigctld()
        self.url, self.server = start_server(
            data_dir, top_config + '[ice]\nhost_addresses = ["127.0.0.1"]\n' + extra_config
        )
        self.agent = self._start_agent()
        self.rig = RigReader.connect(self.rig_port)
        self.token = login(self.url)

    def _start_rigctld(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [self.rigctld, "-m", "1", "-P", "RIG", "-T", "127.0.0.1", "-t", str(self.rig_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart_rigctld(self) -> None:
        """rigctld again on its port (the dummy rig starts unkeyed), and the reader with it."""
        stop_process(self.rig_process)
        self.rig.close()
        self.rig_process = self._start_rigctld()
        self.rig = RigReader.connect(self.rig_port)

    def _start_agent(self) -> subprocess.Popen[bytes]:
        return start_agent(
            self.url,
            self.board_id,
            self.secret,
            self.rig_port,
            log=self.data_dir / "agent.log",
            env={"RADIOCORE_AGENT_RECONNECT_MIN_S": "0.2", "RADIOCORE_AGENT_RECONNECT_MAX_S": "1"},
        )

    def restart_server(self) -> None:
        stop_process(self.server)
        self.server = restart_server(self.data_dir, self.url)

    def restart_agent(self) -> None:
        stop_process(self.agent)
        self.agent = self._start_agent()

    def close(self) -> None:
        self.rig.close()
        for process in (self.agent, self.server, self.rig_process):
            stop_process(process)


@dataclass
class KeyedOperator:
    process: Any
    pipe: Connection

    def release(self, station: Station) -> float | None:
        """Let go of PTT; seconds until the rig reads unkeyed (None: it did not)."""
        self.pipe.send(("unkey",))
        sent = self.pipe.recv()
        released = station.rig.wait_until(lambda r: not r.ptt(), seconds=RELEASE_BOUND_S)
        return None if released is None else float(released - sent)

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.join(timeout=5)
        self.pipe.close()


def keyed_operator(station: Station) -> KeyedOperator:
    """A new operator process, joined, keyed (with keep-alives), the rig seen keyed; raises
    `RuntimeError` when it cannot get that far."""
    ctx = multiprocessing.get_context("spawn")
    pipe, child_end = ctx.Pipe()
    process = ctx.Process(
        target=_operator, args=(station.url, station.token, station.board_id, child_end)
    )
    process.start()
    child_end.close()
    operator = KeyedOperator(process, pipe)
    if not (pipe.poll(60) and pipe.recv() == "ready"):
        operator.close()
        raise RuntimeError("the operator could not reach the station")
    pipe.send(("key",))
    pipe.recv()
    if station.rig.wait_until(lambda r: r.ptt(), seconds=5) is None:
        operator.close()
        raise RuntimeError("the rig was never keyed")
    return operator


def fault_round(station: Station, fault: str) -> tuple[float, bool]:
    """Key, apply `fault`, time the release at the rig, heal; (release s, keyed again)."""
    operator = keyed_operator(station)
    try:
        target, signum = _target(station, operator, fault)
        started = time.time()
        os.kill(target, signum)
        released = station.rig.wait_until(lambda r: not r.ptt(), seconds=RELEASE_BOUND_S)
        if released is None:
            raise RuntimeError("the rig was not released")
        if signum == signal.SIGSTOP:
            time.sleep(max(0.0, FREEZE_S - (time.time() - started)))
            os.kill(target, signal.SIGCONT)
        _heal(station, fault)
        rekeyed = station.rig.wait_until(lambda r: r.ptt(), seconds=WATCH_AFTER_HEAL_S)
        return released - started, rekeyed is not None
    finally:
        operator.close()


def _target(station: Station, operator: KeyedOperator, fault: str) -> tuple[int, signal.Signals]:
    who, _, how = fault.partition("_")
    signum = {"sigkill": signal.SIGKILL, "sigstop": signal.SIGSTOP, "sigterm": signal.SIGTERM}[how]
    pid = {
        "operator": operator.process.pid,
        "server": station.server.pid,
        "agent": station.agent.pid,
    }[who]
    return int(pid), signum


def _heal(station: Station, fault: str) -> None:
    if fault in ("server_sigkill", "server_sigterm"):
        station.server.wait(10)
        station.restart_server()
    elif fault == "agent_sigkill":
        station.agent.wait(10)
        station.restart_agent()


def run_faults_bench(args: argparse.Namespace) -> int:
    rigctld = shutil.which("rigctld")
    if rigctld is None:
        print("radiocore bench faults: needs Hamlib's rigctld (libhamlib-utils)", file=sys.stderr)
        return 2
    faults = tuple(args.faults.split(",")) if args.faults else FAULTS
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        print(f"radiocore bench faults: unknown fault(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    figures = {fault: FaultFigures() for fault in faults}
    with tempfile.TemporaryDirectory(prefix="radiocore-faults-") as tmp:
        station = Station(Path(tmp), rigctld)
        try:
            for fault in faults:
                for n in range(args.rounds):
                    try:
                        release, rekeyed = fault_round(station, fault)
                    except RuntimeError as exc:
                        figures[fault].failed.append(f"round {n + 1}: {exc}")
                        _recover(station)
                        continue
                    figures[fault].release_s.append(release)
                    figures[fault].rekeyed += rekeyed
        finally:
            station.close()
    result = {
        "rounds_per_fault": args.rounds,
        "faults": {fault: figures[fault].summary() for fault in faults},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def _recover(station: Station) -> None:
    """After a failed round: everything back up, the rig unkeyed."""
    for process in (station.server, station.agent):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
    if station.server.poll() is not None:
        station.restart_server()
    if station.agent.poll() is not None:
        station.restart_agent()
