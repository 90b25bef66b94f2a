"""`ResilientSource`: an RX source that fails mid-session is replaced by silence and reopened.

The failing sources are real ones: FFmpeg's lavfi input device through `DeviceSource` (the code
path of an ALSA card; `duration=` ends it the way an unplugged card stops delivering) and a
`FileSource` whose file is removed. Pacing uses a fake clock, so the timing is exact.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from board_agent.audio_source import (
    FRAME_DURATION_S,
    SAMPLES_PER_FRAME,
    AudioSource,
    AudioState,
    DeviceSource,
    FileSource,
    ResilientSource,
)
from board_agent.errors import AudioError
from board_agent.opus_track import OpusPacketTrack
from tests.board_agent.test_audio_source import (
    assert_standard_frame,
    dominant_frequency,
    samples_of,
    write_wav,
)

#: A "device" that delivers 0.2 s (ten frames) of a 700 Hz tone, then stops.
#: (Retry intervals below are a hair under whole frames: the fake clock sums 0.02 s steps,
#: which float arithmetic leaves just short of 0.1 or 0.2.)
SHORT_DEVICE = "sine=frequency=700:sample_rate=48000:duration=0.2"
FRAMES_PER_OPENING = 10


class FakeClock:
    """`time.monotonic` and `time.sleep` for the source, with sleeping advancing the time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def is_silent(frame: object) -> bool:
    return not samples_of([frame]).any()  # type: ignore[list-item]


def short_device() -> AudioSource:
    return DeviceSource(SHORT_DEVICE, "lavfi")


def test_a_device_that_stops_is_replaced_by_paced_silence_then_reopened() -> None:
    fake = FakeClock()
    state = AudioState()
    opened: list[float] = []

    def factory() -> AudioSource:
        opened.append(fake.now)
        return short_device()

    source = ResilientSource(
        factory, retry_s=0.0999, state=state, clock=fake.clock, sleep=fake.sleep
    )
    assert source.live
    frames = [source.read() for _ in range(FRAMES_PER_OPENING)]
    assert state.failure is None and fake.slept == []
    assert abs(dominant_frequency(samples_of(frames)) - 700) <= 3

    failed_at = fake.now
    silence = [source.read() for _ in range(5)]  # the device stopped: 5 x 20 ms = retry_s
    assert all(is_silent(frame) for frame in silence)
    assert state.failures == 1
    assert state.failure is not None and "stopped delivering audio" in state.failure
    # one every 20 ms, as the device's clock would have delivered them
    assert fake.slept == pytest.approx([FRAME_DURATION_S] * 5)

    back = [source.read() for _ in range(FRAMES_PER_OPENING)]
    assert len(opened) == 2 and opened[1] - failed_at == pytest.approx(0.1, abs=1e-6)
    assert state.failure is None, "the reopened device delivers: no failure to report"
    assert abs(dominant_frequency(samples_of(back)) - 700) <= 3
    assert not any(is_silent(frame) for frame in back)

    everything = frames + silence + back
    for frame in everything:
        assert_standard_frame(frame)
    assert [f.pts for f in everything] == [n * SAMPLES_PER_FRAME for n in range(len(everything))]
    source.close()


def test_reopening_retries_every_retry_s_until_the_device_is_back() -> None:
    fake = FakeClock()
    state = AudioState()
    attempts: list[float] = []
    unplugged = {"yes": False}

    def factory() -> AudioSource:
        attempts.append(fake.now)
        if unplugged["yes"]:
            raise AudioError("cannot open alsa device 'hw:1,0': No such device")
        return short_device()

    source = ResilientSource(
        factory, retry_s=0.1999, state=state, clock=fake.clock, sleep=fake.sleep
    )
    for _ in range(FRAMES_PER_OPENING):
        source.read()
    unplugged["yes"] = True
    silent = [source.read() for _ in range(51)]  # ~1 s without the device
    assert all(is_silent(frame) for frame in silent)
    assert state.failure == "cannot open alsa device 'hw:1,0': No such device"
    retries = attempts[1:]
    assert len(retries) == 5, retries  # at 0.2, 0.4, 0.6, 0.8 and 1.0 s
    assert np.diff(retries) == pytest.approx([0.2] * 4, abs=1e-6)

    unplugged["yes"] = False  # plugged in again: heard at the next retry, within 0.2 s
    waited = 0
    while is_silent(frame := source.read()) and waited < 20:
        waited += 1
    assert waited <= 10, "the device was back but not reopened within retry_s"
    assert state.failure is None
    assert state.failures == 1, "one failure of an open device, however many retries"
    rest = [source.read() for _ in range(FRAMES_PER_OPENING - 1)]
    assert abs(dominant_frequency(samples_of([frame, *rest])) - 700) <= 3
    source.close()


def test_a_source_that_cannot_open_at_all_is_the_sessions_error() -> None:
    state = AudioState()

    def factory() -> AudioSource:
        return DeviceSource("default", "nosuchdevice")

    with pytest.raises(AudioError, match="no 'nosuchdevice' input device"):
        ResilientSource(factory, state=state)
    assert state.failure is not None and "nosuchdevice" in state.failure


def test_a_removed_file_gives_unpaced_silence_until_it_is_back(tmp_path: Path) -> None:
    fake = FakeClock()
    path = tmp_path / "rx.wav"
    write_wav(path, seconds=0.1, rate=48000, channels=1, hz=440)  # five frames, then it loops
    kept = tmp_path / "kept.wav"
    shutil.copy(path, kept)
    state = AudioState()
    source = ResilientSource(
        lambda: FileSource(str(path)), retry_s=0.05, state=state, clock=fake.clock,
        sleep=fake.sleep,
    )  # fmt: skip
    assert not source.live
    first = [source.read() for _ in range(5)]
    path.unlink()  # the loop's reopening fails
    silent = [source.read() for _ in range(3)]
    assert all(is_silent(frame) for frame in silent)
    assert state.failure is not None and "cannot open" in state.failure
    assert fake.slept == [], "a paced (non-live) source's silence is paced by the track"
    shutil.copy(kept, path)
    fake.now += 0.05
    back = [source.read() for _ in range(5)]
    assert state.failure is None
    assert abs(dominant_frequency(samples_of(first)) - 440) <= 10
    assert abs(dominant_frequency(samples_of(back)) - 440) <= 10
    source.close()


async def test_the_track_goes_on_through_a_device_that_stops() -> None:
    """Real time: a paced lavfi device (arealtime) of 0.1 s, reopened every 0.2 s, behind the
    agent's Opus track; the track never ends and its packets keep coming."""
    state = AudioState()

    def factory() -> AudioSource:
        return DeviceSource("sine=frequency=700:sample_rate=48000:duration=0.1,arealtime", "lavfi")

    track = OpusPacketTrack(ResilientSource(factory, retry_s=0.2, state=state))
    started = time.monotonic()
    try:
        packets = [await asyncio.wait_for(track.recv(), 2) for _ in range(40)]
    finally:
        track.stop()
    elapsed = time.monotonic() - started
    assert track.readyState == "ended"  # by stop(), not by the failures
    assert state.failures >= 2, "the device stopped at least twice in 0.8 s"
    assert [p.pts for p in packets] == [n * SAMPLES_PER_FRAME for n in range(40)]
    # 40 packets of 20 ms, paced by the device or the silence: not a burst, not stalled
    assert 0.6 <= elapsed <= 4.0, elapsed
