"""OpusPacketTrack: pre-encoded Opus packets, ~24 kbit/s, paced at 20 ms, carried by aiortc."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

import board_agent.opus_track
from board_agent.audio_source import DeviceSource, ToneSource
from board_agent.errors import AudioError
from board_agent.opus_track import OpusPacketTrack, open_opus_encoder


class SteppingClock:
    """A monotonic clock that moves 20 ms per reading: the track never has to sleep."""

    def __init__(self, step: float = 0.02) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_packets_are_opus_at_about_24_kbit_with_pts_in_samples() -> None:
    track = OpusPacketTrack(ToneSource(), bitrate=24000, clock=SteppingClock())
    packets = [await track.recv() for _ in range(250)]  # 5 s of audio
    track.stop()
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets] == [n * 960 for n in range(250)]
    assert all(p.time_base == Fraction(1, 48000) for p in packets)
    sizes = [p.size for p in packets]
    average = sum(sizes[10:]) / len(sizes[10:])
    assert 40 <= average <= 80, average
    assert 16_000 <= average * 8 * 50 <= 32_000  # bit/s
    assert track.packets_sent == 250 and track.bytes_sent == sum(sizes)


def test_encoder_takes_every_libopus_option() -> None:
    codec = open_opus_encoder(24000)
    assert codec.options == {}  # FFmpeg consumed all of them
    assert codec.layout.name == "mono" and codec.sample_rate == 48000


def test_a_misspelt_libopus_option_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        board_agent.opus_track, "OPUS_OPTIONS", {"application": "voip", "inband_fec": "1"}
    )
    with pytest.raises(AudioError, match="inband_fec"):
        open_opus_encoder(24000)


async def test_pacing_follows_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packet n is released at start + n x 20 ms on the track's clock, whatever the time the
    sender spends between two packets: no drift. (The clock and the track's sleep are the
    test's: a loaded machine's scheduling is not what is judged.)"""
    clock = SteppingClock(step=0.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(board_agent.opus_track.asyncio, "sleep", sleep)
    track = OpusPacketTrack(ToneSource(), clock=clock)
    start = clock.now
    released = []
    for _ in range(16):
        await track.recv()
        released.append(clock.now - start)
        clock.now += 0.007  # the sender's own work before it asks for the next packet
    track.stop()
    assert released == pytest.approx([n * 0.020 for n in range(16)], abs=1e-9)
    assert slept == pytest.approx([0.013] * 15, abs=1e-9)


async def test_a_stalled_loop_skips_ahead_instead_of_bursting() -> None:
    clock = SteppingClock(step=0.0)
    track = OpusPacketTrack(ToneSource(), clock=clock)
    first = await track.recv()
    clock.now += 1.0  # the event loop was blocked for a second
    second = await track.recv()
    track.stop()
    assert first.pts == 0
    assert second.pts == 50 * 960  # the RTP timestamp keeps wall time: a gap, not a squeeze
    assert track.frames_skipped == 49


async def test_stop_closes_the_source_and_ends_the_track() -> None:
    closed = []

    class Recording(ToneSource):
        def close(self) -> None:
            closed.append(True)

    track = OpusPacketTrack(Recording(), clock=SteppingClock())
    await track.recv()
    track.stop()
    track.stop()
    assert closed == [True]
    assert track.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_a_live_device_source_is_read_off_the_loop() -> None:
    source = DeviceSource("sine=frequency=700:sample_rate=48000", "lavfi")
    track = OpusPacketTrack(source)
    packets = [await track.recv() for _ in range(10)]
    track.stop()
    assert [p.pts for p in packets] == [n * 960 for n in range(10)]
    assert all(p.size > 0 for p in packets)


async def test_a_real_peer_connection_carries_the_tone(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice skips 127.0.0.1; on loopback only, hand it that address
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = OpusPacketTrack(ToneSource(frequency_hz=1000))
    remote_track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    receiver.on("track", lambda t: remote_track.set_result(t))
    try:
        sender.addTransceiver(track, direction="sendrecv")  # as the board agent does
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        remote = await asyncio.wait_for(remote_track, 5)
        frames: list[av.AudioFrame] = []
        async with asyncio.timeout(10):
            while len(frames) < 75:  # 1.5 s
                frame = await remote.recv()
                assert isinstance(frame, av.AudioFrame)
                frames.append(frame)
    finally:
        await sender.close()
        await receiver.close()
    assert sender.connectionState == "closed"
    assert track.packets_sent >= 60
    audio = np.concatenate(
        [f.to_ndarray().reshape(-1, len(f.layout.channels))[:, 0] for f in frames[25:]]
    )
    samples = audio.astype(np.float64) / 32768
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak = float(np.fft.rfftfreq(len(samples), 1 / 48000)[int(np.argmax(spectrum))])
    assert abs(peak - 1000) <= 5, peak
    assert float(np.sqrt(np.mean(samples**2))) > 0.1  # the 0.3 tone (0.21 RMS), not silence
