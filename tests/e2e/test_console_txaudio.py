"""Holding PTT keys the rig and sends the fake microphone's audio to the agent (issue 9).

Judges the `tx_audio` part of the one `console_check.py` run (the `report` fixture in
conftest.py; the measuring is tests/e2e/txaudio_steps.py): the demo's station writes the TX
audio it plays into the rig to a raw file; while the operator only listens nothing loud reaches
it, and the ~1.5 s PTT hold with Chromium's fake microphone (a beep every 500 ms) puts those
beeps there, at their own spacing, and no more audio than the hold lasted.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.e2e.txaudio_steps import BEEP_PERIOD_S, LOUD_RMS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

#: A ~1.5 s hold spans two or three beeps (one may fall in the first frames, before the
#: station keyed).
MIN_BEEPS = 2
#: Where a beep falls may move by a frame or two (a packet the jitter buffer skipped).
BEEP_SPACING_TOLERANCE_S = 0.1
#: The station unkeys a little after the page saw the release; no audio beyond that.
AFTER_RELEASE_MARGIN_S = 0.5


@pytest.fixture(scope="module")
def tx_audio(report: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] | None = report.get("tx_audio")
    assert part is not None, f"the TX audio steps did not run: {report.get('failure')}"
    assert part["bytes_before_listen"] >= 0, "the demo's station did not open its raw audio sink"
    assert "keyed" in part, f"the PTT hold did not complete: {report.get('failure')}"
    return part


def test_nothing_loud_reaches_the_rig_while_only_listening(tx_audio: dict[str, Any]) -> None:
    listen = tx_audio["listen"]
    assert tx_audio["bytes_before_listen"] == 0, "TX audio was written before anyone keyed"
    assert listen["loud_frames"] == 0, f"loud TX audio while unkeyed: {listen}"


def test_holding_ptt_sends_the_microphone_beeps_to_the_station(
    tx_audio: dict[str, Any], report: dict[str, Any]
) -> None:
    keyed = tx_audio["keyed"]
    assert keyed["frames"] > 0, "the station wrote no TX audio while PTT was held"
    onsets = keyed["beep_onsets_s"]
    assert len(onsets) >= MIN_BEEPS, (
        f"{len(onsets)} beeps above RMS {LOUD_RMS} in {keyed['seconds']} s of TX audio "
        f"(loudest frame {keyed['max_rms']}): the voice did not arrive; the page sent "
        f"{report['ptt_hold']['keyed_outbound']}"
    )
    for earlier, later in itertools.pairwise(onsets):
        assert abs(later - earlier - BEEP_PERIOD_S) <= BEEP_SPACING_TOLERANCE_S, (
            f"beeps at {onsets} s are not {BEEP_PERIOD_S} s apart: the audio is garbled"
        )


def test_no_more_audio_than_the_hold(tx_audio: dict[str, Any], report: dict[str, Any]) -> None:
    hold = report["ptt_hold"]
    keyed_for = hold["held_s"] + hold["status_ptt_false_s"]
    assert tx_audio["keyed"]["seconds"] <= keyed_for + AFTER_RELEASE_MARGIN_S, (
        f"{tx_audio['keyed']['seconds']} s of TX audio for a {keyed_for} s hold"
    )
