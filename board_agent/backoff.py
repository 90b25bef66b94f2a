"""Reconnect delays: exponential backoff 1, 2, 4, 8 … capped, with equal jitter."""

from __future__ import annotations

import random


def backoff_ceiling(attempt: int, minimum: float, maximum: float) -> float:
    """The un-jittered delay before retry number `attempt` (0-based): min·2^attempt, capped."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # cap the exponent first so a long outage cannot overflow the float
    return min(maximum, minimum * 2.0 ** min(attempt, 64))


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """The jittered delay before retry `attempt`: uniform in [ceiling/2, ceiling].

    Equal jitter: never less than half the ceiling (no hammering a server that just came back),
    yet spread enough that a fleet of boards does not reconnect in lock-step.
    """
    ceiling = backoff_ceiling(attempt, minimum, maximum)
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


class Backoff:
    """Successive reconnect delays; `reset()` after a connection that worked."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        delay = backoff_delay(self._attempt, self._minimum, self._maximum, self._rng)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self._attempt = 0
