"""`HamlibStation`: the station driver for a real rig, through Hamlib's rigctld.

What it does beyond passing commands on:

- It checks every command itself before anything reaches the rig (the server checks too):
  the frequency within the rig's receive ranges (from `dump_caps`, narrowed by the config's
  `rig_freq_ranges`), the mode one of the protocol's and one the rig has (Hamlib's dummy rig
  accepts any mode string silently), power 0 … 100 %.
- When rigctld stops answering (closed, refused, timed out, or the rig behind it reports a
  communication error), the rig is *offline*: `status()` returns the last known values with
  `rig_online` false and `ptt` false, commands other than unkeying are refused at once, and a
  supervisor task reconnects with a bounded backoff. On every (re)connection the first command
  is `set_ptt 0`: whatever happened while the link was down, the transmitter is not left keyed.
- Unkeying is always attempted, connected or not (it reconnects on demand, bounded by the
  request time-out).
- Built from the config, it runs a PTT guard (`PttGuardLink`, a process of its own, which also
  runs rigctld for `rig = "hamlib"`): the guard unkeys when the agent dies or its event loop
  stalls. The station tells it `keying N` before asking rigctld to key and `unkeyed N` once
  rigctld confirmed a release; keying is refused while the guard is not running. When the
  guard released PTT by itself, the station tells the release handler (`StationControl`),
  and a keying that was still under way is undone.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import msgspec

from radiocore_protocol import (
    RIG_MODES,
    Capabilities,
    FrequencyRange,
    Keepalive,
    OperatorMessage,
    Ptt,
    RigMode,
    SetFrequency,
    SetMode,
    SetPower,
    Status,
)

from .backoff import Backoff
from .config import AgentConfig
from .errors import RigError, RigOfflineError, RigTimeoutError, StationError
from .ptt_guard import GuardSettings
from .ptt_guard_link import PttGuardLink
from .rigctld import UNREACHABLE_CODES, RigCaps, RigClient
from .rigctld_process import free_loopback_port
from .station import S9_DBM, ReleaseHandler, StationDriver, validate_command

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The first pause before reconnecting to rigctld (the backoff doubles up to the config's max).
RECONNECT_MIN_S: Final = 0.25
#: Quick attempts to reach the rig in `open()` (rigctld 4.5 may fail a new connection at once),
#: and the pause between them; the supervisor retries after that.
OPEN_ATTEMPTS: Final = 3
OPEN_RETRY_S: Final = 0.05
#: A connection that lasted this long resets the reconnect backoff.
STABLE_CONNECTION_S: Final = 10.0
#: Placeholder values until the rig has answered once (sent with `rig_online` false).
_UNKNOWN_FREQ: Final = 1
_UNKNOWN_MODE: Final[RigMode] = "USB"
_MAX_FREQ_HZ: Final = 300_000_000_000


def _is_loss(exc: RigError) -> bool:
    """Whether `exc` means the rig cannot be reached (rather than that it refused something)."""
    return isinstance(exc, RigTimeoutError | RigOfflineError) or exc.code in UNREACHABLE_CODES


class HamlibStation(StationDriver):
    """A rig behind rigctld; see the module docstring."""

    def __init__(
        self,
        client: RigClient,
        *,
        guard: PttGuardLink | None = None,
        freq_ranges: Sequence[tuple[int, int]] = (),
        modes: Sequence[str] = (),
        reconnect_max_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        #: The station's PTT guard (which runs rigctld for `rig = "hamlib"`), if any.
        self.guard = guard
        if guard is not None:
            guard.on_released = self._guard_released
            guard.on_lost = self._guard_lost
        self._release_handler: ReleaseHandler | None = None
        self._config_ranges = tuple(freq_ranges)
        self._config_modes = tuple(modes)
        self._caps: RigCaps | None = None
        self._capabilities = self._combine_capabilities()
        self._ready_generation = 0  # the client's connection on which the rig was set up
        self._online_since = 0.0
        self._last = Status(
            ptt=False, freq=_UNKNOWN_FREQ, mode=_UNKNOWN_MODE, power=None, rig_online=False
        )
        self._unsupported: set[str] = set()  # optional reads this rig refuses
        self._odd_modes: set[str] = set()  # rig modes the protocol cannot express (logged once)
        self._backoff = Backoff(min(RECONNECT_MIN_S, reconnect_max_s), reconnect_max_s, rng)
        self._supervisor: asyncio.Task[None] | None = None
        self._outage_logged = False
        #: Times the rig was lost after having been online.
        self.outages = 0
        #: Rig requests that failed (see `StationDriver.rig_errors`).
        self.rig_errors = 0

    @classmethod
    def from_config(cls, config: AgentConfig) -> HamlibStation:
        """The station for `rig = "rigctld"` or `"hamlib"`, with its PTT guard (which, for
        `"hamlib"`, runs rigctld)."""
        hamlib = config.rig == "hamlib"
        port = config.rigctld_port
        if hamlib and port == 0:
            port = free_loopback_port()  # chosen once: the same port if the guard restarts
        guard = PttGuardLink(
            GuardSettings(
                host=config.rigctld_host,
                port=port,
                timeout_s=config.ptt_guard_timeout_s,
                rigctld_path=config.rigctld_path if hamlib else "",
                rig_model=config.rig_model,
                rig_device=config.rig_device,
                rig_speed=config.rig_speed,
                rig_ptt_type=config.rig_ptt_type.upper(),
                log_level=config.log_level,
            )
        )
        return cls(
            RigClient(config.rigctld_host, port, timeout_s=config.rig_timeout_s),
            guard=guard,
            freq_ranges=config.freq_ranges(),
            modes=config.rig_modes,
            reconnect_max_s=config.rig_reconnect_max_s,
        )

    @property
    def online(self) -> bool:
        """Whether rigctld answers on the connection the rig was set up on (PTT released)."""
        client = self.client
        return client.connected and client.generation == self._ready_generation

    # -----------------------------------------------------------------------------------------
    # StationDriver

    async def open(self) -> None:
        """Start the PTT guard (which starts rigctld if the station runs it) and wait until it
        is ready, try to reach the rig once, then keep trying in the background. A rig that is
        not there yet is not an error: it is offline; a guard that cannot start (nor its
        rigctld) is (`StationError`)."""
        if self._supervisor is not None:
            raise RuntimeError("the station is already open")
        if self.guard is not None:
            await self.guard.start()
            self.client.port = self.guard.port
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                await self._bring_online()
                break
            except RigTimeoutError as exc:
                self._log_outage(exc)  # not worth waiting for again here
                break
            except RigError as exc:
                if attempt == OPEN_ATTEMPTS:
                    self._log_outage(exc)
                else:
                    await asyncio.sleep(OPEN_RETRY_S)
        self._supervisor = asyncio.create_task(self._supervise(), name="radiocore-rig")

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        if self.client.connected:
            keying = self._last_keying()
            try:
                await self.client.set_ptt(False, reconnect=False)
            except RigError as exc:
                logger.error("could not release PTT before disconnecting from the rig: %s", exc)
            else:
                self._confirm_unkeyed(keying)
        await self.client.close()
        if self.guard is not None:
            await self.guard.close()  # it unkeys if the release was not confirmed

    def set_release_handler(self, handler: ReleaseHandler) -> None:
        self._release_handler = handler

    async def apply(self, message: OperatorMessage) -> None:
        match message:
            case Keepalive():
                return
            case Ptt(state=False):
                await self._unkey()
                return
            case _:
                pass
        validate_command(message, await self.capabilities())
        self._require_online()
        client = self.client
        try:
            match message:
                case Ptt(state=True):
                    await self._key()
                case SetFrequency(value=hz):
                    await client.set_freq(hz, reconnect=False)
                case SetMode(value=mode):
                    await client.set_mode(mode, 0, reconnect=False)  # 0: the mode's usual width
                case SetPower(value=percent):
                    await client.set_level("RFPOWER", percent / 100, reconnect=False)
                case _:
                    raise StationError(f"the station does not handle {type(message).__name__}")
        except RigError as exc:
            raise await self._failed(exc) from None

    async def _key(self) -> None:
        """`set_ptt 1`, the guard told first. If the guard released this keying while the
        request waited (the agent was stalled), the rig is unkeyed again at once."""
        keying = self.guard.keying() if self.guard is not None else 0
        await self.client.set_ptt(True, reconnect=False)
        if self.guard is not None and self.guard.released_since(keying):
            await self.client.set_ptt(False, reconnect=False)
            self._confirm_unkeyed(keying)
            raise RigError("the station's PTT guard released PTT while the agent was keying")

    async def status(self) -> Status:
        if not self.online:
            return self._last
        client = self.client
        try:
            freq = await client.get_freq(reconnect=False)
            rig_mode, _ = await client.get_mode(reconnect=False)
            ptt = await client.get_ptt(reconnect=False)
            strength = await self._optional(
                "STRENGTH", lambda: client.get_level("STRENGTH", reconnect=False)
            )
            rfpower = await self._optional(
                "RFPOWER", lambda: client.get_level("RFPOWER", reconnect=False)
            )
            dcd = await self._optional("DCD", lambda: client.get_dcd(reconnect=False))
        except RigError as exc:
            await self._failed(exc, always_loss=True)
            return self._last
        status = Status(
            ptt=ptt,
            freq=freq if 1 <= freq <= _MAX_FREQ_HZ else self._last.freq,
            mode=self._protocol_mode(rig_mode),
            smeter=None if strength is None else round(strength) + S9_DBM,
            squelch=dcd,
            power=None if rfpower is None else max(0, min(100, round(rfpower * 100))),
            rig_online=True,
        )
        self._last = status
        return status

    async def capabilities(self) -> Capabilities:
        return self._capabilities

    # -----------------------------------------------------------------------------------------
    # Online / offline

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        at_once = False
        while True:
            if self.online:
                await self.client.wait_closed()
                # closed on purpose (a request cancelled mid-reply, e.g. at the end of a
                # session) rather than lost: reconnect at once, the next keying may be near
                at_once = not self._outage_logged
                if at_once:
                    logger.info("the connection to rigctld was closed; reconnecting")
                if loop.time() - self._online_since >= STABLE_CONNECTION_S:
                    self._backoff.reset()
                self._went_offline()
                continue
            if not at_once:
                await asyncio.sleep(self._backoff.next_delay())
            at_once = False
            try:
                await self._bring_online()
            except RigError as exc:
                self._log_outage(exc)

    async def _bring_online(self) -> None:
        """Connect, release PTT before anything else, read the rig's capabilities."""
        client = self.client
        await client.connect()
        try:
            keying = self._last_keying()
            try:
                await client.set_ptt(False, reconnect=False)
            except RigError as exc:
                if _is_loss(exc):
                    raise
                logger.warning("the rig refused to release PTT on connecting (%s)", exc)
            else:
                self._confirm_unkeyed(keying)
            try:
                caps = await client.dump_caps(reconnect=False)
            except RigError as exc:
                if _is_loss(exc):
                    raise
                logger.warning("cannot read the rig's capabilities (%s); using the config", exc)
            else:
                self._set_caps(caps)
        except BaseException:
            await client.close()
            raise
        self._ready_generation = client.generation
        self._online_since = asyncio.get_running_loop().time()
        self._unsupported = self._unsupported_readings()
        model = self._caps.model if self._caps else "unknown model"
        if self._outage_logged:
            logger.warning("the rig is back online (rigctld at %s); PTT released", client.address)
        else:
            logger.info("rig online: %s via rigctld at %s; PTT released", model, client.address)
        self._outage_logged = False

    def _unsupported_readings(self) -> set[str]:
        caps = self._caps
        if caps is None:
            return set()
        missing = {name for name in ("STRENGTH", "RFPOWER") if name not in caps.get_levels}
        if not caps.can_get_dcd:
            missing.add("DCD")
        return missing

    def _went_offline(self) -> None:
        """Status from now on: the last known values, PTT released, the rig offline."""
        if self._last.rig_online:
            self.outages += 1
            self._last = msgspec.structs.replace(self._last, ptt=False, rig_online=False)

    async def _failed(self, exc: RigError, *, always_loss: bool = False) -> RigError:
        """Note a failed request; a loss of the rig takes it offline. Returns what to raise."""
        self.rig_errors += 1
        if not (always_loss or _is_loss(exc)):
            return exc
        await self.client.close()  # the supervisor reconnects, PTT released first
        self._went_offline()
        self._log_outage(exc)
        if isinstance(exc, RigTimeoutError | RigOfflineError):
            return exc
        return RigOfflineError(f"the rig does not answer: {exc}", exc.code)

    def _log_outage(self, exc: RigError) -> None:
        if not self._outage_logged:
            logger.error("the rig is offline (PTT considered released): %s", exc)
            self._outage_logged = True
        else:
            logger.debug("the rig is still offline: %s", exc)

    def _require_online(self) -> None:
        if not self.online:
            raise RigOfflineError(
                f"the rig is offline (rigctld at {self.client.address} does not answer)"
            )

    async def _unkey(self) -> None:
        """`set_ptt 0`, connected or not: reconnects on demand, bounded by the time-out."""
        keying = self._last_keying()
        try:
            await self.client.set_ptt(False, reconnect=True)
        except RigError as exc:
            raise await self._failed(exc) from None
        self._confirm_unkeyed(keying)
        if self.online:
            self._last = msgspec.structs.replace(self._last, ptt=False)

    # -----------------------------------------------------------------------------------------
    # The PTT guard

    def _last_keying(self) -> int:
        """The latest keying the guard was told of, taken before a `set_ptt 0` is sent: the
        release it confirms covers that keying, not one that follows it."""
        return self.guard.last_keying if self.guard is not None else 0

    def _confirm_unkeyed(self, keying: int) -> None:
        if self.guard is not None and keying:
            self.guard.unkeyed(keying)

    def _guard_released(self, keying: int) -> None:
        """The guard unkeyed `keying` by itself (the agent was silent for its time-out)."""
        if self.guard is None or keying != self.guard.last_keying:
            return  # an older keying, released since by the agent and keyed anew
        self._last = msgspec.structs.replace(self._last, ptt=False)
        if self._release_handler is not None:
            self._release_handler(
                "watchdog",
                "the station's PTT guard released PTT: the agent gave no sign of life for "
                f"{self.guard.settings.timeout_s:g} s (its event loop stalled or it was "
                "stopped); not keyed again until PTT is pressed anew",
            )

    async def _guard_lost(self) -> None:
        """The guard died: unkey while the agent still can, and say so."""
        try:
            async with asyncio.timeout(3 * self.client.timeout_s):
                await self._unkey()
            released = "PTT released"
        except (RigError, TimeoutError) as exc:
            logger.error("could not release PTT after losing the PTT guard: %s", exc)
            released = "PTT could not be confirmed released"
        if self._release_handler is not None:
            self._release_handler(
                "rig_error",
                f"the station's PTT guard stopped unexpectedly; {released}; keying is refused "
                "until the guard is back",
            )

    async def _optional(self, name: str, read: Callable[[], Awaitable[T]]) -> T | None:
        """An optional reading (S-meter, power, squelch); None if this rig refuses it."""
        if name in self._unsupported:
            return None
        try:
            return await read()
        except RigError as exc:
            if _is_loss(exc):
                raise
            logger.info("the rig does not report %s (%s); leaving it out", name, exc)
            self._unsupported.add(name)
            return None

    # -----------------------------------------------------------------------------------------
    # Capabilities

    def _set_caps(self, caps: RigCaps) -> None:
        self._caps = caps
        self._capabilities = self._combine_capabilities()

    def _combine_capabilities(self) -> Capabilities:
        """The rig's modes and ranges, narrowed by the config's; the config's alone until the
        rig has answered."""
        caps = self._caps
        modes = [
            mode
            for mode in RIG_MODES
            if (caps is None or mode in caps.modes)
            and (mode in self._config_modes if self._config_modes else caps is not None)
        ]
        ranges: list[tuple[int, int]]
        if caps is None:
            ranges = list(self._config_ranges)
        elif not self._config_ranges:
            ranges = list(caps.rx_ranges)
        else:
            ranges = [
                (max(low, rig_low), min(high, rig_high))
                for low, high in self._config_ranges
                for rig_low, rig_high in caps.rx_ranges
                if max(low, rig_low) <= min(high, rig_high)
            ]
        return Capabilities(
            modes=modes,  # type: ignore[arg-type]  # filtered from RIG_MODES
            freq_ranges=[
                FrequencyRange(low=low, high=high)
                for low, high in sorted(ranges)
                if 1 <= low <= high <= _MAX_FREQ_HZ
            ],
        )

    def _protocol_mode(self, rig_mode: str) -> RigMode:
        if rig_mode in RIG_MODES:
            return rig_mode  # type: ignore[return-value]  # checked against RIG_MODES
        if rig_mode not in self._odd_modes:
            self._odd_modes.add(rig_mode)
            logger.warning(
                "the rig is in mode %s, which the protocol cannot express; reporting %s",
                rig_mode,
                self._last.mode,
            )
        return self._last.mode
