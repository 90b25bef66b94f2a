"""One listener's sequence/timestamp rewriting: loss kept, reorder mapped or dropped, wraps,
source changes rebased from the highest packet sent, and never a sequence number twice — by the
pure-Python `RtpMunger` and by the compiled lane's munger alike (`munger_type`)."""

from __future__ import annotations

import random

from tests.media.lanes import MungerLike as Munger
from tests.media.lanes import MungerType

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz
SECOND = 1 << 32  # in 64-bit NTP time
T0 = 3_900_000_000 * SECOND  # some NTP time in 2023


def at(ms: float) -> int:
    return T0 + round(ms * SECOND / 1000)


def feed(
    munger: Munger, source: int, seqs: list[int], base_ts: int = 0
) -> list[tuple[int, int] | None]:
    """Packets of one source, 20 ms apart in wall time by their sequence number."""
    return [munger.munge(source, s, base_ts + s * FRAME, at(s * 20)) for s in seqs]


def test_the_first_packet_goes_out_as_the_chosen_first_numbers(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=7, first_ts=1234)
    assert munger.munge(1, 40_000, 999_999, at(0)) == (7, 1234)
    assert munger.munge(1, 40_001, 999_999 + FRAME, at(20)) == (8, 1234 + FRAME)


def test_upstream_loss_shows_as_loss(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=100, first_ts=0)
    out = feed(munger, 1, [10, 11, 14, 15])
    assert out == [(100, 0), (101, FRAME), (104, 4 * FRAME), (105, 5 * FRAME)]


def test_a_reordered_packet_takes_its_own_past_slot_once(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=100, first_ts=0)
    assert feed(munger, 1, [10, 12, 11]) == [(100, 0), (102, 2 * FRAME), (101, FRAME)]
    assert feed(munger, 1, [11, 12, 10]) == [None, None, None]  # duplicates are dropped
    assert feed(munger, 1, [13]) == [(103, 3 * FRAME)]


def test_a_packet_too_late_to_matter_is_dropped(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=0, first_ts=0)
    feed(munger, 1, list(range(1000, 1100)))
    assert munger.munge(1, 1099 - 64, 0, at(0)) is None  # 1.3 s late
    assert munger.munge(1, 1099 - 63, (1099 - 63) * FRAME, at(0)) is None  # already sent
    feed(munger, 1, [1101])
    assert munger.munge(1, 1100, 1100 * FRAME, at(0)) == (100, 100 * FRAME)  # not sent yet


def test_16_bit_sequence_numbers_wrap_in_and_out(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=65534, first_ts=0)
    out = feed(munger, 1, [65533, 65534, 65535, 1, 0, 2])
    assert [o[0] if o else None for o in out] == [65534, 65535, 0, 2, 1, 3]


def test_32_bit_timestamps_wrap(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=0, first_ts=0xFFFFFFFF - FRAME)
    first_in = 0xFFFFFFFF - 500  # the source's timestamps wrap too, at another point
    out = [munger.munge(1, n, (first_in + n * FRAME) & 0xFFFFFFFF, at(n * 20)) for n in range(4)]
    stamps = [o[1] for o in out if o is not None]
    assert stamps == [0xFFFFFFFF - FRAME, 0xFFFFFFFF, FRAME - 1, 2 * FRAME - 1]


def test_a_new_source_follows_on_in_sequence_and_by_elapsed_time(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=500, first_ts=10_000)
    feed(munger, 1, [1, 2, 3])  # out 500..502, sent at 20, 40, 60 ms
    # 250 ms after the last packet another source (other numbering) starts
    assert munger.munge(2, 9000, 77_777, at(60 + 250)) == (503, 10_000 + 2 * FRAME + 12_000)
    assert munger.munge(2, 9001, 77_777 + FRAME, at(330)) == (504, 10_000 + 3 * FRAME + 12_000)


def test_an_immediate_source_change_still_advances_the_timestamp(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=0, first_ts=0)
    assert munger.munge(1, 5, 0, at(0)) == (0, 0)
    assert munger.munge(2, 5, 0, at(0)) == (1, 1)


def test_a_source_change_rebases_from_the_highest_not_the_last_packet_sent(
    munger_type: MungerType,
) -> None:
    munger = munger_type(RATE, first_seq=100, first_ts=0)
    assert feed(munger, 1, [1, 3, 2]) == [(100, 0), (102, 2 * FRAME), (101, FRAME)]
    out = munger.munge(2, 7000, 0, at(80))
    assert out is not None and out[0] == 103  # 102 is taken
    assert out[1] == 2 * FRAME + 48 * 20  # 20 ms after the highest timestamp's packet (60 ms)


def test_a_late_packet_of_the_new_source_from_before_its_first_is_dropped(
    munger_type: MungerType,
) -> None:
    munger = munger_type(RATE, first_seq=100, first_ts=0)
    feed(munger, 1, [1, 2])
    assert munger.munge(2, 50, 0, at(60)) == (102, 2 * FRAME)
    assert munger.munge(2, 49, 0, at(60)) is None  # its slot would be 101: taken


def test_a_stream_that_restarts_its_numbering_is_followed(munger_type: MungerType) -> None:
    munger = munger_type(RATE, first_seq=0, first_ts=0)
    feed(munger, 1, list(range(20_000, 20_010)))
    out = feed(munger, 1, [3, 4])  # same source, numbering restarted far behind
    assert [o[0] if o else None for o in out] == [10, 11]


def test_no_sequence_number_is_ever_sent_twice(munger_type: MungerType) -> None:
    """Random streams: loss, duplicates, reordering, source changes and restarts."""
    for seed in range(40):
        rng = random.Random(seed)
        munger = munger_type(RATE, first_seq=rng.getrandbits(16), first_ts=rng.getrandbits(32))
        sent: set[int] = set()
        source, seq, now_ms = 0, rng.getrandbits(16), 0.0
        highest: int | None = None  # the highest sequence number of this source so far
        for _ in range(1500):  # fewer than 2**16 packets: an output number may not recur
            now_ms += 20
            roll = rng.random()
            if roll < 0.01:
                source += 1  # another operator takes the floor, or the agent reconnects
                seq, highest = rng.getrandbits(16), None
            elif roll < 0.02:
                seq = (seq + rng.randrange(1, 3000)) & 0xFFFF  # a burst of loss
            packet = seq
            if rng.random() < 0.1:  # a late or duplicated packet instead
                packet = (seq - rng.randrange(0, 80)) & 0xFFFF
            else:
                seq = (seq + 1) & 0xFFFF
            newest = highest is None or 0 < (packet - highest) & 0xFFFF < 0x8000
            out = munger.munge(source, packet, packet * FRAME, at(now_ms))
            if newest:
                assert out is not None, "a packet newer than all before it was dropped"
                highest = packet
            if out is not None:
                assert out[0] not in sent, f"seed {seed}: {out[0]} sent twice"
                sent.add(out[0])
