"""Headerless PCM as the board agent's `raw:PATH` audio sink writes it: s16le, 48 kHz, mono."""

from __future__ import annotations

import math
from array import array
from typing import Final

SAMPLE_RATE: Final = 48_000
#: One 20 ms frame, the unit both Opus and the checks count in.
FRAME_SAMPLES: Final = SAMPLE_RATE // 50
BYTES_PER_SAMPLE: Final = 2


def frame_rms(pcm: bytes, frame_samples: int = FRAME_SAMPLES) -> list[float]:
    """The RMS (full scale 32768) of each whole `frame_samples` frame of s16le mono `pcm`; a
    trailing partial frame is left out."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) // BYTES_PER_SAMPLE * BYTES_PER_SAMPLE])
    levels = []
    for offset in range(0, len(samples) - frame_samples + 1, frame_samples):
        chunk = samples[offset : offset + frame_samples]
        levels.append(math.sqrt(sum(s * s for s in chunk) / frame_samples))
    return levels
