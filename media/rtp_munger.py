"""Sequence number and timestamp rewriting for one listener's stream (after LiveKit's RTPMunger).

A listener hears one continuous RTP stream although its source changes (the agent reconnects
with a new SSRC; another operator takes the floor). Within one source the outgoing numbers are
the source's own, shifted by an offset, so upstream loss shows as loss. At a source change the
offsets are rebased from the HIGHEST sequence number and timestamp sent so far: the next
sequence number follows on, and the timestamp advances by the wall time elapsed since that
packet. A reordered (older) packet takes its own past slot if that slot was never used and is
recent; otherwise it is dropped: no sequence number is ever sent twice (a listener's SRTP
replay protection would discard the second one, and its jitter buffer could confuse the two).

Pure integer logic, no I/O; it runs per packet per listener, so it stays a few integer ops.
"""

from __future__ import annotations

_SEQ_MASK = 0xFFFF
_TS_MASK = 0xFFFFFFFF
_HALF_SEQ = 0x8000
#: How many of the latest sequence numbers are remembered as sent (one bit each): a packet
#: older than that is too late to be of use to the listener and is dropped.
_WINDOW = 64
_WINDOW_MASK = (1 << _WINDOW) - 1
#: A packet this far behind the highest is not late but a stream that restarted its numbering
#: under the same SSRC (about 20 s of 20 ms packets): it is followed like a new source.
_RESTART_BEHIND = 1000
_NTP_ONE_SECOND = 1 << 32
#: The longest pause a timestamp advances by across a source change, in seconds.
_MAX_PAUSE_S = 3600.0


class RtpMunger:
    """Maps one listener's incoming (seq, ts) to outgoing ones, or drops the packet."""

    __slots__ = (
        "_clock_rate",
        "_highest_in",
        "_highest_ntp",
        "_highest_ts_in",
        "_sent",
        "_seq_offset",
        "_source",
        "_ts_offset",
    )

    def __init__(self, clock_rate: int, first_seq: int, first_ts: int) -> None:
        """The first packet goes out as `first_seq`, `first_ts` (random in production)."""
        self._clock_rate = clock_rate
        self._source: int | None = None
        # as if a packet first_seq - 1 with timestamp first_ts had been sent, at no known time
        self._seq_offset = 0
        self._ts_offset = 0
        self._highest_in = (first_seq - 1) & _SEQ_MASK
        self._highest_ts_in = first_ts & _TS_MASK
        self._highest_ntp = 0
        self._sent = _WINDOW_MASK  # bit n: highest - n was sent (or belongs to a past source)

    def munge(self, source: int, seq: int, ts: int, ntp: int) -> tuple[int, int] | None:
        """The outgoing (sequence number, timestamp) of a packet, or None to drop it.

        `source` is any number that changes when the source does; `ntp` is the 64-bit NTP time
        the packet is handled at (it measures the pause across a source change).
        """
        if source != self._source:
            self._rebase(source, seq, ts, ntp)
        diff = (seq - self._highest_in) & _SEQ_MASK
        if 0 < diff < _HALF_SEQ:  # newer than anything sent: the common case
            self._highest_in = seq
            self._highest_ts_in = ts
            self._highest_ntp = ntp
            self._sent = ((self._sent << diff) | 1) & _WINDOW_MASK if diff < _WINDOW else 1
            return (seq + self._seq_offset) & _SEQ_MASK, (ts + self._ts_offset) & _TS_MASK
        behind = (self._highest_in - seq) & _SEQ_MASK  # 0: a duplicate of the highest
        if behind >= _WINDOW:
            if behind < _RESTART_BEHIND:
                return None
            self._rebase(source, seq, ts, ntp)
            return self.munge(source, seq, ts, ntp)
        bit = 1 << behind
        if self._sent & bit:
            return None
        self._sent |= bit
        return (seq + self._seq_offset) & _SEQ_MASK, (ts + self._ts_offset) & _TS_MASK

    def _rebase(self, source: int, seq: int, ts: int, ntp: int) -> None:
        """Make `seq` follow the highest sequence number sent, and `ts` the highest timestamp
        plus the time elapsed since it was sent."""
        highest_seq = (self._highest_in + self._seq_offset) & _SEQ_MASK
        highest_ts = (self._highest_ts_in + self._ts_offset) & _TS_MASK
        advance = 0  # nothing sent yet: start at the first timestamp
        if self._highest_ntp:
            elapsed = (ntp - self._highest_ntp) / _NTP_ONE_SECOND
            advance = max(1, round(min(max(elapsed, 0.0), _MAX_PAUSE_S) * self._clock_rate))
        self._seq_offset = (highest_seq + 1 - seq) & _SEQ_MASK
        self._ts_offset = (highest_ts + advance - ts) & _TS_MASK
        self._highest_in = (seq - 1) & _SEQ_MASK
        self._highest_ts_in = (ts - advance) & _TS_MASK
        self._sent = _WINDOW_MASK  # every slot up to the highest is taken by the past source
        self._source = source
