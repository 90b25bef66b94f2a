"""`TxAudioPlayer`: the floor holder's voice, from the peer connection into the transmitter.

The SFU forwards the voice of whoever holds the floor; the agent plays it into the audio sink
(the rig's audio input) only while PTT is on: a VOX rig would otherwise key on audio the agent
did not mean to transmit. The player lives as long as the agent and plays each session's track;
the agent owns (and closes) the sink.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .audio_sink import AudioSink
from .errors import AudioError

logger = logging.getLogger(__name__)


class TxAudioPlayer:
    """Plays received audio frames into `sink` while `keyed()` is true, drops them otherwise."""

    def __init__(self, sink: AudioSink, keyed: Callable[[], bool]) -> None:
        self._sink = sink
        self._keyed = keyed
        #: Frames discarded because PTT was off (over the agent's lifetime).
        self.frames_dropped = 0

    async def play(self, track: MediaStreamTrack) -> None:
        """Play `track` until it ends (or the sink fails, which is logged)."""
        sink = self._sink
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            if not self._keyed():
                self.frames_dropped += 1
                continue
            try:
                if sink.live:
                    write = asyncio.ensure_future(asyncio.to_thread(sink.write, frame))
                    try:
                        await asyncio.shield(write)
                    except asyncio.CancelledError:
                        await asyncio.wait({write})  # never close the device mid-write
                        raise
                else:
                    sink.write(frame)
            except AudioError as exc:
                logger.error("TX audio stopped: %s", exc)
                return
