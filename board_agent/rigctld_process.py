"""`RigctldProcess`: the rigctld the station runs itself (`rig = "hamlib"`).

The station's PTT guard (`ptt_guard`) owns the process: it starts it, restarts it (with a
bounded backoff) when it dies, and stops it on shutdown, after the transmitter was released.
rigctld listens on 127.0.0.1 only: it has no authentication, and whoever reaches it can key
the transmitter.

rigctld runs in its own session, so a Ctrl-C at the terminal does not reach it. It starts with
SIGTERM blocked (a blocked mask survives `exec`): a SIGTERM to a whole process group, or
systemd stopping the unit's control group, cannot take rigctld away before its owner has
unkeyed the rig through it; the owner stops it with SIGINT (rigctld then closes the rig, which
drops a serial RTS/DTR PTT line), and SIGKILL after a bound. On Linux it is also killed when
its owner dies (`PR_SET_PDEATHSIG`), so that a killed owner leaves no rigctld holding the port.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from typing import Final

from .backoff import Backoff
from .errors import RigctldProcessError

logger = logging.getLogger(__name__)

#: Bound on rigctld's start (it listens after ~0.1 s with the dummy rig).
READY_TIMEOUT_S: Final = 10.0
#: Bound on its exit after SIGINT, before SIGKILL.
STOP_TIMEOUT_S: Final = 3.0
#: Delays between restarts of a rigctld that keeps dying.
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 30.0
#: rigctld's last stderr lines kept for error messages.
_STDERR_LINES: Final = 20
_PR_SET_PDEATHSIG: Final = 1


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for `rigctld_port = 0`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_setup() -> Callable[[], None]:
    """A `preexec_fn` that blocks SIGTERM in rigctld and, on Linux, asks the kernel to SIGKILL
    it when its owner dies (SIGKILL: SIGTERM is blocked)."""
    prctl = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not after
    owner = os.getpid()

    def preexec() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
            if os.getppid() != owner:  # the owner died before the request took effect
                os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class RigctldProcess:
    """Runs `rigctld -m MODEL [-r DEVICE] [-s SPEED] [-P PTT] -T 127.0.0.1 -t PORT`."""

    def __init__(
        self,
        *,
        path: str,
        model: int,
        port: int,
        device: str = "",
        speed: int | None = None,
        ptt_type: str = "",
        restart_max_s: float = RESTART_MAX_S,
    ) -> None:
        self.path = path
        self.host = "127.0.0.1"
        self.port = port
        self.args = [f"-m{model}"]
        if device:
            self.args += ["-r", device]
        if speed is not None:
            self.args += ["-s", str(speed)]
        if ptt_type:
            self.args += ["-P", ptt_type.upper()]
        self.args += ["-T", self.host, "-t", str(port)]
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._backoff = Backoff(min(RESTART_MIN_S, restart_max_s), restart_max_s)
        #: How many times rigctld was started (the first start included).
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running rigctld's process id, or None."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start rigctld and return once it accepts connections; then keep it running.

        Raises `RigctldProcessError` if it cannot be started (not installed, the port taken,
        an unknown model, a device it cannot open).
        """
        if self._supervisor is not None:
            raise RuntimeError("rigctld is already started")
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="radiocore-rigctld")

    async def stop(self) -> None:
        """Stop rigctld (SIGINT, then SIGKILL after `STOP_TIMEOUT_S`) and stop restarting it."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        await self._terminate()

    # -----------------------------------------------------------------------------------------

    async def _spawn(self) -> None:
        program = shutil.which(self.path)
        if program is None:
            raise RigctldProcessError(
                f"rigctld not found ({self.path!r}); install Hamlib (Debian: libhamlib-utils) "
                "or set rigctld_path"
            )
        if await _listening(self.host, self.port):
            raise RigctldProcessError(
                f"port {self.port} on {self.host} is taken (another rigctld?); "
                "set rigctld_port, or rig = 'rigctld' to use the running one"
            )
        self._stderr.clear()
        try:
            process = await asyncio.create_subprocess_exec(
                program,
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_child_setup(),
            )
        except OSError as exc:
            raise RigctldProcessError(f"cannot start {program}: {exc.strerror or exc}") from None
        self._process = process
        self.starts += 1
        if process.stderr is not None:
            self._stderr_task = asyncio.create_task(
                self._read_stderr(process.stderr), name="radiocore-rigctld-stderr"
            )
        logger.info("started %s %s (pid %d)", program, " ".join(self.args), process.pid)
        try:
            await self._wait_ready(process)
        except BaseException:
            await self._terminate()
            raise

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while loop.time() < deadline and not _exited(process):
            # the port may be someone else's: ready only if our rigctld still runs after it
            if await _listening(self.host, self.port) and not _exited(process):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.02)
        if not _exited(process):
            raise RigctldProcessError(
                f"rigctld did not listen on {self.host}:{self.port} within "
                f"{READY_TIMEOUT_S:g} s{self._stderr_tail()}"
            )
        await self._end_stderr_reader()
        raise RigctldProcessError(
            f"rigctld exited with status {process.returncode} at start{self._stderr_tail()}"
        )

    async def _supervise(self) -> None:
        while True:
            process = self._process
            if process is not None:
                code = await process.wait()
                await self._end_stderr_reader()
                logger.error(
                    "rigctld (pid %d) exited with status %d; restarting it%s",
                    process.pid,
                    code,
                    self._stderr_tail(),
                )
                self._process = None
            await asyncio.sleep(self._backoff.next_delay())
            try:
                await self._spawn()
            except RigctldProcessError as exc:
                logger.error("%s", exc)
            else:
                self._backoff.reset()

    async def _terminate(self) -> None:
        process = self._process
        self._process = None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)  # SIGTERM is blocked in it
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                logger.warning(
                    "rigctld did not end on SIGINT within %g s; killing it", STOP_TIMEOUT_S
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            logger.info("stopped rigctld (pid %d)", process.pid)
        await self._end_stderr_reader()

    async def _end_stderr_reader(self) -> None:
        """Let the reader take rigctld's last words (bounded), then end it."""
        task = self._stderr_task
        self._stderr_task = None
        if task is not None:
            await asyncio.wait({task}, timeout=1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # an over-long line: skip it
                continue
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self._stderr.append(line)
                logger.info("rigctld: %s", line)

    def _stderr_tail(self) -> str:
        return (": " + " / ".join(self._stderr)) if self._stderr else ""


def _exited(process: asyncio.subprocess.Process) -> bool:
    return process.returncode is not None


async def _listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
