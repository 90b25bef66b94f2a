"""The rig behind the agent: one interface, `StationDriver`, and a simulated station.

A Hamlib `rigctld` driver (TCP, extended protocol) will implement the same interface; that is
why it is asynchronous: a real rig answers over the network or a serial line.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from typing import Final

from signaling.protocol import (
    OperatorMessage,
    Ptt,
    RigMode,
    SetFrequency,
    SetMode,
    SetPower,
    Status,
)

from .errors import StationError

logger = logging.getLogger(__name__)


class StationDriver(ABC):
    """Applies control messages to a rig and reports its state.

    Implementations serialise their own access to the rig: `apply` and `status` may be awaited
    from different tasks.
    """

    @abstractmethod
    async def apply(self, message: OperatorMessage) -> None:
        """Carry out a validated operator message; raise `StationError` if the rig refuses."""

    @abstractmethod
    async def status(self) -> Status:
        """The rig's current state as the protocol's `status` message."""

    async def close(self) -> None:  # noqa: B027 - optional hook, the simulation holds nothing
        """Release the rig connection (after making sure the transmitter is off)."""


#: S9 in the seed's convention.
S9_DBM: Final = -73
#: How far the simulated S-meter wanders from S9, dB.
_SMETER_SPAN_DB: Final = 6


class SimulatedStation(StationDriver):
    """A rig that exists only in memory, for demos and tests; accepts every valid message.

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

    async def apply(self, message: OperatorMessage) -> None:
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
