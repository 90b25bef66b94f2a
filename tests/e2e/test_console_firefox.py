"""The operator console in headless Firefox, inside a loopback-only network namespace.

One run of `firefox_check.py` under `unshare -n` (demo server + simulated station whose rig is
Hamlib's dummy behind a real rigctld; Debian's firefox-esr driven by puppeteer-core over
WebDriver BiDi) serves every test here: listening to the station, the status the page shows,
and push to talk with the mouse and with the space bar, each read back from the rig itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.components import missing
from tests.support.namespaces import namespace_command, run_check

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHECK_SCRIPT = HERE / "firefox_check.py"
FIREFOX = Path("/usr/bin/firefox-esr")
WEB_BUNDLE = REPO_ROOT / "web" / "dist" / "console.js"
# The screenshot is kept for people to look at (build/ is not committed).
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"
# Above the script's own bounds (60 s for the demo to be ready, 90 s for the Firefox flow,
# 10 s to stop the demo; a run takes ~22 s on an idle machine).
RUN_TIMEOUT_S = 180
MIN_PACKET_GROWTH = 50  # ~50 packets/s of 20 ms Opus over a ~2 s window gives ~100
MIN_HELD_MS = 1_400  # the flow holds the button ~1.5 s


def format_frequency(hz: int) -> str:
    """What the console shows for a frequency: MHz with kHz grouping (14205000 -> 14.205.000)."""
    return f"{hz // 1_000_000}.{hz // 1000 % 1000:03d}.{hz % 1000:03d} MHz"


def _node_missing() -> str:
    """Why Node.js cannot run the flow with puppeteer-core ("" when it can)."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not installed (apt-get install nodejs)"
    probe = subprocess.run(
        [node, "--input-type=module", "-e", "await import('puppeteer-core')"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return (
            "the npm module puppeteer-core is not installed "
            f"(PUPPETEER_SKIP_DOWNLOAD=1 npm ci): {probe.stderr.strip()[-300:]}"
        )
    return ""


def _preconditions() -> tuple[tuple[str, ...] | None, str]:
    """(namespace command, "") when the Firefox check can run, else (None, why not)."""
    if not FIREFOX.exists():
        return None, f"{FIREFOX} is missing (apt-get install firefox-esr)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not installed (util-linux / iproute2)"
    if why := _node_missing():
        return None, why
    if not WEB_BUNDLE.exists():
        return None, f"{WEB_BUNDLE.relative_to(REPO_ROOT)} is not built (run `make web`)"
    command, why = namespace_command()
    if command is None:
        return None, f"cannot create a network namespace: {why}"
    return command, ""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the Firefox end-to-end test cannot run: {reason}")
    screenshot = tmp_path_factory.mktemp("e2e-firefox") / "console-firefox.png"
    result = run_check(
        namespace, CHECK_SCRIPT, ["--screenshot", str(screenshot)], REPO_ROOT, RUN_TIMEOUT_S
    )
    if screenshot.exists():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, ARTIFACTS / screenshot.name)
    return result


def test_firefox_plays_station_audio(report: dict[str, Any]) -> None:
    assert report["browser_version"].startswith("firefox/")
    growth = report["packets_later"] - report["packets_first"]
    assert growth >= MIN_PACKET_GROWTH, (
        f"inbound audio packets grew by {growth} in {report['packets_window_s']} s"
    )
    assert report["audio_level"] > 0, "the <audio> element plays silence"
    assert report["audio_element"] == {"paused": False, "muted": False, "hasStream": True}
    assert report["state"] == "connected"
    assert report["conn_state_text"] == "connected"


def test_firefox_shows_station_status(report: dict[str, Any]) -> None:
    status = report["last_status"]
    assert report["freq_text"] == format_frequency(status["freq"])
    assert re.fullmatch(r"\d+\.\d{3}\.\d{3} MHz", report["freq_text"])
    assert re.fullmatch(r"S\d(\+\d+ dB)? \(-?\d+ dBm\)", report["smeter_text"])
    assert f"({status['smeter']} dBm)" in report["smeter_text"]
    assert report["tx_text"] == "RX"


def _assert_keyed_then_released(step: dict[str, Any]) -> None:
    keyed = step["keyed_view"]
    assert (keyed["ptt"], keyed["status_ptt"]) == (True, True)
    assert keyed["tx_indicator"] == "TX"
    assert (keyed["ptt_text"], keyed["ptt_pressed"]) == ("ON AIR", "true")
    assert step["rig_keyed"] == 1, "rigctld says the rig is not keyed"

    released = step["released_view"]
    assert (released["ptt"], released["status_ptt"]) == (False, False)
    assert released["tx_indicator"] == "RX"
    assert (released["ptt_text"], released["ptt_pressed"]) == ("Push to talk", "false")
    assert step["rig_released"] == 0, "rigctld says the rig stayed keyed"


def test_holding_ptt_in_firefox_keys_the_rig(report: dict[str, Any]) -> None:
    hold = report["ptt_hold"]
    assert hold["rig_before"] == 0
    _assert_keyed_then_released(hold)
    assert hold["held_ms"] >= MIN_HELD_MS
    assert hold["rig_still_keyed"] == 1, "the rig unkeyed while the button was held"
    assert Path(report["screenshot"]).stat().st_size > 0


def test_space_bar_ptt_in_firefox_keys_the_rig(report: dict[str, Any]) -> None:
    _assert_keyed_then_released(report["space_bar"])


def test_firefox_page_shows_and_logs_no_errors(report: dict[str, Any]) -> None:
    assert report["errors"] == [], "the page shows errors"
    assert report["console_errors"] == [], "the page logged errors"
    assert report["leftover_firefox"] == [], "Firefox outlived the flow"
