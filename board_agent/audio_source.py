"""The receiver's audio (RX) as 20 ms frames of 48 kHz mono s16: 960 samples per `av.AudioFrame`.

Four sources behind one interface: `ToneSource` (a simulated receiver), `ClickSource` (a latency
test signal: clicks at known wall-clock instants), `FileSource` (any file PyAV decodes, looped)
and `DeviceSource` (a capture device: ALSA, PulseAudio when PyAV's FFmpeg has it).
`ResilientSource` wraps one of them for a session: when it fails mid-session (a USB sound card
unplugged, a device error) the stream goes on with silence while the source is reopened, so the
station keeps its session, its control and its PTT.
The runtime needs no numpy: a Raspberry Pi install stays small.
"""

from __future__ import annotations

import logging
import math
import random
import time
from abc import ABC, abstractmethod
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Final

import av
import av.container

from .config import AudioSpec
from .errors import AudioError

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final = 48000
SAMPLES_PER_FRAME: Final = 960
FRAME_DURATION_S: Final = SAMPLES_PER_FRAME / SAMPLE_RATE
TIME_BASE: Final = Fraction(1, SAMPLE_RATE)
BYTES_PER_FRAME: Final = SAMPLES_PER_FRAME * 2  # s16 mono

_AUDIO_DEVICES: Final = ("alsa", "pulse", "oss", "jack")


def pcm_frame(pcm: bytes, pts: int) -> av.AudioFrame:
    """A 48 kHz mono s16 frame holding `pcm` (exactly `BYTES_PER_FRAME` bytes)."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def frame_pcm(frame: av.AudioFrame) -> bytes:
    """The samples of a packed (interleaved) frame, without the plane's alignment padding."""
    size = frame.samples * len(frame.layout.channels) * frame.format.bytes
    return bytes(frame.planes[0])[:size]


class AudioSource(ABC):
    """Produces consecutive 20 ms frames: 960 samples, s16, mono, 48 kHz, pts in samples."""

    #: True when `read()` blocks until the device has captured the frame: the device's clock
    #: paces the stream, so the reader must not add its own pacing (and should read off the
    #: event loop). False for sources that produce a frame at once.
    live: bool = False

    @abstractmethod
    def read(self) -> av.AudioFrame:
        """The next frame; raises `AudioError` if the source failed or ended for good."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release the file or device; `read()` must not be called afterwards."""

    @staticmethod
    def from_spec(spec: AudioSpec) -> AudioSource:
        """Open the source an `AudioSpec` (from `AgentConfig.audio_source`) describes."""
        if spec.kind == "tone":
            return ToneSource(frequency_hz=spec.tone_hz)
        if spec.kind == "clicks":
            return ClickSource(period_ms=spec.click_period_ms, log_path=spec.click_log)
        if spec.kind == "file":
            return FileSource(spec.target)
        if spec.kind in ("alsa", "pulse", "lavfi"):
            return DeviceSource(spec.target, spec.kind)
        raise AudioError(f"{spec.kind!r} is not an audio source")


class ToneSource(AudioSource):
    """A simulated receiver: a steady sine tone plus a little white noise.

    One second of signal is computed up front and played in a loop, so each frame costs a copy.
    A whole-hertz frequency fits a whole number of cycles into that second, so the loop is
    seamless.
    """

    def __init__(
        self,
        frequency_hz: int = 1000,
        *,
        amplitude: float = 0.3,
        noise_amplitude: float = 0.01,
        seed: int = 0,
    ) -> None:
        if not 0 < frequency_hz < SAMPLE_RATE // 2:
            raise AudioError(f"tone frequency {frequency_hz} Hz is outside 1 … 23999 Hz")
        if not 0 <= amplitude + noise_amplitude <= 1:
            raise AudioError("tone amplitude plus noise must stay within full scale (0 … 1)")
        self.frequency_hz = frequency_hz
        rng = random.Random(seed)
        step = 2 * math.pi * frequency_hz / SAMPLE_RATE
        samples = array(
            "h",
            (
                round(
                    32767
                    * (amplitude * math.sin(step * n) + noise_amplitude * rng.uniform(-1.0, 1.0))
                )
                for n in range(SAMPLE_RATE)
            ),
        )
        self._table = samples.tobytes()
        self._offset = 0
        self._pts = 0

    def read(self) -> av.AudioFrame:
        start = self._offset
        pcm = self._table[start : start + BYTES_PER_FRAME]
        self._offset = (start + BYTES_PER_FRAME) % len(self._table)
        frame = pcm_frame(pcm, self._pts)
        self._pts += SAMPLES_PER_FRAME
        return frame


class ClickSource(AudioSource):
    """Silence with a short loud burst (a click) at wall-clock instants: every `period_ms`,
    aligned to `time.time()` (at 500 ms: each whole and half second), so a receiver on the same
    machine can time each click's arrival against its own clock.

    The emit instant is taken where the agent hands the frame to the encoder: `read()` is called
    by the Opus track right before encoding, and a frame read at `t` carries the samples that
    play from `t` to `t` + 20 ms, so a click due at `c` inside that span starts at sample
    `(c - t)` x 48000 and was emitted at `c`. A click whose instant fell between two reads (the
    event loop was late) starts at the next frame's first sample and was emitted at that read's
    `t`; one more than `MAX_LATE_S` overdue is skipped. `emitted` keeps the last clicks as
    (nominal instant, emitted) pairs; with `log_path` each click is also appended there as one
    line, `<nominal> <emitted>` in seconds since the epoch.
    """

    #: A click this much overdue (the source was not read for that long) is skipped.
    MAX_LATE_S: Final = 0.1

    def __init__(
        self,
        period_ms: int = 500,
        *,
        burst_ms: float = 10.0,
        burst_hz: int = 1000,
        amplitude: float = 0.8,
        log_path: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if period_ms < 2 * burst_ms:
            raise AudioError(f"a click period of {period_ms} ms is too short for the bursts")
        if not 0 < amplitude <= 1:
            raise AudioError("the click amplitude must be within full scale (0 … 1]")
        self.period_ms = period_ms
        count = round(burst_ms * SAMPLE_RATE / 1000)
        step = 2 * math.pi * burst_hz / SAMPLE_RATE
        # a cosine: the burst's first sample is already at full amplitude
        self._burst = array(
            "h", (round(32767 * amplitude * math.cos(step * n)) for n in range(count))
        )
        self._burst_rest = 0  # samples of the current burst still to write, in the next frame
        self._clock = clock
        self._next: int | None = None  # the next click's number: due at number x period
        self._pts = 0
        self._log: IO[str] | None = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self.emitted: deque[tuple[float, float]] = deque(maxlen=10_000)
        self.skipped = 0

    def read(self) -> av.AudioFrame:
        now = self._clock()
        samples = array("h", bytes(BYTES_PER_FRAME))
        if self._burst_rest:
            done = len(self._burst) - self._burst_rest
            part = self._burst[done : done + SAMPLES_PER_FRAME]
            samples[: len(part)] = part
            self._burst_rest -= len(part)
        if self._next is None:
            self._next = math.ceil(now * 1000 / self.period_ms)
        while self._due(self._next) < now - self.MAX_LATE_S:
            self._next += 1
            self.skipped += 1
        while (due := self._due(self._next)) < now + FRAME_DURATION_S:
            offset = max(0, math.floor((due - now) * SAMPLE_RATE))
            emitted = now + offset / SAMPLE_RATE if offset else max(now, due)
            part = self._burst[: SAMPLES_PER_FRAME - offset]
            samples[offset : offset + len(part)] = part
            self._burst_rest = len(self._burst) - len(part)
            self._record(due, emitted)
            self._next += 1
        frame = pcm_frame(samples.tobytes(), self._pts)
        self._pts += SAMPLES_PER_FRAME
        return frame

    def _due(self, number: int) -> float:
        return number * self.period_ms / 1000

    def _record(self, nominal: float, emitted: float) -> None:
        self.emitted.append((nominal, emitted))
        if self._log is not None:
            self._log.write(f"{nominal:.6f} {emitted:.6f}\n")

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class _DecodingSource(AudioSource):
    """Decode with PyAV, resample to 48 kHz mono s16, cut into 960-sample frames."""

    def __init__(self) -> None:
        self._container: av.container.InputContainer | None = None
        self._decoded: Iterator[av.AudioFrame] = iter(())
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        # holds at most one decoded frame's worth of samples beyond the frame being cut
        self._pending = bytearray()
        self._pts = 0
        self._closed = False

    @abstractmethod
    def _open_container(self) -> av.container.InputContainer:
        """Open the file or device."""

    @abstractmethod
    def _on_end(self) -> None:
        """The stream ended: reopen it (loop) or raise `AudioError`."""

    def _start(self) -> None:
        container = self._open_container()
        if not container.streams.audio:
            container.close()
            raise AudioError(f"{self._describe()} has no audio stream")
        self._container = container
        self._decoded = container.decode(container.streams.audio[0])
        # a fresh resampler per opening: decoded timestamps restart when a file loops
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def _stop(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._decoded = iter(())

    def _describe(self) -> str:
        return type(self).__name__

    def read(self) -> av.AudioFrame:
        if self._closed:
            raise AudioError(f"{self._describe()} is closed")
        while len(self._pending) < BYTES_PER_FRAME:
            if self._container is None:
                self._start()
            try:
                decoded = next(self._decoded, None)
            except av.FFmpegError as exc:
                raise AudioError(f"{self._describe()}: decoding failed: {exc}") from exc
            if decoded is None:
                self._stop()
                self._on_end()
                continue
            for frame in self._resampler.resample(decoded):
                self._pending += frame_pcm(frame)
        pcm = bytes(self._pending[:BYTES_PER_FRAME])
        del self._pending[:BYTES_PER_FRAME]
        frame = pcm_frame(pcm, self._pts)
        self._pts += SAMPLES_PER_FRAME
        return frame

    def close(self) -> None:
        self._closed = True
        self._stop()


class FileSource(_DecodingSource):
    """Any audio file PyAV can decode, resampled to 48 kHz mono and looped at its end."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._samples_this_pass = 0
        self._start()  # fail now, at start-up, rather than on the first frame

    def _describe(self) -> str:
        return f"audio file {self.path!r}"

    def _open_container(self) -> av.container.InputContainer:
        try:
            return av.open(self.path, mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise AudioError(f"cannot open {self._describe()}: {exc}") from exc

    def read(self) -> av.AudioFrame:
        frame = super().read()
        self._samples_this_pass += frame.samples
        return frame

    def _on_end(self) -> None:
        if self._samples_this_pass == 0 and not self._pending:
            raise AudioError(f"{self._describe()} holds no audio samples")
        logger.debug("%s: looping", self._describe())
        self._samples_this_pass = 0


class DeviceSource(_DecodingSource):
    """A capture device opened through FFmpeg's input devices, e.g. ALSA `hw:1,0`.

    `read()` blocks until the device has captured 20 ms: call it off the event loop.
    """

    live = True

    def __init__(self, device: str, input_format: str) -> None:
        super().__init__()
        if input_format not in av.formats_available:
            devices = sorted(f for f in _AUDIO_DEVICES if f in av.formats_available)
            raise AudioError(
                f"this PyAV build has no {input_format!r} input device "
                f"(audio devices it has: {', '.join(devices) or 'none'})"
            )
        self.device = device
        self.input_format = input_format
        self._start()

    def _describe(self) -> str:
        return f"{self.input_format} device {self.device!r}"

    def _open_container(self) -> av.container.InputContainer:
        # ask for the native format so no resampling is needed when the device can do it
        options = (
            {"sample_rate": str(SAMPLE_RATE), "channels": "1"}
            if self.input_format in ("alsa", "pulse")
            else {}
        )
        try:
            return av.open(self.device, mode="r", format=self.input_format, options=options)
        except (av.FFmpegError, OSError) as exc:
            raise AudioError(f"cannot open {self._describe()}: {exc}") from exc

    def _on_end(self) -> None:
        raise AudioError(f"{self._describe()} stopped delivering audio")


@dataclass
class AudioState:
    """The RX audio's health over every session (the agent's /health and /metrics).

    Written by `ResilientSource` (from the capture thread for a live source), read by the agent.
    """

    #: Times an open source failed mid-stream.
    failures: int = 0
    #: Why the RX audio is silent now, in words (None: the source delivers).
    failure: str | None = None


class ResilientSource(AudioSource):
    """The RX stream of one session, kept going through a failing source.

    Opens a source from `factory` at once (an error then is the caller's: the session does not
    start). When a `read()` later raises `AudioError`, the source is closed, the failure logged
    and recorded in `state`, and silence is returned in its place: frames stay consecutive and
    20 ms apart (a live source's silence is paced here, on the capture thread), so the peer
    connection, the control channel and PTT are untouched. Every `retry_s` seconds the source is
    opened anew; once it opens, its audio replaces the silence.
    """

    def __init__(
        self,
        factory: Callable[[], AudioSource],
        *,
        retry_s: float = 2.0,
        state: AudioState | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = factory
        self._retry_s = retry_s
        self.state = state if state is not None else AudioState()
        self._clock = clock
        self._sleep = sleep
        try:
            self._source: AudioSource | None = factory()
        except AudioError as exc:
            self.state.failure = str(exc)
            raise
        self.state.failure = None
        self.live = self._source.live
        self._pts = 0
        self._retry_at = 0.0
        self._silence_due = 0.0

    def read(self) -> av.AudioFrame:
        frame = self._read_source()
        if frame is None:
            frame = self._silence()
        frame.pts = self._pts
        self._pts += SAMPLES_PER_FRAME
        return frame

    def _read_source(self) -> av.AudioFrame | None:
        if self._source is None and self._clock() >= self._retry_at:
            self._reopen()
        if self._source is None:
            return None
        try:
            return self._source.read()
        except AudioError as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: AudioError) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()
        now = self._clock()
        self._retry_at = now + self._retry_s
        self._silence_due = now + FRAME_DURATION_S  # when the device would have delivered it
        self.state.failures += 1
        self.state.failure = str(exc)
        logger.error(
            "RX audio failed: %s; sending silence, reopening the source every %.1f s",
            exc,
            self._retry_s,
        )

    def _reopen(self) -> None:
        try:
            source = self._factory()
        except AudioError as exc:
            self._retry_at = self._clock() + self._retry_s
            if str(exc) != self.state.failure:
                logger.warning("RX audio still failing: %s", exc)
                self.state.failure = str(exc)
            return
        if source.live != self.live:  # the same factory, so not expected: keep the pacing
            source.close()
            self._retry_at = self._clock() + self._retry_s
            logger.error("RX audio: the reopened source is paced differently; not used")
            return
        self._source = source
        self.state.failure = None
        logger.info("RX audio is back")

    def _silence(self) -> av.AudioFrame:
        if self.live:  # the device's clock paced the stream: pace the silence in its place
            now = self._clock()
            if self._silence_due < now - FRAME_DURATION_S:  # late (a slow reopen): no burst
                self._silence_due = now
            if self._silence_due > now:
                self._sleep(self._silence_due - now)
            self._silence_due += FRAME_DURATION_S
        return pcm_frame(bytes(BYTES_PER_FRAME), 0)

    def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()
