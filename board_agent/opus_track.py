"""An aiortc audio track that hands the sender pre-encoded Opus packets, paced in real time.

aiortc's own encoder sends mono as stereo at 96 kbit/s with no control over VBR or FEC. When a
track's `recv()` returns an `av.Packet` instead of a frame, `RTCRtpSender` only packs it
(`OpusEncoder.pack`: payload = packet bytes, RTP timestamp = pts * time_base in 1/48000). So the
agent encodes each 20 ms once, here, the way a voice link wants it: mono, ~24 kbit/s,
constrained VBR, in-band FEC.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .audio_source import (
    FRAME_DURATION_S,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    TIME_BASE,
    AudioSource,
)
from .errors import AudioError

logger = logging.getLogger(__name__)

#: libopus options, by the names FFmpeg's libopus wrapper (libopusenc.c) takes. `vbr` constrained
#: keeps a steady tone near the asked bit rate (unconstrained VBR measured ~2x it); `fec` +
#: `packet_loss` make libopus embed a low-rate copy of the previous frame that a receiver uses
#: to conceal a lost packet (it only does so when told to expect loss).
OPUS_OPTIONS: Final = {
    "application": "voip",
    "vbr": "constrained",
    "frame_duration": "20",
    "fec": "1",
    "packet_loss": "10",
}

#: When the event loop stalls for longer than this, skip ahead instead of bursting the backlog:
#: a burst arrives too late to be played anyway and would flood the SFU's listener queues.
MAX_LAG_S: Final = 0.1

#: Bound on packets the encoder returned beyond the one handed out (libopus returns one per
#: frame; this only guards against an encoder that batches).
_MAX_QUEUED_PACKETS: Final = 8


def open_opus_encoder(bitrate: int) -> av.AudioCodecContext:
    """A libopus encoder for 48 kHz mono s16 20 ms frames, checked to have taken every option."""
    codec = av.CodecContext.create("libopus", "w")
    if not isinstance(codec, av.AudioCodecContext):
        raise AudioError("libopus is not an audio encoder in this PyAV build")
    codec.bit_rate = bitrate
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.time_base = TIME_BASE
    codec.options = dict(OPUS_OPTIONS)
    try:
        codec.open()
    except av.FFmpegError as exc:
        raise AudioError(f"cannot open the Opus encoder: {exc}") from exc
    # FFmpeg hands back the options it did not recognise; a misspelt one would otherwise be
    # silently ignored.
    if codec.options:
        raise AudioError(f"libopus did not accept the options {sorted(codec.options)}")
    return codec


class OpusPacketTrack(MediaStreamTrack):
    """An audio track whose `recv()` returns Opus `av.Packet`s, one per 20 ms.

    Takes ownership of `source` (closes it on `stop()`). Pacing follows the monotonic clock from
    the first `recv()`: packet n is released at start + n * 20 ms, so there is no drift. A live
    source (a capture device) is paced by its own clock instead and read off the event loop.
    `packet.pts` counts samples from 0 with `time_base` 1/48000 (the RTP timestamp).
    """

    kind = "audio"

    def __init__(
        self,
        source: AudioSource,
        *,
        bitrate: int = 24000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._source = source
        self._encoder = open_opus_encoder(bitrate)
        self._clock = clock
        self._start: float | None = None
        self._index = 0  # packets handed out or skipped since the start
        self._samples_in = 0  # samples fed to the encoder
        self._ready: deque[av.Packet[Any]] = deque(maxlen=_MAX_QUEUED_PACKETS)
        self._reader: ThreadPoolExecutor | None = None  # live sources only
        self._read_future: Future[av.AudioFrame] | None = None
        self._close_lock = threading.Lock()
        self._source_closed = False
        #: Counters for status and tests.
        self.packets_sent = 0
        self.bytes_sent = 0
        self.frames_skipped = 0
        #: 20 ms frames that were not ready in time (the agent's /metrics): skipped after the
        #: event loop stalled (a paced source), or the frames' worth of a gap of over one frame
        #: plus `MAX_LAG_S` between two packets of a capture device (a live source: the device
        #: or the event loop was late).
        self.underruns = 0
        self._live_read_at: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            if not self._source.live:
                await self._wait_for_slot()
            packet = await self._next_packet()
            if self._source.live:
                self._note_live_gap()
        except AudioError as exc:
            # the sender stops on MediaStreamError; "ended" tells the track's owner
            logger.error("RX audio stopped: %s", exc)
            self.stop()
            raise MediaStreamError from exc
        if self.readyState != "live":
            raise MediaStreamError
        packet.pts = self._index * SAMPLES_PER_FRAME
        packet.dts = packet.pts
        packet.time_base = TIME_BASE
        self._index += 1
        self.packets_sent += 1
        self.bytes_sent += packet.size
        return packet

    async def _wait_for_slot(self) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now
        delay = self._start + self._index * FRAME_DURATION_S - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -MAX_LAG_S:
            # the RTP timestamp jumps with the skip, so the receiver sees a gap, not a squeeze
            skipped = int(-delay / FRAME_DURATION_S)
            self._index += skipped
            self.frames_skipped += skipped
            self.underruns += skipped
            logger.debug("event loop stalled %.0f ms: skipped %d frames", -delay * 1000, skipped)

    def _note_live_gap(self) -> None:
        """Count the frames of a live source that were late: the time between two packets
        beyond one frame, when that exceeds `MAX_LAG_S` (the device's own clock paces it, so
        only gaps count, never its drift against this machine's clock)."""
        now = self._clock()
        last, self._live_read_at = self._live_read_at, now
        if last is not None and now - last > FRAME_DURATION_S + MAX_LAG_S:
            self.underruns += int((now - last) / FRAME_DURATION_S) - 1

    async def _next_packet(self) -> av.Packet[Any]:
        while not self._ready:
            frame = await self._read_frame()
            frame.pts = self._samples_in
            frame.time_base = TIME_BASE
            self._samples_in += frame.samples
            try:
                self._ready.extend(self._encoder.encode(frame))
            except av.FFmpegError as exc:
                raise AudioError(f"Opus encoding failed: {exc}") from exc
        return self._ready.popleft()

    async def _read_frame(self) -> av.AudioFrame:
        if not self._source.live:
            return self._source.read()
        if self._reader is None:
            # one thread of its own: a blocked device read must not hold the default executor
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rx-audio")
        self._read_future = self._reader.submit(self._source.read)
        return await asyncio.wrap_future(self._read_future)

    def _close_source(self) -> None:
        with self._close_lock:
            if self._source_closed:
                return
            self._source_closed = True
        self._source.close()

    def stop(self) -> None:
        """End the track; closes the source (after a device read that is still running)."""
        if self.readyState != "live":
            return
        super().stop()
        future = self._read_future
        if future is not None and not future.done():
            future.add_done_callback(lambda _done: self._close_source())
        else:
            self._close_source()
        if self._reader is not None:
            self._reader.shutdown(wait=False)
