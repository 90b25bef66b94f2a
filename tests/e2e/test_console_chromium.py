"""The operator console in headless Chromium, inside a loopback-only network namespace.

One run of `console_check.py` under `unshare -n` (demo server + simulated station + Chromium)
serves both tests: listening to the station, and the sign-in error for a wrong password.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHECK_SCRIPT = HERE / "console_check.py"
CHROMIUM = Path("/usr/bin/chromium")
WEB_BUNDLE = REPO_ROOT / "web" / "dist" / "console.js"
# Above the script's own bounds (60 s for the demo to be ready, ~45 s of browser waits).
RUN_TIMEOUT_S = 150
MIN_PACKET_GROWTH = 50  # ~50 packets/s of 20 ms Opus over a ~2 s window gives ~100


def format_frequency(hz: int) -> str:
    """What the console shows for a frequency: MHz with kHz grouping (14205000 -> 14.205.000)."""
    return f"{hz // 1_000_000}.{hz // 1000 % 1000:03d}.{hz % 1000:03d} MHz"


# Root can make a network namespace directly; others may through a user namespace.
NAMESPACE_COMMANDS = (("unshare", "-n"), ("unshare", "--map-root-user", "-n"))


def _namespace_command() -> tuple[tuple[str, ...] | None, str]:
    """The first way to run a command in a new network namespace that works here, or why none."""
    failures = []
    for command in NAMESPACE_COMMANDS:
        probe = subprocess.run(
            [*command, "true"], capture_output=True, text=True, timeout=10, check=False
        )
        if probe.returncode == 0:
            return command, ""
        failures.append(f"`{' '.join(command)}`: {probe.stderr.strip() or probe.returncode}")
    return None, "; ".join(failures)


def _preconditions() -> tuple[tuple[str, ...] | None, str]:
    """(namespace command, "") when the test can run, else (None, why not)."""
    if not CHROMIUM.exists():
        return None, f"{CHROMIUM} is missing (apt-get install chromium)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not installed (util-linux / iproute2)"
    if importlib.util.find_spec("playwright") is None:
        return None, "the playwright Python package is not installed (pip install -e '.[test]')"
    if not WEB_BUNDLE.exists():
        return None, f"{WEB_BUNDLE.relative_to(REPO_ROOT)} is not built (run `make web`)"
    command, failures = _namespace_command()
    if command is None:
        return None, (
            f"cannot create a network namespace (uid {os.getuid()}; needs root or "
            f"unprivileged user namespaces): {failures}"
        )
    return command, ""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    namespace, reason = _preconditions()
    if namespace is None:
        print(f"skipping the Chromium end-to-end test: {reason}")
        pytest.skip(reason)
    screenshot = tmp_path_factory.mktemp("e2e") / "console.png"
    try:
        run = subprocess.run(
            [*namespace, sys.executable, str(CHECK_SCRIPT), "--screenshot", str(screenshot)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"console_check.py did not finish in {RUN_TIMEOUT_S} s: {exc.stderr!r}")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"console_check.py printed no JSON (exit {run.returncode});\n"
            f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    print(json.dumps(result, indent=2))  # shown with -rA / on failure
    if not result.get("ok"):
        pytest.fail(
            f"console check stopped: {result.get('failure')}\n"
            f"report: {json.dumps(result, indent=2)}\nstderr: {run.stderr[-4000:]}"
        )
    return result


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
    assert Path(report["screenshot"]).stat().st_size > 0


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
