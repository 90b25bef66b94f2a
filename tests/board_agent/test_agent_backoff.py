"""Reconnect backoff: 1, 2, 4, 8 … capped at 60 s, equal jitter, reset."""

from __future__ import annotations

import random

from board_agent.backoff import Backoff, backoff_ceiling, backoff_delay


def test_ceilings_double_and_cap() -> None:
    ceilings = [backoff_ceiling(n, 1.0, 60.0) for n in range(9)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_huge_attempt_stays_capped() -> None:
    assert backoff_ceiling(10_000, 1.0, 60.0) == 60.0


def test_jitter_stays_within_half_to_full_ceiling_and_varies() -> None:
    rng = random.Random(7)
    for attempt in range(10):
        ceiling = backoff_ceiling(attempt, 1.0, 60.0)
        delays = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered


def test_backoff_sequence_and_reset() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.attempt == 8
    backoff.reset()
    assert backoff.attempt == 0
    assert 0.5 <= backoff.next_delay() <= 1.0
