"""Real aiortc peers in one process, on loopback, for SFU tests."""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960


class TonePacketTrack(MediaStreamTrack):
    """Publishes a tone as pre-encoded Opus packets (like the board agent), paced at 20 ms."""

    kind = "audio"

    def __init__(self, frequency: float = 1000.0, limit: int = 10_000) -> None:
        super().__init__()
        self.frequency = frequency
        self.limit = limit
        self.sent: list[bytes] = []
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._codec.bit_rate = 24000
        self._codec.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pending: list[av.Packet] = []
        self._samples = 0
        self._start: float | None = None

    def _encode_next(self) -> None:
        t = (np.arange(FRAME_SAMPLES) + self._samples) / SAMPLE_RATE
        pcm = (0.3 * 32767 * np.sin(2 * math.pi * self.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += FRAME_SAMPLES
        self._pending.extend(self._codec.encode(frame))

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if len(self.sent) >= self.limit:
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        while not self._pending:
            self._encode_next()
        packet = self._pending.pop(0)
        due = self._start + len(self.sent) * 0.02
        await asyncio.sleep(max(0.0, due - loop.time()))
        packet.pts = len(self.sent) * FRAME_SAMPLES
        packet.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent.append(bytes(packet))
        return packet


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def offer_sdp(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


async def apply_answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
