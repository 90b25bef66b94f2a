"""`radiocore demo` as a child process for the benchmarks and the browser tests: started on a
free loopback port, its `RADIOCORE_DEMO_READY {json}` line awaited (bounded), and its whole
process group (server, station agent, rigctld) stopped afterwards — and killed with the caller
should that die first.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.tools import free_port

#: What the demo prints, followed by a JSON object, once its station is online.
READY_PREFIX: Final = "RADIOCORE_DEMO_READY "
PR_SET_PDEATHSIG: Final = 1


class DemoError(Exception):
    """The demo did not get ready; the message says why and ends with its log's tail."""


@dataclass
class Demo:
    """The demo server process and what it printed (stdout kept, bounded)."""

    process: subprocess.Popen[str]
    log_path: Path
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    ready: dict[str, Any] | None = None
    ready_event: threading.Event = field(default_factory=threading.Event)

    def read_stdout(self) -> None:
        assert self.process.stdout is not None  # Popen(stdout=PIPE)
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            if self.ready is None and line.startswith(READY_PREFIX):
                with contextlib.suppress(ValueError):
                    self.ready = json.loads(line[len(READY_PREFIX) :])
                    self.ready_event.set()
        self.ready_event.set()  # stdout closed: the demo has ended

    def log_tail(self, count: int = 40) -> list[str]:
        lines = list(self.lines)[-count:]
        with contextlib.suppress(OSError):
            lines += self.log_path.read_text(errors="replace").splitlines()[-count:]
        return lines


def die_with_parent() -> None:
    """In a child (preexec_fn): its own process group, and SIGTERM when the parent dies (even by
    KILL)."""
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop_process_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the process's group, then SIGKILL whatever is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # children that outlived the leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_demo(
    python: str,
    module: str,
    data_dir: Path,
    ready_timeout: float,
    *,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    error: type[Exception] = DemoError,
) -> Iterator[Demo]:
    """`python -m module demo` on a free loopback port, once ready; `extra_args` go to the
    demo, `env` (the whole environment) to its process; `error` is raised when it does not
    get ready within `ready_timeout` s."""
    log_path = data_dir / "demo.log"
    command = [
        python, "-m", module, "demo", "--host", "127.0.0.1", "--port", str(free_port()),
        "--data-dir", str(data_dir / "demo"), "--ice-host-address", "127.0.0.1", *extra_args,
    ]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            # no other thread exists yet, so preexec_fn is safe here
            preexec_fn=die_with_parent,
        )
    demo = Demo(process=process, log_path=log_path)
    reader = threading.Thread(target=demo.read_stdout, name="demo-stdout", daemon=True)
    reader.start()
    try:
        if not demo.ready_event.wait(ready_timeout) or demo.ready is None:
            status = process.poll()
            why = (
                f"exited with {status}" if status is not None else f"not ready in {ready_timeout} s"
            )
            raise error(f"demo {why}; log tail: {demo.log_tail(15)}")
        yield demo
    finally:
        stop_process_group(process)
        reader.join(timeout=5)
