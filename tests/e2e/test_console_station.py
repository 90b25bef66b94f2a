"""The station panel and transmit side in real Chromium (issue 9), read back from the rig.

Judges the `station` part of the one `console_check.py` run (the `report` fixture in
conftest.py; the steps are tests/e2e/station_steps.py): wheel, arrow-key and band-button tuning
change the frequency of the demo's Hamlib dummy rig as its own rigctld reports it, and the page
follows the rig tuned at the rig itself; a wheel burst
is coalesced; mode buttons set its mode; the S-meter bar follows the status on its S-unit scale;
the microphone meter moves before keying; holding PTT keys the rig and the TX clock counts;
latching PTT asks first; touch PTT keys and slides off; an insecure origin says why it cannot
transmit. The screenshot on the air lands in build/test-artifacts/console-station-tx.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from radiocore.demo import DEMO_CALLSIGN
from tests.e2e.station_steps import AT_THE_RIG_HZ, BURST_NOTCHES, s_meter_fraction

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

# the bar's fill is measured in CSS pixels: within a pixel or so of a ~26 rem track
FRACTION_TOLERANCE = 0.02


def format_frequency(hz: int) -> str:
    return f"{hz // 1_000_000}.{hz // 1000 % 1000:03d}.{hz % 1000:03d} MHz"


@pytest.fixture(scope="module")
def station(report: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] | None = report.get("station")
    assert part is not None, f"the station steps did not run: {report.get('failure')}"
    assert part["rigctld_port"] is not None, "the demo runs no rigctld: install libhamlib-utils"
    return part


def _completed(station: dict[str, Any], key: str) -> dict[str, Any]:
    part: dict[str, Any] | None = station.get(key)
    assert part is not None, f"the station steps stopped before {key}: {station['failure']}"
    return part


def test_wheel_tunes_the_rig_showing_the_target_at_once(station: dict[str, Any]) -> None:
    dial = _completed(station, "dial")
    assert dial["stored_step"] == "1000"
    assert dial["first_notch_text"] == format_frequency(dial["start"] + 1000 - dial["start"] % 1000)
    assert dial["wheel_rig"] == dial["wheel_target"]
    assert dial["wheel_view"]["freq_text"] == format_frequency(dial["wheel_target"])
    assert dial["page_scrolled"] is False, "the wheel over the dial scrolled the page"


def test_a_wheel_burst_is_coalesced(station: dict[str, Any]) -> None:
    dial = _completed(station, "dial")
    assert dial["burst_rig"] == dial["burst_target"]
    sent = dial["burst_sent"]
    assert sent, "no freq message went out"
    assert sent[-1] == dial["burst_target"], "the last value sent is not the final one"
    assert len(sent) < BURST_NOTCHES, f"{len(sent)} freq messages for {BURST_NOTCHES} notches"


def test_arrow_keys_tune_the_focused_dial_and_the_step_is_remembered(
    station: dict[str, Any],
) -> None:
    dial = _completed(station, "dial")
    assert dial["stored_step_after"] == "100"
    up, page_down = dial["key_targets"]
    assert page_down == up - 1000, "PageDown is ten 100 Hz steps"
    assert (dial["key_up_rig"], dial["key_page_rig"]) == (up, page_down)
    assert dial["key_view"]["freq_text"] == format_frequency(page_down)


def test_band_buttons_tune_into_the_band_and_follow_the_rig_ranges(
    station: dict[str, Any],
) -> None:
    dial = _completed(station, "dial")
    assert "40m" in dial["bands"] and "20m" in dial["bands"]
    assert 7_000_000 <= dial["band_40m_rig"] <= 7_300_000
    assert 14_000_000 <= dial["band_20m_rig"] <= 14_350_000
    assert dial["band_20m_view"]["band_pressed"] == ["20m"]
    assert dial["band_20m_view"]["freq_text"] == format_frequency(dial["band_20m_rig"])
    # a station that reaches only 1.8-29.7 MHz is offered no 6 m, 2 m or 70 cm
    narrow = dial["narrow_bands"]
    assert narrow[0] == "160m" and narrow[-1] == "10m", narrow
    assert not {"6m", "2m", "70cm"} & set(narrow)
    assert dial["bands_restored"] == dial["bands"]


def test_the_page_follows_the_rig_tuned_at_the_rig(station: dict[str, Any]) -> None:
    dial = _completed(station, "dial")
    view = dial["at_the_rig_view"]
    assert view["freq_text"] == format_frequency(AT_THE_RIG_HZ)
    assert view["band_pressed"] == ["40m"]


def test_mode_buttons_set_the_rig_mode(station: dict[str, Any]) -> None:
    dial = _completed(station, "dial")
    assert dial["rig_mode"] == dial["mode"]
    assert dial["mode_view"]["mode_pressed"] == [dial["mode"]]
    assert dial["mode"] in dial["mode_view"]["modes"]


def test_s_meter_bar_follows_the_status_in_s_units(station: dict[str, Any]) -> None:
    meter = _completed(station, "s_meter")
    real = meter["real"]
    assert abs(real["smeter_fraction"] - meter["real_expected"]) <= FRACTION_TOLERANCE
    readings = meter["readings"]
    assert readings["-53"]["text"] == "S9+20 dB (-53 dBm)"
    assert readings["-109"]["text"] == "S3 (-109 dBm)"
    assert readings["-73"]["text"] == "S9 (-73 dBm)"
    for dbm, reading in readings.items():
        assert abs(reading["fraction"] - s_meter_fraction(float(dbm))) <= FRACTION_TOLERANCE, dbm
    assert readings["-73"]["fraction"] == pytest.approx(0.6, abs=FRACTION_TOLERANCE)
    assert meter["ticks"] == ["S1", "S3", "S5", "S7", "S9", "+20", "+40"]


def test_microphone_meter_moves_before_keying(station: dict[str, Any]) -> None:
    ptt = _completed(station, "ptt")
    idle = ptt["idle_view"]
    assert idle["ptt"] is False
    assert idle["mic_level_shown"] is True
    assert ptt["mic_levels_max"] > 0, "the microphone meter stays at zero"


def test_holding_ptt_keys_the_rig_and_the_clock_counts(station: dict[str, Any]) -> None:
    ptt = _completed(station, "ptt")
    assert ptt["rig_ptt_before"] == 0
    assert ptt["rig_ptt_held"] == 1, "rigctld does not report PTT while held"
    assert ptt["floor"] == DEMO_CALLSIGN
    keyed = ptt["keyed_view"]
    assert keyed["ptt_text"] == "ON AIR"
    assert keyed["tx_clock_shown"] is True
    assert ptt["clock_later"].startswith("On air 0:0")
    if "time-out in" in ptt["clock_later"]:  # the server said its limit (`floor.tx_limit_s`)
        assert ptt["clock_later"].endswith(("2:59", "2:58", "2:57", "2:56", "2:55"))
    assert ptt["rig_ptt_released"] == 0
    released = ptt["released_view"]
    assert released["tx_clock"].startswith("Last transmission 0:0")


def test_latching_ptt_asks_first_and_the_next_press_unkeys(station: dict[str, Any]) -> None:
    latch = _completed(station, "latching")
    assert "confirm" in latch["hint"]
    assert latch["asked_view"]["confirm_shown"] is True
    assert latch["asked_view"]["ptt"] is False, "keyed before the confirmation"
    assert latch["cancelled_view"]["confirm_shown"] is False
    assert latch["rig_ptt_cancelled"] == 0
    assert latch["rig_ptt_latched"] == 1
    assert latch["latched_view"]["ptt"] is True, "a latched PTT dropped without a hand on it"
    assert latch["latched_view"]["ptt_text"] == "ON AIR"
    assert Path(latch["screenshot"]).stat().st_size > 0
    assert latch["rig_ptt_unlatched"] == 0
    assert latch["unlatched_view"]["ptt_log"][-2:] == ["on:pressed", "off:unlatched"]


def test_floor_busy_names_who_transmits(station: dict[str, Any]) -> None:
    assert "DL9XYZ is transmitting" in station["floor_busy_notice"]


def test_touch_ptt_keys_and_sliding_off_unkeys(station: dict[str, Any]) -> None:
    touch = _completed(station, "touch")
    assert touch["held_view"]["ptt"] is True
    assert touch["lifted_view"]["ptt_log"][-2:] == ["on:pressed", "off:pointerup"]
    assert touch["slid_view"]["ptt_log"][-1] == "off:pointerleave"
    assert abs(touch["ptt_moved_by"]) <= 1, (
        f"the PTT button moved {touch['ptt_moved_by']} px under the finger "
        f"(page scrolled {touch['scrolled_by']} px)"
    )
    assert touch["selection"] == "", "the finger on PTT selected text"
    assert touch["after_view"]["ptt"] is False
    assert touch["page_errors"] == []


def test_insecure_origin_says_why_it_cannot_transmit(station: dict[str, Any]) -> None:
    insecure = _completed(station, "insecure")
    assert "skipped" not in insecure, insecure.get("skipped")
    view = insecure["view"]
    assert view["secure_context"] is False
    assert view["insecure_shown"] is True
    assert insecure["url"].rstrip("/") in view["insecure_text"]
    assert "HTTPS" in view["insecure_text"]
    assert "localhost" in view["insecure_text"]


def test_station_steps_completed(station: dict[str, Any]) -> None:
    assert station["failure"] is None
