"""The operator's voice arriving at the station (issue 9), read from the station's own sink.

`console_check.py` starts the demo with `--audio-sink raw:<data dir>/tx.raw`: the board agent
appends what it plays into the rig's audio input there, headerless s16le 48 kHz mono, only
while the rig is keyed (frames that arrive unkeyed are dropped, nothing is written for them).
`tx_audio_window` wraps the walk's PTT hold (`check_transmitting`, Chromium's fake microphone):

1. a listen-only window (`LISTEN_WINDOW_S`) before the press: the page is connected with its
   microphone, nobody is keyed; what the file gains there must hold nothing loud;
2. the hold itself: from the file's size before the press to its size after the release (and
   the page seeing the station's `status.ptt` false), the 20 ms frames written and how many of
   them are above `LOUD_RMS`.

Chromium's fake microphone is silence with a beep every 500 ms. Measured here at the station's
sink (Chromium 156, through Opus and the agent's decoder): each beep's first 20 ms frame has an
RMS of ~14,500 (full scale 32768), the next three decay (~4,700, ~1,000, ~450), everything else
is below ~260; a 1.5 s hold carried 3 beeps, 500 ms apart. So a frame counts as loud above
`LOUD_RMS` 2,000 (two per beep, far above the decay tail and Opus comfort noise) and a beep
starts at a loud frame after a quiet one: a ~1.5 s hold carries two or three, a muted or absent
microphone (silence still flowing as packets) none. The figures go in `result["tx_audio"]`;
`test_console_txaudio.py` judges them. This module does not import `console_check` (it
imports this one).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from tests.support.raw_audio import BYTES_PER_SAMPLE, FRAME_SAMPLES, SAMPLE_RATE, frame_rms

#: The sink file's name in the check's data directory.
TX_AUDIO_NAME: Final = "tx.raw"
#: Listen-only, connected, before the press.
LISTEN_WINDOW_S: Final = 1.0
#: A 20 ms frame is "loud" above this RMS (full scale 32768): a beep's first two frames (~14,500
#: and ~4,700), not its decay tail (below ~1,000) nor silence/comfort noise (0 to a few units).
LOUD_RMS: Final = 2_000.0
#: Chromium's fake microphone beeps this often (media/audio/fake_audio_input_stream.cc).
BEEP_PERIOD_S: Final = 0.5


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1  # the agent never opened it: the sink is not the file


def _at(frame: int) -> float:
    return round(frame * FRAME_SAMPLES / SAMPLE_RATE, 2)


def analyse(pcm: bytes) -> dict[str, Any]:
    """What a stretch of the sink file holds, in 20 ms frames."""
    levels = frame_rms(pcm)
    loud = [index for index, level in enumerate(levels) if level > LOUD_RMS]
    return {
        "bytes": len(pcm),
        "seconds": round(len(pcm) / BYTES_PER_SAMPLE / SAMPLE_RATE, 3),
        "frames": len(levels),
        "loud_frames": len(loud),
        "max_rms": round(max(levels), 1) if levels else None,
        "loud_frame_times_s": [_at(index) for index in loud],
        # a beep starts at a loud frame after a quiet one
        "beep_onsets_s": [_at(index) for index in loud if index == 0 or index - 1 not in loud],
        # how loud a beep is, and how loud the rest is
        "loud_rms": [round(levels[index]) for index in loud],
        "quiet_max_rms": round(max((v for v in levels if v <= LOUD_RMS), default=0.0), 1),
    }


@contextlib.contextmanager
def tx_audio_window(path: Path, result: dict[str, Any]) -> Iterator[None]:
    """Measures the sink file around the PTT hold run inside the `with`; fills
    `result["tx_audio"]` (also when the hold fails part way)."""
    part: dict[str, Any] = {"path_name": path.name, "listen_window_s": LISTEN_WINDOW_S}
    result["tx_audio"] = part
    part["bytes_before_listen"] = listen_from = _size(path)
    time.sleep(LISTEN_WINDOW_S)
    part["bytes_before_press"] = press_from = _size(path)
    try:
        yield
    finally:
        part["bytes_after_release"] = released_at = _size(path)
        if min(listen_from, press_from, released_at) >= 0:
            data = path.read_bytes()
            part["listen"] = analyse(data[listen_from:press_from])
            part["keyed"] = analyse(data[press_from:released_at])
