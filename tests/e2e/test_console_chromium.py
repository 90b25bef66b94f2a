"""The operator console in headless Chromium, inside a loopback-only network namespace.

One run of `console_check.py` under `unshare -n` (demo server + simulated station + Chromium
with its fake microphone) serves every test here: listening to the station, the sign-in error
for a wrong password, transmitting with push to talk, tuning, the page's safety releases, its
handling of the server's transmit messages, listening with the microphone refused, and all of
it under the console's Content-Security-Policy.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from radiocore.demo import DEMO_CALLSIGN
from tests.support.namespaces import namespace_command

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHECK_SCRIPT = HERE / "console_check.py"
CHROMIUM = Path("/usr/bin/chromium")
WEB_BUNDLE = REPO_ROOT / "web" / "dist" / "console.js"
# Above the script's own bounds (60 s for the demo to be ready, then bounded browser waits;
# a run takes ~15 s here).
RUN_TIMEOUT_S = 150
MIN_PACKET_GROWTH = 50  # ~50 packets/s of 20 ms Opus over a ~2 s window gives ~100
MIN_KEYED_PACKETS = 50  # the microphone's sender over the ~1.5 s hold: ~75
# One keep-alive per 250 ms over a ~1.5 s hold: 6 (timers in a busy page may slip by one).
KEEPALIVES_WHILE_HELD = range(4, 8)
ON_AIR_RED = "rgb(209, 36, 47)"
# The server's dead-man (`floor.deadman_s`, 1 s) measured from the moment status showed TX.
MAX_DEADMAN_S = 2.0


def format_frequency(hz: int) -> str:
    """What the console shows for a frequency: MHz with kHz grouping (14205000 -> 14.205.000)."""
    return f"{hz // 1_000_000}.{hz // 1000 % 1000:03d}.{hz % 1000:03d} MHz"


def _preconditions(extra_tools: tuple[str, ...] = ()) -> tuple[tuple[str, ...] | None, str]:
    """(namespace command, "") when a Chromium check can run, else (None, why not);
    `extra_tools`: commands its script needs besides `unshare` and `ip`."""
    if not CHROMIUM.exists():
        return None, f"{CHROMIUM} is missing (apt-get install chromium)"
    for tool in ("unshare", "ip", *extra_tools):
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not installed (util-linux / iproute2)"
    if importlib.util.find_spec("playwright") is None:
        return None, "the playwright Python package is not installed (pip install -e '.[test]')"
    if not WEB_BUNDLE.exists():
        return None, f"{WEB_BUNDLE.relative_to(REPO_ROOT)} is not built (run `make web`)"
    command, why = namespace_command()
    if command is None:
        return None, f"cannot create a network namespace: {why}"
    return command, ""


# The `report` fixture (one run of console_check.py, shared by the console's test files) is in
# conftest.py.


def test_console_plays_station_audio_and_shows_status(report: dict[str, Any]) -> None:
    growth = report["packets_later"] - report["packets_first"]
    assert growth >= MIN_PACKET_GROWTH, (
        f"inbound audio packets grew by {growth} in {report['packets_window_s']} s"
    )
    assert report["audio_level"] > 0, "the <audio> element plays silence"
    assert report["status_count"] >= 2
    assert int(report["status_count_text"]) >= 2

    station_freq = report["last_status"]["freq"]
    assert report["freq_text"] == format_frequency(station_freq)
    assert re.fullmatch(r"\d+\.\d{3}\.\d{3} MHz", report["freq_text"])
    assert report["mode_text"] == report["last_status"]["mode"]
    assert report["state"] == "connected"
    assert report["audio_element"] == {"paused": False, "muted": False, "hasStream": True}

    assert report["errors"] == [], "the page shows errors"
    assert report["console_errors"] == [], "the page logged errors"
    assert Path(report["rx_screenshot"]).stat().st_size > 0


def test_wrong_password_shows_login_error(report: dict[str, Any]) -> None:
    wrong = report["wrong_password"]
    assert wrong["login_error"], "no error shown for a wrong password"
    assert wrong["last_error"]["code"] == "unauthorized"
    assert wrong["login_form_visible"] is True
    assert wrong["console_visible"] is False
    assert wrong["console_errors"] == [], "unexpected console errors besides the 401"


def test_frequency_format() -> None:
    assert format_frequency(14_205_000) == "14.205.000 MHz"
    assert format_frequency(7_074_000) == "7.074.000 MHz"
    assert format_frequency(144_800_125) == "144.800.125 MHz"


def test_owner_gets_microphone_muted_until_ptt(report: dict[str, Any]) -> None:
    idle = report["tx_view_idle"]
    assert idle["can_transmit"] is True, "the demo user owns the demo station"
    assert idle["transmit_visible"] is True
    assert idle["mic"] == "ready"
    assert idle["direction"] == "sendrecv"
    assert idle["mic_enabled"] is False, "the microphone is live without PTT"
    assert idle["button_disabled"] is False
    assert (idle["button_text"], idle["button_pressed"]) == ("Push to talk", "false")
    # While released the sender sends silence: the fake microphone's beep does not leave.
    released = report["released_outbound"]
    assert released["source_level"] == 0


def test_holding_ptt_keys_the_station_and_sends_voice(report: dict[str, Any]) -> None:
    hold = report["ptt_hold"]
    keyed = hold["keyed_view"]
    assert keyed["ptt"] is True
    assert (keyed["button_text"], keyed["button_pressed"]) == ("ON AIR", "true")
    assert keyed["button_color"] == ON_AIR_RED
    assert keyed["mic_enabled"] is True

    on_air = hold["on_air_view"]
    assert on_air["status_ptt"] is True, "the station's status never showed PTT on"
    assert on_air["tx_badge"] == "TX"
    assert on_air["floor"] == DEMO_CALLSIGN
    assert on_air["floor_text"] == f"{DEMO_CALLSIGN} (you)"
    assert hold["status_ptt_while_held"] is True, "the station unkeyed while PTT was held"
    assert hold["ptt_while_held"] is True
    assert hold["held_s"] >= 1.4

    voice = hold["keyed_outbound"]
    assert voice["packets"] >= MIN_KEYED_PACKETS, f"outbound audio while keyed: {voice}"
    assert voice["source_level"] > 0, "the microphone track is silent while keyed"
    released = report["released_outbound"]
    assert voice["bytes_per_packet"] > released["bytes_per_packet"], (
        f"keyed packets ({voice}) are no bigger than released silence ({released})"
    )
    assert hold["keepalives_while_held"] in KEEPALIVES_WHILE_HELD
    assert Path(report["screenshot"]).stat().st_size > 0


def test_releasing_ptt_unkeys_and_stops_keepalives(report: dict[str, Any]) -> None:
    hold = report["ptt_hold"]
    after = hold["released_view"]
    assert after["ptt"] is False
    assert after["status_ptt"] is False
    assert after["tx_badge"] == "RX"
    assert (after["button_text"], after["button_pressed"]) == ("Push to talk", "false")
    assert after["mic_enabled"] is False
    assert after["floor"] is None
    assert after["floor_text"] == "nobody"
    assert hold["keepalives_after_release"] == 0
    assert after["ptt_log"] == ["on:pressed", "off:pointerup"]


def test_frequency_mode_and_power_reach_the_station(report: dict[str, Any]) -> None:
    tuning = report["tuning"]
    before_khz = f"{tuning['before']['freq'] // 1000}.{tuning['before']['freq'] % 1000:03d}"
    assert tuning["freq_input_before"] == before_khz, "the kHz field mirrors the status"
    assert tuning["freq_text"] == format_frequency(tuning["freq_hz"])
    assert tuning["mode_text"] == tuning["mode"]
    assert tuning["power_text"] == f"{tuning['power']} %"
    assert tuning["after"] == {
        "freq": tuning["freq_hz"],
        "mode": tuning["mode"],
        "power": tuning["power"],
    }
    assert "300000000 kHz" in tuning["refused_error"], "no local refusal of 300 GHz + 1 Hz"
    assert tuning["refused_invalid"] == "true"


def test_frequency_outside_the_rig_is_refused_and_shown(report: dict[str, Any]) -> None:
    refused = report["refused_tuning"]
    assert refused["freq_after"] == refused["freq_before"]
    if refused["local_error"]:  # the station's capabilities reached the page
        assert "2000000.000 kHz" in refused["local_error"]
    else:
        assert refused["last_error"]["code"] == "bad_request"
        assert refused["last_error"]["ref"] == "freq"
        assert len(refused["shown_errors"]) == 1


def test_space_bar_ptt_is_released_on_blur_and_when_hidden(report: dict[str, Any]) -> None:
    safety = report["safety"]
    assert safety["space_keyed"] is True
    assert safety["rig_keyed_by_space"] is not None, "the demo runs no rigctld to read"
    assert safety["rig_keyed_by_space"] is True, "rigctld does not report PTT while held"
    assert safety["rig_keyed_after_blur"] is False, "the rig stayed keyed after the blur"
    assert safety["rig_keyed_after_hidden"] is False, "the rig stayed keyed with the page hidden"
    for key, reason, words in (
        ("blur_view", "blur", "lost focus"),
        ("hidden_view", "hidden", "hidden"),
    ):
        view = safety[key]
        assert view["ptt"] is False, key
        assert view["status_ptt"] is False, f"{key}: the station stayed keyed"
        assert view["last_local_release"] == reason
        assert words in view["tx_notice"]
    assert safety["keepalives_after"] == 0
    assert safety["ptt_after_key_up"] is False, "the key-up after a safety release re-keyed"
    log = report["safety"]["hidden_view"]["ptt_log"]
    assert log[2:] == ["on:pressed", "off:blur", "on:pressed", "off:hidden"]


def test_server_transmit_messages_are_shown(report: dict[str, Any]) -> None:
    seen = report["server_messages"]
    assert seen["mode_options"] == ["USB", "LSB", "CW"]
    assert "1800\u201329700 kHz" in seen["freq_hint"]  # an en dash between the bounds
    assert "1800\u201329700 kHz" in seen["out_of_range_error"]

    assert seen["warning"]["remaining_s"] == 10
    assert seen["warning_text"] == "TX time-out in 10 s"
    assert "10 s" in seen["warning_view"]["tx_notice"]

    released = seen["released_view"]
    assert released["ptt"] is False
    assert released["mic_enabled"] is False
    assert released["tx_notice"] == "Transmission released by the server: owner DL1ABC took over."
    assert seen["last_released"] == {"reason": "override", "by": "DL1ABC"}
    assert seen["warning_hidden"] is True
    assert seen["keepalives_after_release"] == 0
    assert seen["ptt_after_mouse_up"] is False

    other = seen["other_holder_view"]
    # the demo operator owns the station: someone else on the air can be overridden
    assert other["button_disabled"] is False
    assert other["ptt_hint"] == "DL1ABC is transmitting; as the owner you can take over."
    assert other["floor_text"] == "DL1ABC"
    assert seen["floor_free_view"]["button_disabled"] is False

    offline = seen["rig_offline_view"]
    assert offline["rig_offline_shown"] is True
    assert offline["ptt"] is False, "PTT stayed on with the rig offline"
    assert offline["last_local_release"] == "rig_offline"
    assert offline["button_disabled"] is True
    assert offline["tuning_disabled"] is True
    back = seen["rig_back_view"]
    assert back["rig_offline_shown"] is False
    assert back["button_disabled"] is False
    assert back["tuning_disabled"] is False

    assert seen["errors_after"][-1] == "floor_busy: DL1ABC is transmitting (refused: ptt)"


def test_server_deadman_releases_ptt_without_keepalives(report: dict[str, Any]) -> None:
    deadman = report["deadman"]
    assert deadman["swallowed"] >= 2
    assert deadman["server_released_s"] is not None, "the server kept the station keyed"
    assert deadman["server_released_s"] <= MAX_DEADMAN_S
    assert deadman["last_released"] == {"reason": "deadman", "by": None}
    assert "dead-man" in deadman["notice"]
    assert deadman["status_ptt"] is False


def test_closed_control_channel_unkeys_page_and_station(report: dict[str, Any]) -> None:
    closed = report["channel_close"]
    view = closed["view"]
    assert view["ptt"] is False
    assert view["last_local_release"] == "channel_closed"
    assert view["button_disabled"] is True
    assert view["tuning_disabled"] is True
    assert "control channel closed" in view["tx_notice"]
    assert closed["station_released_s"] is not None, "the station stayed keyed"
    assert closed["listener_status_ptt"] is False
    assert closed["listener_floor"] is None


def test_refused_microphone_falls_back_to_listening(report: dict[str, Any]) -> None:
    no_mic = report["microphone_refused"]
    assert no_mic["can_transmit"] is True
    assert no_mic["mic"] == "refused"
    assert "refused" in no_mic["mic_status"]
    assert "Listening only" in no_mic["mic_status"]
    assert no_mic["direction"] == "recvonly"
    assert no_mic["outbound"] is None
    assert no_mic["button_disabled"] is True
    assert no_mic["ptt_hint"] == "No microphone: transmitting is off."
    assert no_mic["tuning_disabled"] is False, "tuning needs no microphone"
    assert no_mic["packets_received"] > 0
    assert no_mic["errors"] == []
    assert no_mic["console_errors"] == []


def test_late_microphone_permission_does_not_hold_up_listening(report: dict[str, Any]) -> None:
    late = report["late_microphone"]
    waiting = late["waiting_view"]
    assert late["packets_before_mic"] > 0, "listening waited for the microphone"
    assert waiting["mic"] == "pending"
    assert waiting["button_disabled"] is True
    assert waiting["ptt_hint"] == "Waiting for permission to use the microphone…"
    assert waiting["direction"] == "sendrecv"
    attached = late["attached_view"]
    assert attached["mic"] == "ready"
    assert attached["mic_enabled"] is False, "the late microphone came in live"
    keyed = late["keyed_view"]
    assert keyed["status_ptt"] is True
    assert keyed["mic_enabled"] is True
    assert late["keyed_outbound"]["packets"] > 0
    assert late["keyed_outbound"]["source_level"] > 0
    assert late["errors"] == []
    assert late["console_errors"] == []


def test_console_runs_under_its_content_security_policy(report: dict[str, Any]) -> None:
    probe = report["csp_probe"]
    policy = probe["content-security-policy"] or ""
    assert "script-src 'self'" in policy, f"the console page's policy: {policy!r}"
    # the probe's inline script was blocked and its violation recorded: the recorder works
    assert probe["inline_script_ran"] is False
    assert [v["directive"] for v in probe["violations"]] == ["script-src-elem"], probe
    pages = report["csp_violations"]
    assert set(pages) == {"wrong_password", "operator", "microphone_refused", "late_microphone"}
    assert {page: found for page, found in pages.items() if found} == {}, "the console broke it"
