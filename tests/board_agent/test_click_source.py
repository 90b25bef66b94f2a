"""The click source (`clicks:MS[:PATH]`): a latency test signal whose clicks start at known
wall-clock instants, each emit time recorded where the agent hands the frame to the encoder."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest

from board_agent.audio_source import SAMPLES_PER_FRAME, AudioSource, ClickSource
from board_agent.config import AudioSpec
from board_agent.errors import ConfigError
from board_agent.opus_track import OpusPacketTrack

RATE = 48000


class SteppedClock:
    """Wall-clock readings handed out in order: when each `read()` happens."""

    def __init__(self, start: float, step: float = 0.02) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


def pcm(frame: av.AudioFrame) -> np.ndarray:
    return frame.to_ndarray().reshape(-1).astype(np.float64) / 32768


def first_loud(samples: np.ndarray, threshold: float = 0.25) -> int | None:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return int(loud[0]) if loud.size else None


def test_a_click_starts_at_its_wall_clock_instant_inside_the_frame() -> None:
    # reads at 1000.005, 1000.025, ...: the click due at 1000.500 is 15 ms into the frame
    # read at 1000.485
    clock = SteppedClock(1000.005)
    source = ClickSource(period_ms=500, clock=clock)
    frames = [source.read() for _ in range(60)]  # 1.2 s
    samples = np.concatenate([pcm(f) for f in frames])
    assert [f.pts for f in frames[:3]] == [0, 960, 1920]
    starts = []
    index = 0
    while (found := first_loud(samples[index:])) is not None:
        starts.append(index + found)
        index += found + RATE // 10  # past this burst
    # frame n is read at 1000.005 + n * 0.02 and its samples play from then on
    onsets = [1000.005 + start / RATE for start in starts]
    assert onsets == pytest.approx([1000.5, 1001.0], abs=1 / RATE)
    assert [nominal for nominal, _ in source.emitted] == pytest.approx([1000.5, 1001.0])
    for nominal, emitted in source.emitted:
        assert nominal - 1 / RATE <= emitted <= nominal
    # the burst (10 ms, 0.8 of full scale) spans into the next frame: 480 loud-ish samples
    burst = samples[starts[0] : starts[0] + 480]
    assert 0.75 <= float(np.max(np.abs(burst))) <= 0.81
    assert float(np.max(np.abs(samples[starts[0] + 480 : starts[0] + 4800]))) == 0.0
    assert starts[0] // SAMPLES_PER_FRAME != (starts[0] + 479) // SAMPLES_PER_FRAME


def test_a_late_read_starts_the_click_at_the_frame_and_says_when() -> None:
    # a read 30 ms after the click was due (the event loop stalled): it starts the frame
    source = ClickSource(period_ms=500, clock=iter([999.98, 1000.53, 1000.55]).__next__)
    first, late = source.read(), source.read()
    assert first_loud(pcm(first)) is None
    assert first_loud(pcm(late)) == 0
    assert list(source.emitted) == [(1000.5, 1000.53)]


def test_a_click_long_overdue_is_skipped() -> None:
    source = ClickSource(period_ms=500, clock=iter([999.95, 1000.25, 1000.27]).__next__)
    assert [first_loud(pcm(source.read())) for _ in range(3)] == [None, None, None]
    assert source.skipped == 1
    assert list(source.emitted) == []


def test_the_spec_picks_the_period_and_the_log(tmp_path: Path) -> None:
    log = tmp_path / "clicks.txt"
    spec = AudioSpec.parse_source(f"clicks:200:{log}")
    assert (spec.kind, spec.click_period_ms, spec.click_log) == ("clicks", 200, str(log))
    plain = AudioSpec.parse_source("clicks")
    assert (plain.click_period_ms, plain.click_log) == (500, None)
    for bad in ("clicks:abc", "clicks:50", f"clicks:500:{tmp_path}/missing/log.txt"):
        with pytest.raises(ConfigError):
            AudioSpec.parse_source(bad)


async def test_through_the_opus_track_each_click_is_emitted_on_time_and_logged(
    tmp_path: Path,
) -> None:
    """The real agent path on the real clock: the track paces 20 ms frames and encodes them;
    every click's emit instant (when its frame went to the encoder) is within a frame of its
    nominal instant, and the log says the same."""
    log = tmp_path / "clicks.txt"
    source = AudioSource.from_spec(AudioSpec.parse_source(f"clicks:200:{log}"))
    assert isinstance(source, ClickSource)
    track = OpusPacketTrack(source)
    started = time.time()
    try:
        packets = [await asyncio.wait_for(track.recv(), 1.0) for _ in range(60)]  # 1.2 s
    finally:
        track.stop()
    assert len(packets) == 60
    clicks = list(source.emitted)
    assert 5 <= len(clicks) <= 7
    for nominal, emitted in clicks:
        assert nominal > started
        assert round(nominal * 1000) % 200 == 0  # aligned to the wall clock
        assert nominal * 1000 == pytest.approx(round(nominal * 1000), abs=1e-3)
        assert nominal - 1 / RATE <= emitted <= nominal + 0.02
    logged = [float(x) for line in log.read_text().splitlines() for x in line.split()]
    assert logged == pytest.approx([x for click in clicks for x in click], abs=1e-6)
