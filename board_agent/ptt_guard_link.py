"""`PttGuardLink`: the agent's side of its PTT guard (`ptt_guard`, a process of its own).

The link starts the guard with one end of a socket pair (the guard's only channel to the
agent), waits (bounded) until it is ready, then beats every `BEAT_INTERVAL_S` from a task on
the agent's event loop: a loop that stalls, or a process that is stopped, stops the beats, and
the guard unkeys. The station says `keying N` before it asks rigctld to key and `unkeyed N`
once rigctld confirmed a release; the guard answers `released watchdog N` when it unkeyed by
itself, which the link hands to `on_released` at once (in the I/O callback, so before a timer
of the agent that fell due while it was stalled).

If the guard dies, the link calls `on_lost` (the station unkeys: it still can), refuses keying
(`keying()` raises `RigError`) and starts the guard again with a bounded backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Final

from .backoff import Backoff
from .errors import RigctldProcessError, RigError, StationError
from .ptt_guard import BEAT_INTERVAL_S, GuardSettings, LineChannel
from .rigctld_process import READY_TIMEOUT_S as RIGCTLD_READY_TIMEOUT_S
from .rigctld_process import STOP_TIMEOUT_S as RIGCTLD_STOP_TIMEOUT_S

logger = logging.getLogger(__name__)

#: Bound on the guard's start: the interpreter, then (`rig = "hamlib"`) rigctld's own start.
READY_TIMEOUT_S: Final = RIGCTLD_READY_TIMEOUT_S + 5.0
#: Bound on the guard's exit after `stop` (it may still unkey, then stop its rigctld).
STOP_TIMEOUT_S: Final = RIGCTLD_STOP_TIMEOUT_S + 4.0
#: Delays between restarts of a guard that keeps dying.
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 10.0
#: A guard that ran this long resets the restart backoff.
STABLE_S: Final = 10.0
#: Bytes the guard has not read yet above which it is taken for hung (and killed): the beats
#: of several minutes.
MAX_UNREAD_BYTES: Final = 64 * 1024


class _GuardExitedError(Exception):
    """The guard's channel closed before it said `ready` or `error`."""


class PttGuardLink:
    """Starts and watches the PTT guard; see the module docstring."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        on_released: Callable[[int], None] | None = None,
        on_lost: Callable[[], Awaitable[None]] | None = None,
        restart_max_s: float = RESTART_MAX_S,
    ) -> None:
        self.settings = settings
        #: rigctld's port, as the guard reported it.
        self.port = settings.port
        #: Called with N when the guard unkeyed keying N by itself.
        self.on_released = on_released
        #: Awaited when the guard died unexpectedly (before it is started again).
        self.on_lost = on_lost
        self._process: asyncio.subprocess.Process | None = None
        self._channel: LineChannel | None = None
        self._ready: asyncio.Future[int] | None = None
        self._beats: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._backoff = Backoff(min(RESTART_MIN_S, restart_max_s), restart_max_s)
        self._keying = 0
        self._released = 0
        self._started_at = 0.0
        #: How many times the guard was started (the first start included).
        self.starts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def ready(self) -> bool:
        """Whether the guard runs and has said so (keying is allowed)."""
        ready = self._ready
        return (
            ready is not None
            and ready.done()
            and not ready.cancelled()
            and ready.exception() is None
            and self._channel is not None
            and self._channel.open
        )

    @property
    def last_keying(self) -> int:
        """The number of the latest keying (0: none yet)."""
        return self._keying

    async def start(self) -> None:
        """Start the guard and return once it is ready; raises `StationError` (the guard's own
        words when it cannot start rigctld)."""
        if self._watcher is not None:
            raise RuntimeError("the PTT guard is already started")
        await self._spawn()
        self._watcher = asyncio.create_task(self._watch(), name="radiocore-ptt-guard")

    def keying(self) -> int:
        """Tell the guard the agent is about to key; returns the keying's number. Raises
        `RigError` when the guard is not running: nothing would release PTT if the agent died."""
        if not self.ready:
            raise RigError(
                "the station's PTT guard is not running (it is being restarted); keying is "
                "refused until it is back"
            )
        self._keying += 1
        self._send(f"keying {self._keying}")
        return self._keying

    def unkeyed(self, keying: int) -> None:
        """rigctld confirmed a release asked for when `keying` was the latest keying."""
        self._send(f"unkeyed {keying}")

    def released_since(self, keying: int) -> bool:
        """Whether the guard unkeyed keying number `keying` (or a later one) by itself."""
        return self._released >= keying > 0

    async def close(self) -> None:
        """Say `stop` (the agent unkeyed) and wait (bounded) for the guard to exit."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        self._send("stop")
        await self._end_process(STOP_TIMEOUT_S)

    # -----------------------------------------------------------------------------------------

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "board_agent.ptt_guard",
                "--fd",
                str(theirs.fileno()),
                *self.settings.serialize(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a Ctrl-C reaches the agent, which unkeys first
            )
        except OSError as exc:
            ours.close()
            raise StationError(f"cannot start the PTT guard: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        self._process = process
        self._started_at = loop.time()
        self.starts += 1
        self._ready = loop.create_future()
        try:
            try:
                _, self._channel = await loop.create_unix_connection(
                    lambda: LineChannel(self._on_line, self._on_closed), sock=ours
                )
            except BaseException:
                ours.close()  # the transport owns it only once the connection is made
                raise
            async with asyncio.timeout(READY_TIMEOUT_S):
                self.port = await self._ready
        except TimeoutError:
            await self._end_process(0.0)
            raise StationError(
                f"the PTT guard did not start within {READY_TIMEOUT_S:g} s"
            ) from None
        except _GuardExitedError:
            await self._end_process(READY_TIMEOUT_S)
            raise StationError(
                f"the PTT guard exited at start with status {process.returncode}"
            ) from None
        except BaseException:
            await self._end_process(STOP_TIMEOUT_S)  # it exits after saying `error`
            raise
        logger.info("PTT guard running (pid %d)", process.pid)
        self._beats = asyncio.create_task(self._beat(), name="radiocore-ptt-guard-beat")

    async def _beat(self) -> None:
        while True:
            self._send("beat")
            await asyncio.sleep(BEAT_INTERVAL_S)

    def _send(self, line: str) -> None:
        channel = self._channel
        if channel is None or not channel.send(line):
            return
        if channel.buffered > MAX_UNREAD_BYTES and self._process is not None:
            logger.error("the PTT guard has stopped reading its channel; killing it")
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()  # the watcher starts another

    def _on_line(self, line: str) -> None:
        word, _, argument = line.partition(" ")
        ready = self._ready
        if word == "ready" and ready is not None and not ready.done():
            try:
                ready.set_result(int(argument))
            except ValueError:
                ready.set_exception(StationError(f"the PTT guard said {line[:80]!r}"))
        elif word == "error" and ready is not None and not ready.done():
            ready.set_exception(RigctldProcessError(argument))
        elif word == "released":
            reason, _, number = argument.partition(" ")
            keying = int(number) if number.isdigit() else self._keying
            self._released = max(self._released, keying)
            logger.warning("the PTT guard released PTT (%s, keying %d)", reason, keying)
            if self.on_released is not None:
                self.on_released(keying)
        else:
            logger.warning("ignored %r from the PTT guard", line[:80])

    def _on_closed(self) -> None:
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_exception(_GuardExitedError())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if loop.time() - self._started_at >= STABLE_S:
                self._backoff.reset()
            await self._end_process(0.0)
            logger.error(
                "the PTT guard (pid %d) exited with status %d; restarting it", process.pid, code
            )
            if self.on_lost is not None:
                try:
                    await self.on_lost()
                except Exception:
                    logger.exception("handling the loss of the PTT guard failed")
            while self._process is None:
                await asyncio.sleep(self._backoff.next_delay())
                try:
                    await self._spawn()
                except StationError as exc:
                    logger.error("cannot restart the PTT guard: %s", exc)

    async def _end_process(self, within_s: float) -> None:
        """Wait up to `within_s` for the guard to exit, then kill it; forget it and its
        channel."""
        beats, self._beats = self._beats, None
        if beats is not None:
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), within_s)
            except TimeoutError:
                if within_s > 0:
                    logger.warning("the PTT guard did not exit within %g s; killing it", within_s)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
