"""`ControlQueue` on its own: tuning coalesces (the latest value wins, never across a PTT
change), PTT changes keep their order, and a full queue never drops a release."""

from __future__ import annotations

import pytest

from board_agent.control_queue import ControlQueue, Displaced
from radiocore_protocol import OperatorMessage, Ptt, SetFrequency, SetMode, SetPower

ON = Ptt(state=True)
OFF = Ptt(state=False)


def drain(queue: ControlQueue) -> list[OperatorMessage]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_a_newer_tuning_message_takes_the_place_of_the_pending_one() -> None:
    queue = ControlQueue(8)
    assert queue.put_nowait(SetFrequency(value=7_074_000)) is None
    assert queue.put_nowait(SetMode(value="USB")) is None
    displaced = queue.put_nowait(SetFrequency(value=7_076_000))
    assert displaced == Displaced(SetFrequency(value=7_074_000), coalesced=True)
    queue.put_nowait(SetPower(value=20))
    queue.put_nowait(SetMode(value="LSB"))
    assert drain(queue) == [SetFrequency(value=7_076_000), SetMode(value="LSB"), SetPower(value=20)]


def test_a_flood_of_one_tuning_type_leaves_one_message() -> None:
    queue = ControlQueue(32)
    for n in range(3000):
        queue.put_nowait(SetFrequency(value=7_000_000 + n))
    assert drain(queue) == [SetFrequency(value=7_002_999)]


def test_tuning_does_not_coalesce_across_a_ptt_change() -> None:
    # the operator tuned, transmitted, then tuned away: the transmission stays on 7.074 MHz
    queue = ControlQueue(8)
    for message in (SetFrequency(value=7_074_000), ON, OFF, SetFrequency(value=7_100_000)):
        assert queue.put_nowait(message) is None
    queue.put_nowait(SetFrequency(value=7_110_000))  # replaces 7.100 only
    assert drain(queue) == [
        SetFrequency(value=7_074_000),
        ON,
        OFF,
        SetFrequency(value=7_110_000),
    ]


def test_ptt_changes_are_never_coalesced() -> None:
    queue = ControlQueue(8)
    for message in (ON, ON, OFF, OFF, ON):
        assert queue.put_nowait(message) is None
    assert drain(queue) == [ON, ON, OFF, OFF, ON]


def test_a_full_queue_drops_tuning_first_then_key_ups_never_a_release() -> None:
    queue = ControlQueue(3)
    for message in (SetFrequency(value=7_074_000), ON, OFF):
        queue.put_nowait(message)
    assert queue.put_nowait(ON) == Displaced(SetFrequency(value=7_074_000), coalesced=False)
    assert queue.put_nowait(OFF) == Displaced(ON, coalesced=False)
    assert drain(queue) == [OFF, ON, OFF]


def test_a_queue_full_of_releases_drops_a_duplicate_release() -> None:
    queue = ControlQueue(2)
    queue.put_nowait(OFF)
    queue.put_nowait(OFF)
    assert queue.put_nowait(ON) == Displaced(OFF, coalesced=False)
    assert drain(queue) == [OFF, ON]


def test_a_queue_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ControlQueue(0)
