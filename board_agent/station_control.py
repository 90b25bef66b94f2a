"""`StationControl`: between the control channel and the station driver.

It applies the server's control messages to the station, publishes the station's `status` and
`capabilities`, and enforces the agent's own transmit safety, independently of the server:

- dead-man: while keyed, PTT is released when no `keepalive` (or `ptt` on) has arrived for
  `deadman_s`; the server is told with `tx_stopped` {reason: "deadman"};
- TX time-out: PTT is released after `tx_timeout_s` keyed (`tx_stopped` "timeout");
- rig failure: a PTT command that fails, or the rig lost while keyed, counts as released
  (`tx_stopped` "rig_error" and an `error` "rig_error");
- losing the server: the agent calls `release_ptt()` at once (no `tx_stopped`: nobody to tell);
- the station released PTT by itself (its PTT guard found the agent's event loop stalled, or
  the guard died and the station unkeyed): recorded as stopped at once, `tx_stopped` with the
  station's reason ("watchdog"; "rig_error" for a lost guard) and an `error` "rig_error"
  saying so; never keyed again unless a new `ptt` on comes.

Control messages wait for the rig in a bounded `ControlQueue` in which tuning coalesces: the
latest `freq`, `mode` or `power` wins, so a flood of tuning leaves one command per type waiting
for the rig, and PTT changes keep their order. Should the queue still drop a message (full of
PTT changes), the operators get an `error` "rate_limited" and the log a count, each at most
once a second (`ShedReport`). Keep-alives are handled on arrival (never queued, never sent to
the rig), so a backlog of rig commands can neither delay them nor be pushed out by them.
Unkeying is always attempted, even when the rig's state is unknown, bounded in time, and `ptt`
turns false only once it was tried.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Final

from radiocore_protocol import (
    Capabilities,
    Error,
    ErrorCode,
    Keepalive,
    OperatorMessage,
    ProtocolError,
    Ptt,
    StationMessage,
    Status,
    TxEndReason,
    TxStopped,
    decode_operator_message,
)

from .config import AgentConfig
from .control_queue import ControlQueue, Displaced
from .errors import InvalidCommandError, RigOfflineError, RigTimeoutError, StationError
from .station import StationDriver

logger = logging.getLogger(__name__)

#: The operators hear of dropped commands, and the log counts what was dropped or coalesced, at
#: most this often.
SHED_REPORT_INTERVAL_S: Final = 1.0


Send = Callable[[StationMessage], None]


def _message_type(message: OperatorMessage) -> str:
    return str(type(message).__struct_config__.tag)


class ShedReport:
    """Counts the control messages the queue displaced and reports them at most once per
    `interval_s`: the first after a quiet period at once, the rest together when the period is
    over (so a flood makes one line a second, not one per message).

    A report is one log line — a WARNING when messages were dropped, DEBUG when tuning was only
    coalesced (the latest value still reaches the rig) — and, when messages were dropped, an
    `error` `rate_limited` to the operators through `emit` (`ref`: the type last dropped).
    """

    def __init__(self, interval_s: float, emit: Send) -> None:
        self._interval_s = interval_s
        self._emit = emit
        self._dropped: collections.Counter[str] = collections.Counter()
        self._last_dropped = ""
        self._coalesced = 0
        self._reported_at = -math.inf
        self._timer: asyncio.TimerHandle | None = None

    def note(self, displaced: Displaced) -> None:
        if displaced.coalesced:
            self._coalesced += 1
        else:
            self._last_dropped = _message_type(displaced.message)
            self._dropped[self._last_dropped] += 1
        if self._timer is not None:
            return  # a report is due at the end of this period
        loop = asyncio.get_running_loop()
        wait = self._reported_at + self._interval_s - loop.time()
        if wait <= 0:
            self._report(tell_operators=True)
        else:
            self._timer = loop.call_later(wait, self._report, True)

    def close(self) -> None:
        """The session is over: log what was counted since the last report (nobody is left
        to tell) and cancel the report due."""
        self._report(tell_operators=False)

    def _report(self, tell_operators: bool) -> None:
        """Report what was counted since the last report, if anything, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dropped = self._dropped.total()
        if not dropped and not self._coalesced:
            return
        self._reported_at = asyncio.get_running_loop().time()
        if dropped:
            kinds = ", ".join(f"{count} {kind}" for kind, count in self._dropped.most_common())
            logger.warning(
                "the rig is not keeping up: dropped %d control message(s) (%s), "
                "coalesced %d tuning message(s) into newer ones",
                dropped,
                kinds,
                self._coalesced,
            )
            if tell_operators:
                self._emit(
                    Error(
                        code=ErrorCode.RATE_LIMITED,
                        message=f"the station is busy: {dropped} command(s) dropped ({kinds})",
                        ref=self._last_dropped,
                    )
                )
        else:
            logger.debug("coalesced %d tuning message(s) into newer ones", self._coalesced)
        self._dropped.clear()
        self._coalesced = 0


class StationControl:
    """One per agent, owning no task itself: `serve()` runs for one session (until cancelled);
    `release_ptt()` follows every session (and ends the session's pending shed report)."""

    def __init__(self, station: StationDriver, config: AgentConfig) -> None:
        self.station = station
        self._config = config
        # tuning coalesces (the latest value wins), so only PTT changes (and the tuning between
        # them) can fill it; when full, the oldest tuning message or key-up is dropped — never
        # a release of PTT (see `ControlQueue`)
        self._queue = ControlQueue(config.control_queue_size)
        self._shed = ShedReport(SHED_REPORT_INTERVAL_S, self._emit)
        self._send: Send | None = None
        self._ptt = False
        self._keyed_at = 0.0
        self._last_keepalive = -math.inf
        # every PTT change and rig command in turn, so that a release is never overtaken
        self._apply_lock = asyncio.Lock()
        self._tx_changed = asyncio.Event()
        self._poll_now = asyncio.Event()
        #: Bound on one unkey attempt: waiting for the request in progress, connecting, asking.
        self.unkey_timeout_s = 3 * config.rig_timeout_s
        #: Why the agent released PTT by itself, in order (for diagnostics and tests).
        self.tx_stops: list[TxEndReason] = []
        #: Times PTT went from released to keyed (the agent's /metrics).
        self.ptt_sessions = 0
        #: Unix time the station last confirmed its transmitter unkeyed after a transmission
        #: (None: no transmission since the agent started); the server gets it in `hello`.
        self.ptt_released_at: float | None = None
        station.set_release_handler(self._station_released)

    @property
    def ptt(self) -> bool:
        """True from the moment the agent keys until it has tried to unkey."""
        return self._ptt

    def receive(self, data: object) -> None:
        """A data-channel message from the server (text or bytes)."""
        if not isinstance(data, str | bytes):
            return
        try:
            message = decode_operator_message(data)
        except ProtocolError as exc:
            logger.warning("ignored a control message (%s): %s", exc.code.value, exc.message)
            return
        if isinstance(message, Keepalive):
            self._last_keepalive = asyncio.get_running_loop().time()
            return
        if isinstance(message, Ptt) and message.state:
            self._last_keepalive = asyncio.get_running_loop().time()
        displaced = self._queue.put_nowait(message)
        if displaced is not None:
            self._shed.note(displaced)

    async def serve(self, send: Send) -> None:
        """Run for one session, until cancelled: `capabilities` and `status` first, then apply
        control messages, poll the station, and watch the dead-man and the TX time-out."""
        self._send = send
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._control_loop(), name="radiocore-agent-control")
                group.create_task(self._status_loop(), name="radiocore-agent-status")
                group.create_task(self._tx_guard_loop(), name="radiocore-agent-tx-guard")
        finally:
            self._send = None

    async def release_ptt(self, reason: str) -> None:
        """The link to the server is gone (or the agent stops): forget queued commands and
        unkey at once. Always attempts the unkey, whatever the agent believes the state is."""
        self._queue.clear()
        self._shed.close()
        async with self._apply_lock:
            if self._ptt:
                logger.warning("releasing PTT: %s", reason)
            else:
                logger.debug("making sure PTT is released: %s", reason)
            await self._unkey(None)

    # -----------------------------------------------------------------------------------------

    def _station_released(self, reason: TxEndReason, message: str) -> None:
        """The station released PTT by itself (the rig is already unkeyed). Runs at once, not
        under `_apply_lock`: after a stall it must come before the agent's own timers act on a
        transmission that is over. A keying still under way is the station's to undo."""
        if not self._ptt:
            logger.info("%s (the agent had not keyed)", message)
            return
        logger.error("%s", message)
        self._ptt = False
        self.ptt_released_at = time.time()
        self._tx_changed.set()
        self.tx_stops.append(reason)
        self._emit(Error(code=ErrorCode.RIG_ERROR, message=message, ref="ptt"))
        self._emit(TxStopped(reason=reason))

    def _emit(self, message: StationMessage) -> None:
        if self._send is not None:
            self._send(message)

    def _emit_error(self, exc: StationError, ref: str) -> None:
        code = (
            ErrorCode.BAD_REQUEST if isinstance(exc, InvalidCommandError) else ErrorCode.RIG_ERROR
        )
        self._emit(Error(code=code, message=str(exc), ref=ref))

    async def _control_loop(self) -> None:
        while True:
            message = await self._queue.get()
            async with self._apply_lock:
                await self._apply(message)
            self._poll_now.set()

    async def _apply(self, message: OperatorMessage) -> None:
        if isinstance(message, Ptt):
            if message.state:
                await self._key()
            else:
                await self._unkey(None)
            return
        try:
            await self.station.apply(message)
        except StationError as exc:
            logger.warning("the station refused %s: %s", _message_type(message), exc)
            self._emit_error(exc, _message_type(message))
            if self._ptt and isinstance(exc, RigTimeoutError | RigOfflineError):
                await self._unkey("rig_error")

    async def _key(self) -> None:
        if not self._ptt:
            logger.info("PTT on")
            self._ptt = True  # from here on an unkey is always attempted
            self.ptt_sessions += 1
            self._keyed_at = asyncio.get_running_loop().time()
            self._tx_changed.set()
        try:
            await self.station.apply(Ptt(state=True))
        except StationError as exc:
            logger.error("keying the rig failed: %s", exc)
            self._emit_error(exc, "ptt")
            await self._unkey("rig_error")

    async def _unkey(self, reason: TxEndReason | None) -> None:
        """Attempt to unkey (bounded); tell the server why if the agent decided it (`reason`).
        Call with `_apply_lock` held."""
        failure: str | None = None
        try:
            async with asyncio.timeout(self.unkey_timeout_s):
                await self.station.apply(Ptt(state=False))
        except StationError as exc:
            failure = str(exc)
        except TimeoutError:
            failure = f"the rig did not confirm the release within {self.unkey_timeout_s:g} s"
        finally:
            if self._ptt:
                logger.info("PTT off%s", f" ({reason})" if reason else "")
                if failure is None:
                    self.ptt_released_at = time.time()  # the rig confirmed it
            self._ptt = False  # tried: the station unkeys again as soon as the rig answers
            self._tx_changed.set()
        if failure is not None:
            logger.error("releasing PTT failed: %s", failure)
            self._emit(Error(code=ErrorCode.RIG_ERROR, message=failure, ref="ptt"))
            if reason is None and self._send is not None:
                reason = "rig_error"  # the operator's release failed: say so, as for any PTT
        if reason is not None:
            self.tx_stops.append(reason)
            self._emit(TxStopped(reason=reason))

    def _tx_limit(self) -> tuple[TxEndReason, float]:
        """The next limit on the current transmission and when it falls due (loop time)."""
        deadman_at = self._last_keepalive + self._config.deadman_s
        timeout_at = self._keyed_at + self._config.tx_timeout_s
        return ("deadman", deadman_at) if deadman_at <= timeout_at else ("timeout", timeout_at)

    async def _tx_guard_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._tx_changed.clear()
            if not self._ptt:
                await self._tx_changed.wait()
                continue
            _, due = self._tx_limit()
            if due > loop.time():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due - loop.time()):
                        await self._tx_changed.wait()
                continue
            async with self._apply_lock:
                reason, due = self._tx_limit()  # a keep-alive or a release may have come
                if self._ptt and due <= loop.time():
                    if reason == "deadman":
                        logger.warning(
                            "dead-man: no keep-alive for %g s; releasing PTT",
                            self._config.deadman_s,
                        )
                    else:
                        logger.warning(
                            "TX time-out: releasing PTT after %g s keyed",
                            self._config.tx_timeout_s,
                        )
                    await self._unkey(reason)

    async def _status_loop(self) -> None:
        """Poll at `rig_poll_hz` (and at once after a command was applied); send `status` when
        it changed or `status_interval_s` passed, `capabilities` first and when they change."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self._config.rig_poll_hz
        sent_status: Status | None = None
        sent_at = -math.inf
        sent_capabilities: Capabilities | None = None
        while True:
            started = loop.time()
            self._poll_now.clear()
            capabilities = await self.station.capabilities()
            if capabilities != sent_capabilities:
                self._emit(capabilities)
                sent_capabilities = capabilities
            try:
                status = await self.station.status()
            except StationError as exc:
                logger.warning("cannot read the station status: %s", exc)
            else:
                if not status.rig_online and self._ptt:
                    await self._rig_lost_while_keyed()
                now = loop.time()
                if status != sent_status or now - sent_at >= self._config.status_interval_s:
                    self._emit(status)
                    sent_status, sent_at = status, now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, started + period - loop.time())):
                    await self._poll_now.wait()

    async def _rig_lost_while_keyed(self) -> None:
        async with self._apply_lock:
            if not self._ptt:
                return
            logger.error("the rig stopped answering while keyed: PTT considered released")
            self._emit(
                Error(
                    code=ErrorCode.RIG_ERROR,
                    message="the rig stopped answering while transmitting; PTT released",
                    ref="ptt",
                )
            )
            await self._unkey("rig_error")
