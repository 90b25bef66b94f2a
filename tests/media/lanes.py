"""The two kinds of forwarding lane (media/lane.py), for tests that run on both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from media import lane
from media.lane import LaneFactory
from media.rtp_munger import RtpMunger
from tests.support.components import require


class MungerLike(Protocol):
    def munge(self, source: int, seq: int, ts: int, ntp: int) -> tuple[int, int] | None: ...


#: `(clock_rate, first_seq, first_ts)` -> a munger (keyword arguments of those names too).
MungerType = Callable[..., MungerLike]

KINDS = ("python", "compiled")


def compiled_lane() -> LaneFactory:
    """The compiled lane; a missing one fails under `make test` (it must build there)."""
    require(
        lane.CompiledLane is not None,
        "the compiled lane media._lane is not built (a C compiler and Python's headers: "
        "pip install -e . builds it)",
    )
    assert lane.CompiledLane is not None
    return lane.CompiledLane


def lane_of(kind: str) -> LaneFactory:
    return compiled_lane() if kind == "compiled" else lane.PyLane


def munger_of(kind: str) -> MungerType:
    if kind == "compiled":
        return compiled_lane()
    return RtpMunger
