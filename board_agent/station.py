"""The rig behind the agent: one interface, `StationDriver`, and a simulated station.

`HamlibStation` (in `hamlib_station`) implements the same interface over rigctld; that is why
it is asynchronous: a real rig answers over the network or a serial line.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

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
    TxEndReason,
)

from .errors import InvalidCommandError, StationError

logger = logging.getLogger(__name__)

#: Told when PTT was released without the agent asking (why, and what to tell the operators).
ReleaseHandler: TypeAlias = Callable[[TxEndReason, str], None]


class StationDriver(ABC):
    """Applies control messages to a rig and reports its state.

    Implementations serialise their own access to the rig: `apply` and `status` may be awaited
    from different tasks. They check each command against their `capabilities()` before it
    reaches the rig (`InvalidCommandError`), whatever the server checked already.
    """

    #: Rig requests that failed: an error reply, a time-out or a lost connection (for the
    #: agent's /metrics); counted by drivers that talk to a rig.
    rig_errors: int = 0
    #: Times the rig was lost after having been online.
    outages: int = 0

    @property
    def online(self) -> bool:
        """Whether the rig answers now (the simulation always does)."""
        return True

    async def open(self) -> None:  # noqa: B027 - optional hook, the simulation holds nothing
        """Acquire the rig (connect, start helper processes); called once before use."""

    @abstractmethod
    async def apply(self, message: OperatorMessage) -> None:
        """Carry out an operator message; raise `StationError` if it is refused or fails.

        `Ptt(state=False)` is always attempted, whatever the driver believes the rig's state
        to be. `Keepalive` is not a rig command and is ignored.
        """

    @abstractmethod
    async def status(self) -> Status:
        """The rig's current state as the protocol's `status` message."""

    @abstractmethod
    async def capabilities(self) -> Capabilities:
        """The modes and frequency ranges the station accepts."""

    async def close(self) -> None:  # noqa: B027 - optional hook, the simulation holds nothing
        """Release the rig connection (after making sure the transmitter is off)."""

    def set_release_handler(self, handler: ReleaseHandler) -> None:  # noqa: B027 - optional
        """Have `handler` called, at once, when PTT was released without the agent asking
        (the station's PTT guard did it); the simulation never does."""


def validate_command(message: OperatorMessage, capabilities: Capabilities) -> None:
    """Raise `InvalidCommandError` unless `message` is within `capabilities` (and 0 … 100 %
    for power). Messages are checked here again although the protocol decoder checked their
    types: a message built in code is not validated by its constructor."""
    match message:
        case SetFrequency(value=hz):
            ranges = capabilities.freq_ranges
            if not isinstance(hz, int) or not any(r.low <= hz <= r.high for r in ranges):
                raise InvalidCommandError(
                    f"{hz} Hz is outside the rig's frequency ranges ({format_ranges(ranges)})"
                )
        case SetMode(value=mode):
            if mode not in RIG_MODES:
                raise InvalidCommandError(f"unknown mode {mode!r}")
            if mode not in capabilities.modes:
                raise InvalidCommandError(
                    f"the rig has no mode {mode} (it has {' '.join(capabilities.modes) or 'none'})"
                )
        case SetPower(value=percent):
            if not isinstance(percent, int) or not 0 <= percent <= 100:
                raise InvalidCommandError(f"power {percent!r} is not 0 … 100 %")
        case _:
            pass


def format_ranges(ranges: Sequence[FrequencyRange]) -> str:
    """`1.8 … 30 MHz, 144 … 148 MHz` (or `none`)."""
    if not ranges:
        return "none"
    return ", ".join(f"{_mhz(r.low)} … {_mhz(r.high)} MHz" for r in ranges)


def _mhz(hz: int) -> str:
    return f"{hz / 1e6:.6f}".rstrip("0").rstrip(".")


#: S9 on an S-meter: -73 dBm at the receiver input (the IARU convention for HF).
S9_DBM: Final = -73
#: How far the simulated S-meter wanders from S9, dB.
_SMETER_SPAN_DB: Final = 6

#: The simulated rig's receive ranges: HF general coverage, 6 m and 2 m.
SIMULATED_RANGES: Final = (
    FrequencyRange(low=100_000, high=30_000_000),
    FrequencyRange(low=50_000_000, high=54_000_000),
    FrequencyRange(low=144_000_000, high=148_000_000),
)


class SimulatedStation(StationDriver):
    """A rig that exists only in memory, for demos and tests: HF, 6 m and 2 m, every protocol
    mode; it refuses what a real rig's driver would refuse (`validate_command`).

    The S-meter takes a random step of at most 1 dB on each `status()`, staying within
    ±6 dB of S9 (-73 dBm); the squelch is open.
    """

    def __init__(
        self,
        *,
        freq: int = 14_205_000,
        mode: RigMode = "USB",
        power: int = 50,
        rng: random.Random | None = None,
    ) -> None:
        self.freq = freq
        self.mode: RigMode = mode
        self.power = power
        self.ptt = False
        self.smeter = S9_DBM
        self._rng = rng if rng is not None else random.Random()
        self._capabilities = Capabilities(modes=list(RIG_MODES), freq_ranges=list(SIMULATED_RANGES))

    async def apply(self, message: OperatorMessage) -> None:
        validate_command(message, self._capabilities)
        match message:
            case Ptt(state=state):
                if state != self.ptt:
                    logger.info("simulated rig: PTT %s", "on" if state else "off")
                self.ptt = state
            case SetFrequency(value=value):
                self.freq = value
            case SetMode(value=value):
                self.mode = value
            case SetPower(value=value):
                self.power = value
            case Keepalive():
                pass
            case _:
                raise StationError(f"the station does not handle {type(message).__name__}")

    async def status(self) -> Status:
        step = self._rng.randint(-1, 1)
        self.smeter = max(
            S9_DBM - _SMETER_SPAN_DB, min(S9_DBM + _SMETER_SPAN_DB, self.smeter + step)
        )
        return Status(
            ptt=self.ptt,
            freq=self.freq,
            mode=self.mode,
            smeter=self.smeter,
            squelch=True,
            power=self.power,
        )

    async def capabilities(self) -> Capabilities:
        return self._capabilities
