"""Audio sources: 20 ms frames of 48 kHz mono s16, 960 samples, carrying the expected signal."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from board_agent.audio_source import (
    SAMPLES_PER_FRAME,
    AudioSource,
    DeviceSource,
    FileSource,
    ToneSource,
)
from board_agent.config import AudioSpec
from board_agent.errors import AudioError


def samples_of(frames: list[av.AudioFrame]) -> np.ndarray:
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)


def dominant_frequency(samples: np.ndarray, rate: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean((samples / 32768) ** 2)))


def assert_standard_frame(frame: av.AudioFrame) -> None:
    assert frame.samples == SAMPLES_PER_FRAME
    assert frame.sample_rate == 48000
    assert frame.format.name == "s16"
    assert frame.layout.name == "mono"


def test_tone_source_frames_and_frequency() -> None:
    source = ToneSource()
    frames = [source.read() for _ in range(100)]  # 2 s, across the 1 s loop point
    for frame in frames:
        assert_standard_frame(frame)
    assert [f.pts for f in frames[:3]] == [0, 960, 1920]
    samples = samples_of(frames)
    assert abs(dominant_frequency(samples) - 1000) <= 2
    assert 0.18 <= rms(samples) <= 0.25  # ~0.3 peak sine: 0.21 RMS
    assert np.std(np.diff(samples[47990:48010])) > 0  # seamless loop: no flat splice


def test_tone_source_frequency_is_configurable() -> None:
    source = AudioSource.from_spec(AudioSpec.parse_source("tone:440"))
    assert isinstance(source, ToneSource)
    samples = samples_of([source.read() for _ in range(50)])
    assert abs(dominant_frequency(samples) - 440) <= 2


def test_tone_source_has_a_little_noise() -> None:
    source = ToneSource()
    samples = samples_of([source.read() for _ in range(50)])
    t = np.arange(len(samples)) / 48000
    residual = samples / 32767 - 0.3 * np.sin(2 * np.pi * 1000 * t)
    assert 0.001 < float(np.std(residual)) < 0.02


def write_wav(path: Path, *, seconds: float, rate: int, channels: int, hz: float) -> None:
    count = int(seconds * rate)
    tone = (0.5 * 32767 * np.sin(2 * np.pi * hz * np.arange(count) / rate)).astype("<i2")
    interleaved = np.repeat(tone, channels)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(interleaved.tobytes())


def test_file_source_resamples_to_48k_mono_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "rx.wav"
    write_wav(path, seconds=0.25, rate=44100, channels=2, hz=440)
    source = AudioSource.from_spec(AudioSpec.parse_source(f"file:{path}"))
    assert isinstance(source, FileSource)
    frames = [source.read() for _ in range(40)]  # 0.8 s: three passes over the file
    source.close()
    for frame in frames:
        assert_standard_frame(frame)
    assert [f.pts for f in frames] == [n * 960 for n in range(40)]
    first_pass = samples_of(frames[:12])
    assert abs(dominant_frequency(first_pass) - 440) <= 5
    assert rms(first_pass) > 0.3
    assert rms(samples_of(frames[-8:])) > 0.3  # still sound after looping


def test_file_source_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot open"):
        FileSource(str(tmp_path / "missing.wav"))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError):
        FileSource(str(junk))
    empty = tmp_path / "empty.wav"
    write_wav(empty, seconds=0, rate=48000, channels=1, hz=440)
    source = FileSource(str(empty))
    with pytest.raises(AudioError, match="no audio samples"):
        source.read()


def test_device_source_through_an_ffmpeg_input_device() -> None:
    # lavfi stands in for ALSA here: same code path (arealtime paces it like a capture device)
    source = DeviceSource("sine=frequency=700:sample_rate=44100,arealtime", "lavfi")
    assert source.live
    frames = [source.read() for _ in range(25)]
    source.close()
    for frame in frames:
        assert_standard_frame(frame)
    assert abs(dominant_frequency(samples_of(frames)) - 700) <= 3


def test_device_source_reports_a_missing_input_device() -> None:
    with pytest.raises(AudioError, match="no 'nosuchdevice' input device"):
        DeviceSource("default", "nosuchdevice")


def test_frames_hold_exactly_the_samples() -> None:
    frame = ToneSource(frequency_hz=1000, amplitude=0.0, noise_amplitude=0.0).read()
    assert frame.to_ndarray().shape == (1, 960)
    assert not frame.to_ndarray().any()
    assert frame.time_base == Fraction(1, 48000)
