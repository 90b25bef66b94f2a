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
- If the agent runs rigctld itself (`RigctldProcess`), the station owns that process.
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
from .rigctld import UNREACHABLE_CODES, RigCaps, RigClient
from .rigctld_process import RigctldProcess, free_loopback_port
from .station import S9_DBM, StationDriver, validate_command

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
        process: RigctldProcess | None = None,
        freq_ranges: Sequence[tuple[int, int]] = (),
        modes: Sequence[str] = (),
        reconnect_max_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        #: The rigctld the station runs itself, if any.
        self.process = process
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

    @classmethod
    def from_config(cls, config: AgentConfig) -> HamlibStation:
        """The station for `rig = "rigctld"` or `"hamlib"` (which also runs rigctld)."""
        process = None
        port = config.rigctld_port
        if config.rig == "hamlib":
            if port == 0:
                port = free_loopback_port()
            process = RigctldProcess(
                path=config.rigctld_path,
                model=config.rig_model,
                port=port,
                device=config.rig_device,
                speed=config.rig_speed,
                ptt_type=config.rig_ptt_type,
            )
        host = process.host if process is not None else config.rigctld_host
        return cls(
            RigClient(host, port, timeout_s=config.rig_timeout_s),
            process=process,
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
        """Start rigctld if the station runs it, try to reach the rig once, then keep trying
        in the background. A rig that is not there yet is not an error: it is offline."""
        if self._supervisor is not None:
            raise RuntimeError("the station is already open")
        if self.process is not None:
            await self.process.start()
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
            try:
                await self.client.set_ptt(False, reconnect=False)
            except RigError as exc:
                logger.error("could not release PTT before disconnecting from the rig: %s", exc)
        await self.client.close()
        if self.process is not None:
            await self.process.stop()

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
                    await client.set_ptt(True, reconnect=False)
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
            try:
                await client.set_ptt(False, reconnect=False)
            except RigError as exc:
                if _is_loss(exc):
                    raise
                logger.warning("the rig refused to release PTT on connecting (%s)", exc)
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
        try:
            await self.client.set_ptt(False, reconnect=True)
        except RigError as exc:
            raise await self._failed(exc) from None
        if self.online:
            self._last = msgspec.structs.replace(self._last, ptt=False)

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
