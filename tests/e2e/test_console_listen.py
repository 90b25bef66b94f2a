"""The listening panel in real Chromium (issue 9): what the operator hears and sees.

Judges the `listen` part of the one `console_check.py` run (the `report` fixture in conftest.py):
the spectrum/waterfall draws the demo's ~1 kHz tone, the RX meter moves, the link line shows
figures, mute and unmute act on the `<audio>` element (and are remembered), the volume slider
works from the keyboard, the dark theme darkens the page, and at phone width the station card
stacks with finger-sized controls. Screenshots land in build/test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

DEMO_TONE_HZ = 1_000
SPECTRUM_MAX_HZ = 4_000
PHONE_WIDTH = 390
MIN_TARGET_PX = 44
DEFAULT_VOLUME = 0.8
VOLUME_STEP = 0.01


def _rgb(css: str) -> tuple[int, int, int]:
    match = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert match, f"not an rgb() colour: {css!r}"
    red, green, blue = (int(part) for part in match.groups())
    return red, green, blue


def _luminance(css: str) -> float:
    """Relative luminance (WCAG) of an rgb() colour, 0 (black) .. 1 (white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in _rgb(css))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture(scope="module")
def listen(report: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] = report["listen"]
    return part


def test_waterfall_shows_the_received_tone(listen: dict[str, Any]) -> None:
    drawn = listen["drawn"]
    assert drawn["lit_pixels"] > 0, f"the waterfall is blank: {drawn}"
    # the tone is where 1 kHz is on a 0-4 kHz axis (give or take a few columns)
    width = drawn["canvas_width"]
    tone_column = DEMO_TONE_HZ / SPECTRUM_MAX_HZ * width
    near = [c for c in drawn["lit_columns"] if abs(c - tone_column) <= width * 0.03]
    assert near, f"nothing lit near {DEMO_TONE_HZ} Hz: columns {drawn['lit_columns'][:40]}"


def test_rx_meter_moves_above_its_floor(listen: dict[str, Any]) -> None:
    drawn = listen["drawn"]
    assert drawn["meter"] > drawn["meter_min"], drawn
    assert re.fullmatch(r"-?\d+ dBFS", drawn["level_text"]), drawn["level_text"]


def test_link_line_shows_numbers(listen: dict[str, Any]) -> None:
    panel = listen["with_figures"]
    text = panel["link_text"]
    assert "NaN" not in text and "undefined" not in text, text
    items = {item["key"]: item["text"] for item in panel["link_items"]}
    assert re.fullmatch(r"RTT \d+ ms", items["rtt"]), items
    assert re.fullmatch(r"jitter \d+ ms", items["jitter"]), items
    assert re.fullmatch(r"loss (\d+(\.\d)? %|—)", items["loss"]), items
    assert re.fullmatch(r"audio delay ~\d+ ms", items["delay"]), items
    # on loopback the link is good
    assert panel["link_level"] == "ok", panel


def test_audio_plays_without_the_bare_player(listen: dict[str, Any]) -> None:
    drawn = listen["drawn"]
    assert drawn["paused"] is False
    assert drawn["audio_controls"] is False
    assert drawn["audio_visible"] is False


def test_mute_mutes_the_element_and_unmute_restores(listen: dict[str, Any]) -> None:
    muted = listen["muted"]
    assert muted["muted"] is True
    assert (muted["mute_pressed"], muted["mute_text"]) == ("true", "Unmute")
    assert json.loads(muted["stored_audio"])["muted"] is True
    unmuted = listen["unmuted"]
    assert unmuted["muted"] is False
    assert (unmuted["mute_pressed"], unmuted["mute_text"]) == ("false", "Mute")
    assert json.loads(unmuted["stored_audio"])["muted"] is False
    assert unmuted["paused"] is False
    assert listen["audio_level_unmuted"] > 0, "no sound after unmuting"


def test_volume_slider_works_from_the_keyboard(listen: dict[str, Any]) -> None:
    down = listen["volume_down"]
    assert down["volume"] == pytest.approx(DEFAULT_VOLUME - 3 * VOLUME_STEP)
    assert down["volume_value"] == "77"
    assert json.loads(down["stored_audio"])["volume"] == 77
    assert listen["volume_back"] == pytest.approx(DEFAULT_VOLUME)


def test_keyboard_focus_is_visible_on_the_listening_controls(listen: dict[str, Any]) -> None:
    for key in ("mute_focus", "volume_focus"):
        focus = listen[key]
        assert focus["focused"] is True and focus["focus_visible"] is True, (key, focus)
        assert focus["outline_style"] != "none" and focus["outline_width"] >= 2, (key, focus)


def test_dark_theme_applies_and_is_remembered(listen: dict[str, Any]) -> None:
    light, dark = listen["light"], listen["dark"]
    assert light["theme"] == "light" and light["toggle_pressed"] == "false"
    assert _luminance(light["body_background"]) > 0.7, light
    assert dark["theme"] == "dark" and dark["toggle_pressed"] == "true"
    assert dark["stored"] == "dark"
    assert _luminance(dark["body_background"]) < 0.05, dark
    assert _luminance(dark["card_background"]) < 0.05, dark
    assert _contrast(dark["body_color"], dark["body_background"]) >= 7, dark
    back = listen["light_again"]
    assert back["theme"] == "light" and back["stored"] == "light"


def test_phone_width_stacks_with_finger_sized_controls(listen: dict[str, Any]) -> None:
    phone = listen["phone"]
    assert phone["viewport_width"] == PHONE_WIDTH
    assert phone["scroll_width"] <= PHONE_WIDTH, "the page scrolls sideways on a phone"
    assert phone["small_controls"] == [], f"controls under {MIN_TARGET_PX} px"
    assert phone["controls"], "no controls measured"
    assert phone["stacked_controls"] is True
    assert phone["station_below_boards"] is True
    assert phone["waterfall_width"] <= PHONE_WIDTH


def test_screenshots_are_taken(listen: dict[str, Any]) -> None:
    for shot in listen["screenshots"]:
        assert Path(shot).stat().st_size > 0, shot
