"""Audio sinks: the TX audio the agent receives, as 48 kHz mono s16."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np

from board_agent.audio_sink import AudioSink, DeviceSink, NullSink, RawFileSink
from board_agent.config import AudioSpec


def stereo_frame(left: int, right: int, pts: int) -> av.AudioFrame:
    """A frame like aiortc's Opus decoder produces: s16 packed stereo, 48 kHz, 960 samples."""
    data = np.tile(np.array([left, right], dtype="<i2"), 960).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
    frame.sample_rate = 48000
    frame.pts = pts
    return frame


def test_raw_file_sink_appends_mono_pcm_readable_while_open(tmp_path: Path) -> None:
    path = tmp_path / "tx.raw"
    sink = AudioSink.from_spec(AudioSpec.parse_sink(f"raw:{path}"))
    assert isinstance(sink, RawFileSink)
    sink.write(stereo_frame(1000, 3000, 0))
    assert path.stat().st_size == 1920  # flushed: a reader sees it while the agent runs
    for n in range(1, 10):
        sink.write(stereo_frame(1000, 3000, n * 960))
    sink.close()
    pcm = np.frombuffer(path.read_bytes(), dtype="<i2")
    assert len(pcm) == 10 * 960
    assert np.all(np.abs(pcm - 2000) <= 1)  # the two channels mixed down
    assert sink.frames_written == 10


def test_raw_file_sink_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "tx.raw"
    path.write_bytes(b"\x00\x00" * 5)
    sink = RawFileSink(str(path))
    sink.write(stereo_frame(5, 5, 0))
    sink.close()
    assert path.stat().st_size == 10 + 1920


def test_null_sink_discards() -> None:
    sink = AudioSink.from_spec(AudioSpec.parse_sink("null"))
    assert isinstance(sink, NullSink)
    sink.write(stereo_frame(1, 1, 0))
    sink.close()
    assert sink.frames_written == 1


def test_device_sink_through_an_ffmpeg_muxer(tmp_path: Path) -> None:
    # a WAV file stands in for an output device: same code path
    path = tmp_path / "out.wav"
    sink = DeviceSink(str(path), "wav")
    for n in range(5):
        sink.write(stereo_frame(-400, -400, n * 960))
    sink.close()
    with wave.open(str(path)) as result:
        assert (result.getnchannels(), result.getframerate(), result.getsampwidth()) == (
            1,
            48000,
            2,
        )
        pcm = np.frombuffer(result.readframes(result.getnframes()), dtype="<i2")
    assert len(pcm) == 5 * 960
    assert np.all(pcm == -400)
