"""`RigClient`: an asyncio client for Hamlib's `rigctld` over TCP, in its extended response
format.

Each request is one line, `+\\<long command name> <args>`; rigctld answers with an echo line
(`set_freq: 14205000`), zero or more value lines (`Frequency: 14205000`, or a bare `-11` for
`get_level`) and a last line `RPRT n`, where n is 0 or a negative Hamlib error code. An error
found before the command runs comes back as the `RPRT` line alone.

rigctld's parser has no framing of its own: an unknown command gets no reply at all, and a
command short of arguments swallows the next line as its argument. So the client sends only
commands it knows, and drops the connection whenever a reply did not complete (time-out,
cancellation): a late reply would otherwise be read as the answer to the next request. One
request at a time (a lock); every request bounded by `timeout_s`.

Every reply must start with the echo of its command; one that does not is out of step and
the connection is dropped.

rigctld 4.5 has a race of its own: a connection accepted while another client's is being closed
may be closed at once, or served by two of its threads (its log says `fdopen(0x6) in: Bad file
descriptor`; here about 1 in 150 connections made right after another closed). A request whose
new connection breaks or answers out of step before any good reply is therefore sent once more
on another (at most `FRESH_ATTEMPTS` connections in all: the race can hit the next one too
when the machine is busy); every command here is idempotent.

Measured on Hamlib 4.5.4's dummy rig (`rigctld -m 1 -P RIG`) on loopback: reads answer in
~0.1 ms, but the dummy sleeps in some commands (`set_freq`, `set_mode`, `get_dcd` ~20 ms,
`set_ptt 0` ~50 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Final

from .errors import RigError, RigOfflineError, RigTimeoutError

logger = logging.getLogger(__name__)

#: rigctld's default TCP port.
DEFAULT_PORT: Final = 4532

#: Hamlib's error codes (`enum rig_errcode_e`; rigctld sends them negated, `RPRT -1`).
HAMLIB_ERRORS: Final[dict[int, tuple[str, str]]] = {
    1: ("RIG_EINVAL", "invalid parameter"),
    2: ("RIG_ECONF", "invalid configuration"),
    3: ("RIG_ENOMEM", "memory shortage"),
    4: ("RIG_ENIMPL", "function not implemented"),
    5: ("RIG_ETIMEOUT", "communication with the rig timed out"),
    6: ("RIG_EIO", "I/O error"),
    7: ("RIG_EINTERNAL", "internal Hamlib error"),
    8: ("RIG_EPROTO", "protocol error"),
    9: ("RIG_ERJCTED", "command rejected by the rig"),
    10: ("RIG_ETRUNC", "argument truncated"),
    11: ("RIG_ENAVAIL", "function not available"),
    12: ("RIG_ENTARGET", "VFO not targetable"),
    13: ("RIG_BUSERROR", "error on the communication bus"),
    14: ("RIG_BUSBUSY", "collision on the communication bus"),
    15: ("RIG_EARG", "invalid argument"),
    16: ("RIG_EVFO", "invalid VFO"),
    17: ("RIG_EDOM", "argument out of domain"),
    18: ("RIG_EDEPRECATED", "function deprecated"),
    19: ("RIG_ESECURITY", "security error"),
    20: ("RIG_EPOWER", "rig is not powered on"),
}

#: Codes that mean the rig behind rigctld is not answering (as opposed to refusing a command).
UNREACHABLE_CODES: Final = frozenset({-5, -6, -8, -13, -14, -20})

#: Bound on the lines of one reply (`dump_caps` of the dummy rig is ~200).
#: Connections a request tries when each new one breaks before any reply (rigctld's race).
FRESH_ATTEMPTS: Final = 3
MAX_REPLY_LINES: Final = 5000
#: Bound on one reply line, bytes.
MAX_LINE_BYTES: Final = 64 * 1024

_RPRT = re.compile(r"^RPRT (-?\d+)$")
_ARGUMENT = re.compile(r"^[A-Za-z0-9_.+-]+$")
_RANGE = re.compile(r"^\s+(\d+(?:\.\d+)?) Hz - (\d+(?:\.\d+)?) Hz$")


class ReplyOutOfStepError(EOFError):
    """A reply that is not the answer to the request just sent: the connection cannot be
    trusted any more (handled like a broken connection)."""


def describe_code(code: int) -> str:
    """`RPRT -1 (RIG_EINVAL: invalid parameter)` for Hamlib error code -1."""
    name, text = HAMLIB_ERRORS.get(-code, ("unknown", "unknown Hamlib error"))
    return f"RPRT {code} ({name}: {text})"


@dataclass(frozen=True)
class RigReply:
    """The value lines of a successful reply (without the echo and `RPRT 0` lines)."""

    command: str
    lines: tuple[str, ...]

    def value(self, key: str) -> str:
        """The text after `key:` on a `Key: value` line."""
        prefix = f"{key}:"
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RigError(f"rigctld's reply to {self.command!r} has no {key!r} line")

    def last(self) -> str:
        """The last value line (`get_level` answers with a bare number)."""
        if not self.lines:
            raise RigError(f"rigctld's reply to {self.command!r} has no value")
        return self.lines[-1].strip()


@dataclass(frozen=True)
class RigCaps:
    """What `dump_caps` says about the rig: the part the agent uses."""

    model: str
    #: Hamlib mode names, as in the `Mode list:` line.
    modes: tuple[str, ...]
    #: Receive ranges, inclusive, in Hz, merged and sorted.
    rx_ranges: tuple[tuple[int, int], ...]
    get_levels: frozenset[str]
    set_levels: frozenset[str]
    can_get_dcd: bool

    @classmethod
    def parse(cls, lines: tuple[str, ...]) -> RigCaps:
        """Parse the text of `dump_caps` (Hamlib 4.x layout)."""
        fields: dict[str, str] = {}
        ranges: list[tuple[int, int]] = []
        in_rx_ranges = False
        for line in lines:
            if not line[:1].isspace():
                in_rx_ranges = line.startswith("RX ranges #") and " status " not in line
                key, sep, rest = line.partition(":")
                if sep and key not in fields:
                    fields[key.strip()] = rest.strip()
                continue
            match = _RANGE.match(line) if in_rx_ranges else None
            if match:
                low, high = float(match[1]), float(match[2])  # inf for 400 digits
                if math.isfinite(high) and 0 < round(low) <= round(high):
                    ranges.append((round(low), round(high)))
        return cls(
            model=" ".join(filter(None, (fields.get("Mfg name"), fields.get("Model name")))),
            modes=tuple(fields.get("Mode list", "").split()),
            rx_ranges=_merge(ranges),
            get_levels=_level_names(fields.get("Get level", "")),
            set_levels=_level_names(fields.get("Set level", "")),
            can_get_dcd=fields.get("Can get DCD", "N").upper().startswith("Y"),
        )


def _level_names(text: str) -> frozenset[str]:
    return frozenset(token.partition("(")[0] for token in text.split())


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


class RigClient:
    """One TCP connection to rigctld, opened on demand and dropped on any incomplete reply.

    `generation` counts the connections opened so far, so that a user can tell a new
    connection (on which the rig's state must be established again) from the one it knew.
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, timeout_s: float = 1.0) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be greater than 0")
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._closed = asyncio.Event()
        self._closed.set()
        self._generation = 0
        self._answered = False  # whether the connection has answered a request
        self._fresh_failure = False  # whether the last failure was on an unanswered connection

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._stream is not None

    @property
    def generation(self) -> int:
        return self._generation

    async def wait_closed(self) -> None:
        """Return once there is no connection (at once if there is none)."""
        await self._closed.wait()

    async def connect(self) -> None:
        """Open the connection unless it is open; raises `RigOfflineError`/`RigTimeoutError`."""
        async with self._lock:
            await self._open()

    async def close(self) -> None:
        """Drop the connection (a request in progress fails)."""
        stream = self._stream
        self._drop()
        if stream is not None:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await stream[1].wait_closed()

    async def request(self, command: str, *args: str, reconnect: bool = True) -> RigReply:
        """Send `+\\<command> <args>` and return its reply once `RPRT 0` arrives.

        Raises `RigError` (with `code`) for `RPRT n != 0`, `RigTimeoutError` when the reply does
        not complete within `timeout_s`, and `RigOfflineError` when there is no connection and
        `reconnect` is false, when it cannot be opened, or when it breaks.
        """
        for part in (command, *args):
            if not _ARGUMENT.match(part):
                raise ValueError(f"not a rigctld command or argument: {part!r}")
        text = " ".join((command, *args))
        async with self._lock:
            if self._stream is None and not reconnect:
                raise RigOfflineError(f"not connected to rigctld at {self.address}")
            for attempt in range(1, FRESH_ATTEMPTS + 1):
                try:
                    code, lines = await self._exchange(command, text)
                    break
                except (OSError, EOFError) as exc:
                    if not self._fresh_failure or attempt == FRESH_ATTEMPTS:
                        raise self._lost(text, exc) from None
                    # see the module docstring: rigctld 4.5's own race on new connections;
                    # every command this client sends is idempotent, so ask again on a new one
                    logger.debug("rigctld failed a new connection at once (%s); retrying", exc)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("rigctld -> %s RPRT %d", lines, code)
        if code != 0:
            raise RigError(f"rigctld refused {text!r}: {describe_code(code)}", code)
        return RigReply(text, lines)

    # -----------------------------------------------------------------------------------------
    # Typed commands

    async def get_freq(self, *, reconnect: bool = True) -> int:
        reply = await self.request("get_freq", reconnect=reconnect)
        return round(_number(reply, reply.value("Frequency")))

    async def set_freq(self, hz: int, *, reconnect: bool = True) -> None:
        await self.request("set_freq", str(int(hz)), reconnect=reconnect)

    async def get_mode(self, *, reconnect: bool = True) -> tuple[str, int]:
        """The mode (Hamlib name) and passband in Hz."""
        reply = await self.request("get_mode", reconnect=reconnect)
        return reply.value("Mode"), round(_number(reply, reply.value("Passband")))

    async def set_mode(self, mode: str, passband: int = 0, *, reconnect: bool = True) -> None:
        """Set the mode; passband 0 is the rig's normal width for it, -1 leaves it unchanged."""
        await self.request("set_mode", mode, str(int(passband)), reconnect=reconnect)

    async def get_ptt(self, *, reconnect: bool = True) -> bool:
        reply = await self.request("get_ptt", reconnect=reconnect)
        return _number(reply, reply.value("PTT")) != 0  # 1 on, 2 mic, 3 data

    async def set_ptt(self, on: bool, *, reconnect: bool = True) -> None:
        await self.request("set_ptt", "1" if on else "0", reconnect=reconnect)

    async def get_level(self, name: str, *, reconnect: bool = True) -> float:
        reply = await self.request("get_level", name, reconnect=reconnect)
        return _number(reply, reply.last())

    async def set_level(self, name: str, value: float, *, reconnect: bool = True) -> None:
        await self.request("set_level", name, f"{value:.3f}", reconnect=reconnect)

    async def get_dcd(self, *, reconnect: bool = True) -> bool:
        """The squelch: True while it is open (carrier detected)."""
        reply = await self.request("get_dcd", reconnect=reconnect)
        return _number(reply, reply.value("DCD")) != 0

    async def dump_caps(self, *, reconnect: bool = True) -> RigCaps:
        reply = await self.request("dump_caps", reconnect=reconnect)
        return RigCaps.parse(reply.lines)

    # -----------------------------------------------------------------------------------------

    async def _exchange(self, command: str, text: str) -> tuple[int, tuple[str, ...]]:
        """One request and its reply (without the echo line) on the connection, opened if need
        be. On failure the connection is dropped; `_fresh_failure` says whether it had not
        answered yet."""
        reader, writer = await self._open()
        fresh = not self._answered
        self._fresh_failure = False
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("rigctld <- %s", text)
        try:
            async with asyncio.timeout(self.timeout_s):
                writer.write(f"+\\{text}\n".encode("ascii"))
                await writer.drain()
                code, lines = await _read_reply(reader)
            # every reply starts with the echo of its command: without it, this is another's
            if not lines or not lines[0].startswith(f"{command}:"):
                first = lines[0] if lines else f"RPRT {code}"
                raise ReplyOutOfStepError(f"the reply starts with {first[:80]!r}")
        except TimeoutError:
            self._drop()
            raise RigTimeoutError(
                f"rigctld at {self.address} did not answer {text!r} within {self.timeout_s:g} s"
            ) from None
        except ValueError as exc:  # a line over the limit, or too many
            self._drop()
            raise self._lost(text, exc) from None
        except (OSError, EOFError):
            self._drop()
            self._fresh_failure = fresh
            raise
        except BaseException:
            self._drop()  # cancelled mid-reply: the stream is out of step
            raise
        self._answered = True
        return code, lines[1:]

    def _lost(self, text: str, exc: Exception) -> RigOfflineError:
        return RigOfflineError(
            f"lost the connection to rigctld at {self.address} during {text!r}: "
            f"{exc or type(exc).__name__}"
        )

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._stream is not None:
            return self._stream
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await self._open_stream()
        except TimeoutError:
            raise RigTimeoutError(
                f"no connection to rigctld at {self.address} within {self.timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise RigOfflineError(
                f"cannot connect to rigctld at {self.address}: {exc.strerror or exc}"
            ) from None
        self._stream = reader, writer
        self._answered = False
        self._generation += 1
        self._closed.clear()
        logger.debug("connected to rigctld at %s", self.address)
        return self._stream

    async def _open_stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection to rigctld. (The fuzz harness, bench/fuzz.py, answers a real client
        through a stream of its own here: a rig's replies are input too.)"""
        return await asyncio.open_connection(self.host, self.port, limit=MAX_LINE_BYTES)

    def _drop(self) -> None:
        stream = self._stream
        self._stream = None
        self._closed.set()
        if stream is not None:
            stream[1].close()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, tuple[str, ...]]:
    """Lines up to `RPRT n`; raises EOFError if the connection closes first."""
    lines: list[str] = []
    for _ in range(MAX_REPLY_LINES):
        raw = await reader.readline()  # ValueError if a line exceeds the reader's limit
        if not raw.endswith(b"\n"):
            raise EOFError("rigctld closed the connection")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        match = _RPRT.match(line)
        if match:
            return int(match[1]), tuple(lines)
        lines.append(line)
    raise ValueError(f"reply longer than {MAX_REPLY_LINES} lines")


def _number(reply: RigReply, text: str) -> float:
    """A finite number (`inf` and `nan` parse as floats, and no rig reads them)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RigError(f"rigctld's reply to {reply.command!r} is not a number: {text[:80]!r}")
    return value
