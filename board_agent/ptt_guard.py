"""`PttGuard`: a small process at the station that releases PTT when the agent cannot.

The agent keys the transmitter through rigctld; if the agent dies (SIGKILL, a crash, the OOM
killer) or its event loop stalls (SIGSTOP, a hung call) while keyed, nothing in it can unkey
any more. The guard is started by the agent (`python -m board_agent.ptt_guard`, in a session
of its own so that a Ctrl-C at the terminal reaches the agent alone, which unkeys first) with
one end of an AF_UNIX socket pair as its channel to the agent, and watches it:

- the channel closes (the agent died: the kernel closes its end): the guard unkeys, always,
  stops the rigctld it runs (if any) and exits;
- no line from the agent for `timeout_s` while the agent may be keyed (its event loop stalled,
  or the process is stopped): the guard unkeys, tells the agent `released watchdog N`, and
  keeps running (the agent may resume);
- SIGTERM or SIGINT: the guard unkeys, always, stops its rigctld, and exits 0;
- `stop` from the agent (a clean shutdown, after the agent unkeyed): it unkeys if the agent
  did not confirm the release, stops its rigctld, and exits 0.

For `rig = "hamlib"` the guard, not the agent, runs rigctld (`RigctldProcess`: SIGTERM blocked
in it, killed by the kernel when the guard dies), so that a SIGTERM to the whole process group
or to the unit's control group cannot take rigctld away before the guard unkeyed through it.

The channel carries one line per message. Agent -> guard: `beat` (every `BEAT_INTERVAL_S`, from
a task on the agent's event loop: a stalled loop stops the beats), `keying N` (sent before the
agent asks rigctld for `set_ptt 1`; N numbers the agent's keyings), `unkeyed N` (after rigctld
confirmed `set_ptt 0` for keying N or later), `stop`. Guard -> agent: `ready PORT` (rigctld's
port; with `rig = "hamlib"` once the guard's rigctld answers), `error TEXT` (the guard cannot
start rigctld; it exits), `released watchdog N` (the guard unkeyed keying N by itself). Any
line counts as a sign of life; unknown lines are logged and ignored.

Each release is a fresh TCP connection to rigctld (a kept one may be stale) in rigctld's
extended protocol, `+\\set_ptt 0` answered by `RPRT 0`, retried within a bound: rigctld serves
its clients one command at a time, and Hamlib's dummy rig sleeps ~50 ms in `set_ptt 0`.

Standard library only, apart from `rigctld_process` (and what it imports): no aiortc, av,
Socket.IO or msgspec, so that the guard starts fast and stays small on a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from .errors import RigctldProcessError, RigError
from .rigctld_process import RigctldProcess

# run as `python -m board_agent.ptt_guard`, the module is `__main__`: log under its real name
logger = logging.getLogger(__name__ if __name__ != "__main__" else "board_agent.ptt_guard")

#: How often the agent says it is alive.
BEAT_INTERVAL_S: Final = 0.1
#: Silence from the agent (while it may be keyed) after which the guard unkeys: the config's
#: `ptt_guard_timeout_s`, its default and bounds (at least three beats).
DEFAULT_TIMEOUT_S: Final = 0.6
MIN_TIMEOUT_S: Final = 0.3
MAX_TIMEOUT_S: Final = 5.0
#: Bound on one attempt to unkey: connect, send `set_ptt 0`, read `RPRT 0`.
UNKEY_ATTEMPT_S: Final = 1.0
#: Pause between attempts.
UNKEY_RETRY_S: Final = 0.05
#: Bound on all the attempts of one release by the guard.
RELEASE_WITHIN_S: Final = 3.0
#: After releasing PTT because the agent is gone, how long the guard's own rigctld stays up.
RIGCTLD_LINGER_S: Final = 0.3
#: Bound on the attempts of one release (the time bound is the one that matters).
MAX_UNKEY_ATTEMPTS: Final = 200
#: Pause before the watchdog tries again when rigctld could not confirm a release.
WATCHDOG_RETRY_S: Final = 0.25
#: Longest line on the channel (an `error` with rigctld's last words); longer ones are dropped.
MAX_LINE_BYTES: Final = 4096
#: Bound on one reply from rigctld to `set_ptt 0`, in lines.
_MAX_REPLY_LINES: Final = 8
#: The agent's log format (`radiocore.logs`), which the guard does not import.
_LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UnkeyFailedError(RigError):
    """One attempt to unkey through rigctld did not get `RPRT 0`."""


async def unkey_through_rigctld(host: str, port: int, *, within_s: float) -> str | None:
    """Ask rigctld at host:port for `set_ptt 0` until it confirms, each attempt on a fresh
    connection, for at most `within_s`. Returns None once confirmed, else the last failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    failure = f"no attempt within {within_s:g} s"
    for attempt in range(1, MAX_UNKEY_ATTEMPTS + 1):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(min(UNKEY_ATTEMPT_S, remaining)):
                await _set_ptt_off(host, port)
        except TimeoutError:
            failure = f"rigctld at {host}:{port} did not answer within {UNKEY_ATTEMPT_S:g} s"
        except OSError as exc:
            failure = f"cannot reach rigctld at {host}:{port}: {exc.strerror or exc}"
        except UnkeyFailedError as exc:
            failure = str(exc)
        else:
            if attempt > 1:
                logger.info("rigctld confirmed the release at attempt %d", attempt)
            return None
        logger.debug("unkey attempt %d failed: %s", attempt, failure)
        await asyncio.sleep(max(0.0, min(UNKEY_RETRY_S, deadline - loop.time())))
    return failure


async def _set_ptt_off(host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE_BYTES * 8)
    try:
        writer.write(b"+\\set_ptt 0\n")
        await writer.drain()
        lines: list[str] = []
        for _ in range(_MAX_REPLY_LINES):
            raw = await reader.readline()
            if not raw.endswith(b"\n"):
                # rigctld 4.5 may close a connection it has just accepted: the caller retries
                raise UnkeyFailedError(f"rigctld at {host}:{port} closed the connection")
            line = raw.decode("ascii", errors="replace").strip()
            if not line.startswith("RPRT "):
                lines.append(line)
                continue
            if not lines or not lines[0].startswith("set_ptt:"):
                raise UnkeyFailedError(f"rigctld at {host}:{port} answered out of step: {line}")
            if line != "RPRT 0":
                raise UnkeyFailedError(f"rigctld at {host}:{port} refused set_ptt 0: {line}")
            return
        raise UnkeyFailedError(f"rigctld at {host}:{port} sent no RPRT line")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class LineChannel(asyncio.Protocol):
    """One end of the channel between agent and guard: each line received is handed to
    `on_line` as soon as it arrives (in the event loop's I/O callback, before any timer due at
    the same time); `on_closed` is called once when the channel closes."""

    def __init__(self, on_line: Callable[[str], None], on_closed: Callable[[], None]) -> None:
        self._on_line = on_line
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the other end's socket."""
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def send(self, line: str) -> bool:
        """Send one line (cut to `MAX_LINE_BYTES`); False if the channel is closed."""
        if self._transport is None or self._transport.is_closing():
            return False
        data = " ".join(line.splitlines()).encode("utf-8")[: MAX_LINE_BYTES - 1]
        self._transport.write(data + b"\n")
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream socket's transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE_BYTES:
            logger.warning("dropped an over-long line on the PTT guard's channel")
            self._buffer = b""
        for line in lines:
            if len(line) <= MAX_LINE_BYTES:
                self._on_line(line.decode("utf-8", errors="replace").strip())

    def eof_received(self) -> bool:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._on_closed()


@dataclass(frozen=True)
class GuardSettings:
    """What the guard is told on its command line (no secret: it is visible to every user)."""

    #: rigctld's address (the guard's own rigctld listens on 127.0.0.1:port).
    host: str
    port: int
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: The rigctld program the guard runs (`rig = "hamlib"`); empty: rigctld runs elsewhere.
    rigctld_path: str = ""
    rig_model: int = 1
    rig_device: str = ""
    rig_speed: int | None = None
    rig_ptt_type: str = ""
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s {self.timeout_s} is outside {MIN_TIMEOUT_S} … 5 s")
        if not 0 < self.port <= 65535:
            raise ValueError(f"port {self.port} is not a TCP port")

    def serialize(self) -> list[str]:
        """The guard's arguments (after `python -m board_agent.ptt_guard --fd N`)."""
        argv = ["--host", self.host, "--port", str(self.port), "--timeout", repr(self.timeout_s)]
        if self.rigctld_path:
            argv += ["--rigctld", self.rigctld_path, "--rig-model", str(self.rig_model)]
            if self.rig_device:
                argv += ["--rig-device", self.rig_device]
            if self.rig_speed is not None:
                argv += ["--rig-speed", str(self.rig_speed)]
            if self.rig_ptt_type:
                argv += ["--rig-ptt-type", self.rig_ptt_type]
        return [*argv, "--log-level", self.log_level]

    @classmethod
    def parse(cls, args: argparse.Namespace) -> GuardSettings:
        return cls(
            host=args.host,
            port=args.port,
            timeout_s=args.timeout,
            rigctld_path=args.rigctld,
            rig_model=args.rig_model,
            rig_device=args.rig_device,
            rig_speed=args.rig_speed,
            rig_ptt_type=args.rig_ptt_type,
            log_level=args.log_level,
        )


class PttGuard:
    """The guard process's logic; see the module docstring. `run()` returns the exit status:
    0 after a release (or a clean stop), 1 when rigctld could not confirm the last release,
    2 when the guard could not start its rigctld."""

    def __init__(self, settings: GuardSettings, channel: socket.socket) -> None:
        self.settings = settings
        self._channel_socket = channel
        self._channel: LineChannel | None = None
        self._rigctld = (
            RigctldProcess(
                path=settings.rigctld_path,
                model=settings.rig_model,
                port=settings.port,
                device=settings.rig_device,
                speed=settings.rig_speed,
                ptt_type=settings.rig_ptt_type,
            )
            if settings.rigctld_path
            else None
        )
        #: The agent's keying that may be on the air (None once it confirmed the release).
        self._armed: int | None = None
        self._last_sign = 0.0
        self._sign = asyncio.Event()
        self._ended = asyncio.Event()
        self._end_reason = ""

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._end, signal.Signals(signum).name)
        _, self._channel = await loop.create_unix_connection(
            lambda: LineChannel(self._on_line, lambda: self._end("eof")),
            sock=self._channel_socket,
        )
        if self._rigctld is not None:
            try:
                await self._rigctld.start()
            except RigctldProcessError as exc:
                logger.error("%s", exc)
                self._tell(f"error {exc}")
                self._channel.close()
                return 2
        self._last_sign = loop.time()
        self._tell(f"ready {self.settings.port}")
        logger.info(
            "PTT guard watching the agent (released after %g s without a sign of life) for "
            "rigctld at %s:%d",
            self.settings.timeout_s,
            self.settings.host,
            self.settings.port,
        )
        watchdog = asyncio.create_task(self._watchdog(), name="radiocore-ptt-guard-watchdog")
        try:
            await self._ended.wait()
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        return await self._finish()

    # -----------------------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        if not self._end_reason:
            self._end_reason = reason
        self._ended.set()

    def _tell(self, line: str) -> None:
        if self._channel is not None:
            self._channel.send(line)

    def _on_line(self, line: str) -> None:
        self._last_sign = asyncio.get_running_loop().time()
        self._sign.set()
        word, _, argument = line.partition(" ")
        if word == "beat":
            return
        if word == "keying":
            # a keying number that does not parse still arms the guard, for good
            self._armed = _keying_number(argument, sys.maxsize)
        elif word == "unkeyed":
            if self._armed is not None and _keying_number(argument, -1) >= self._armed:
                self._armed = None
        elif word == "stop":
            self._end("stop")
        else:
            logger.warning("ignored %r from the agent", line[:80])

    async def _watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.timeout_s
        while True:
            silent_for = loop.time() - self._last_sign
            if silent_for < timeout:
                await asyncio.sleep(timeout - silent_for)
                continue
            keying = self._armed
            if keying is None:
                self._sign.clear()
                await self._sign.wait()
                continue
            logger.warning(
                "no sign of life from the agent for %.2f s while it may be keyed: releasing PTT",
                silent_for,
            )
            failure = await self._unkey()
            if failure is not None:
                logger.error("could not release PTT (trying again): %s", failure)
                await asyncio.sleep(WATCHDOG_RETRY_S)
                continue
            logger.warning("PTT released by the guard (the agent was silent)")
            if self._armed == keying:
                self._armed = None
            self._tell(f"released watchdog {keying}")

    async def _finish(self) -> int:
        reason = self._end_reason
        failure: str | None = None
        if reason == "stop" and self._armed is None:
            logger.info("the agent stopped cleanly")
        else:
            if reason == "eof":
                logger.warning(
                    "the agent is gone (its channel closed%s): releasing PTT",
                    " while it may be keyed" if self._armed is not None else "",
                )
            else:
                logger.info("stopping (%s): releasing PTT", reason)
            failure = await self._unkey()
            if failure is None:
                logger.info("PTT released")
            else:
                logger.error("could not release PTT: %s", failure)
        if self._rigctld is not None:
            if failure is None and reason != "stop":
                # the release is confirmed; rigctld stays a moment longer so that the rig's CAT
                # link settles and whoever watches the rig through rigctld sees it released
                await asyncio.sleep(RIGCTLD_LINGER_S)
            await self._rigctld.stop()
        if self._channel is not None:
            self._channel.close()
        return 0 if failure is None else 1

    async def _unkey(self) -> str | None:
        return await unkey_through_rigctld(
            self.settings.host, self.settings.port, within_s=RELEASE_WITHIN_S
        )


def _keying_number(text: str, otherwise: int) -> int:
    try:
        return int(text)
    except ValueError:
        return otherwise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m board_agent.ptt_guard",
        description="The board agent's PTT guard (started by the agent; not for use by hand).",
    )
    parser.add_argument("--fd", type=int, required=True, help="the channel to the agent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--rigctld", default="", help="run this rigctld (rig = hamlib)")
    parser.add_argument("--rig-model", type=int, default=1)
    parser.add_argument("--rig-device", default="")
    parser.add_argument("--rig-speed", type=int, default=None)
    parser.add_argument("--rig-ptt-type", default="")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=_LOG_FORMAT, stream=sys.stderr)
    try:
        settings = GuardSettings.parse(args)
        channel = socket.socket(fileno=args.fd)
    except (ValueError, OSError) as exc:
        logger.error("cannot start the PTT guard: %s", exc)
        return 2
    return asyncio.run(PttGuard(settings, channel).run())


if __name__ == "__main__":
    raise SystemExit(main())
