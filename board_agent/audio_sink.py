"""Where the operator's voice (TX audio) goes at the station: the rig's audio input.

The agent decodes the SFU's Opus stream with aiortc's normal receiver (s16 stereo 48 kHz
frames) and hands each frame to an `AudioSink`, which converts it to 48 kHz mono s16.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import BinaryIO

import av
import av.container

from .audio_source import SAMPLE_RATE, frame_pcm
from .config import AudioSpec
from .errors import AudioError

logger = logging.getLogger(__name__)


class AudioSink(ABC):
    """Consumes decoded audio frames of any layout/rate as 48 kHz mono s16."""

    #: True when `write()` blocks at the device's pace: call it off the event loop.
    live: bool = False

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.frames_written = 0

    def write(self, frame: av.AudioFrame) -> None:
        """Convert `frame` to 48 kHz mono s16 and play or store it."""
        for mono in self._resampler.resample(frame):
            self._write_mono(mono)
        self.frames_written += 1

    @abstractmethod
    def _write_mono(self, frame: av.AudioFrame) -> None:
        """Play or store one 48 kHz mono s16 frame."""

    def close(self) -> None:  # noqa: B027 - optional hook, `NullSink` holds nothing
        """Flush and release the file or device."""

    @staticmethod
    def from_spec(spec: AudioSpec) -> AudioSink:
        """Open the sink an `AudioSpec` (from `AgentConfig.audio_sink`) describes."""
        if spec.kind == "null":
            return NullSink()
        if spec.kind == "raw":
            return RawFileSink(spec.target)
        if spec.kind in ("alsa", "pulse"):
            return DeviceSink(spec.target, spec.kind)
        raise AudioError(f"{spec.kind!r} is not an audio sink")


class NullSink(AudioSink):
    """Discards the audio (counts the frames)."""

    def write(self, frame: av.AudioFrame) -> None:
        self.frames_written += 1  # no conversion: nothing is kept

    def _write_mono(self, frame: av.AudioFrame) -> None:
        pass


class RawFileSink(AudioSink):
    """Appends headerless s16le 48 kHz mono PCM to a file, flushed after every frame."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        try:
            self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise AudioError(f"cannot open {path!r} for TX audio: {exc.strerror}") from exc

    def _write_mono(self, frame: av.AudioFrame) -> None:
        self._file.write(frame_pcm(frame))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class DeviceSink(AudioSink):
    """Best effort: plays through an FFmpeg output device, e.g. ALSA `hw:1,0`.

    `write()` blocks while the device buffer is full: call it off the event loop.
    """

    live = True

    def __init__(self, device: str, output_format: str) -> None:
        super().__init__()
        self.device = device
        self.output_format = output_format
        try:
            self._container = av.open(device, mode="w", format=output_format)
            self._stream = self._container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise AudioError(f"cannot open {output_format} device {device!r}: {exc}") from exc
        self._pts = 0

    def _write_mono(self, frame: av.AudioFrame) -> None:
        frame.pts = self._pts
        self._pts += frame.samples
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as exc:
            raise AudioError(f"{self.output_format} device {self.device!r}: {exc}") from exc

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except av.FFmpegError as exc:
            logger.warning("%s device %r: flush failed: %s", self.output_format, self.device, exc)
        self._container.close()
