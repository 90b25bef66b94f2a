"""Any standard WebRTC peer, not only browsers: a GStreamer 1.22 webrtcbin operator.

Each case is one run of `webrtcbin_check.py` inside a private network namespace: a real server,
board agent (tone, Hamlib's dummy rig behind `rigctld`), and webrtcbin in a nested namespace
behind a veth pair (libnice gathers nothing on loopback), driven through the operator protocol.
webrtcbin's certificate is RSA-2048 and, by default, its offer has no BUNDLE group; before issue
13 its DTLS failed with `no shared cipher` (aiortc offered only ECDHE-ECDSA suites), the server
said nothing, and the BUNDLE group aiortc answered with left its data channel unopened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.components import missing
from tests.support.namespaces import namespace_command
from tests.support.rigctld import require_rigctld

pytestmark = pytest.mark.timeout(300)

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parents[1]
CHECK_MODULE: Final = "tests.integration.webrtcbin_check"
SYSTEM_PYTHON: Final = "/usr/bin/python3"
#: Above the check's own bound (100 s); a run takes 3-10 s here.
RUN_TIMEOUT_S: Final = 150

#: At least ~2 s of the station's 20 ms packets, and the tone (1000 Hz) dominating what was
#: decoded (1.0: a pure tone; noise or silence is near 0).
MIN_RTP_PACKETS: Final = 100
MIN_TONE_SHARE: Final = 0.5
#: RMS of the decoded audio (s16): the agent's tone is ~30 % of full scale (~7000).
MIN_RMS: Final = 1000

TOOLS: Final = {"unshare": "util-linux", "nsenter": "util-linux", "ip": "iproute2"}
PACKAGES: Final = (
    "python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-gst-plugins-base-1.0 "
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-base "
    "gstreamer1.0-nice"
)
ELEMENTS: Final = (
    "webrtcbin nicesrc dtlsdec srtpdec sctpdec opusenc opusdec rtpopuspay rtpopusdepay "
    "audiotestsrc audioconvert audioresample fakesink"
)
GST_PROBE: Final = f"""
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC
Gst.init(None)
absent = [e for e in "{ELEMENTS}".split() if Gst.ElementFactory.find(e) is None]
print(Gst.version_string(), "missing:", " ".join(absent) if absent else "none")
"""
# A veth pair: what the check builds, in a throw-away namespace.
PROBE: Final = "ip link add rcprobe0 type veth peer name rcprobe1"


def _preconditions() -> tuple[tuple[str, ...] | None, str]:
    """(namespace command, "") when the check can run, else (None, why not)."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not installed (Debian: {package})"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return None, f"{SYSTEM_PYTHON} (Debian's python3, for PyGObject) is not installed"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", GST_PROBE], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0 or "missing: none" not in probe.stdout:
        found = (probe.stdout + probe.stderr).strip()[-300:]
        return (
            None,
            f"GStreamer's webrtcbin from Python is not usable ({found}); Debian: {PACKAGES}",
        )
    command, why = namespace_command(PROBE)
    if command is None:
        return None, f"cannot build a veth pair in a network namespace: {why}"
    return command, ""


@pytest.fixture(scope="module")
def run_case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """Runs a case of the check once (the module's tests share it) and returns its report."""
    require_rigctld()
    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the webrtcbin test cannot run: {reason}")
    reports: dict[str, dict[str, Any]] = {}

    def run(case: str) -> dict[str, Any]:
        if case not in reports:
            assert namespace is not None
            data_dir = tmp_path_factory.mktemp(f"webrtcbin-{case}")
            command = [*namespace, sys.executable, "-m", CHECK_MODULE, "--case", case]
            reports[case] = _report([*command, "--data-dir", str(data_dir)], data_dir)
        return reports[case]

    return run


def _report(command: list[str], data_dir: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the webrtcbin check did not finish in {RUN_TIMEOUT_S} s: {exc.stderr!r}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    peer_log = data_dir / "peer.log"
    tail = peer_log.read_text(errors="replace")[-3000:] if peer_log.exists() else ""
    if not lines:
        pytest.fail(
            f"the webrtcbin check printed no JSON (exit {done.returncode});\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-4000:]}\npeer: {tail}"
        )
    report: dict[str, Any] = json.loads(lines[-1])
    print(json.dumps(report, indent=2))  # shown with -rA / on failure
    if not report.get("ok"):
        pytest.fail(
            f"the webrtcbin check stopped: {report.get('failure')}\n"
            f"report: {json.dumps(report, indent=2)}\nstderr: {done.stderr[-3000:]}\n"
            f"peer: {tail}"
        )
    return report


# -- webrtcbin's default: no BUNDLE, RSA certificate -------------------------------------------


def test_webrtcbin_joins_and_gets_an_answer_without_bundle(
    run_case: Callable[[str], dict[str, Any]],
) -> None:
    report = run_case("ok")
    assert report["gstreamer"].startswith("GStreamer 1.22")
    assert (report["answer_ok"], report["answer_type"]) == (True, "answer")
    assert report["offer_m_lines"] == 2  # audio and the data channel
    assert report["offer_has_bundle"] is False
    assert report["answer_has_bundle"] is False, "the answer bundles what the offer did not"


def test_webrtcbin_passes_ice_and_dtls(run_case: Callable[[str], dict[str, Any]]) -> None:
    report = run_case("ok")
    states = report["peer_states"]
    assert "connected" in states["ice-connection-state"], states
    assert states["dtls-0"][-1] == "connected", states  # the audio m-line's own transport
    assert states["connection-state"][-1] == "connected", states  # the data channel's too
    assert report["socketio_errors"] == []
    assert not [line for line in report["server_warnings"] if "media of" in line]


def test_webrtcbin_hears_the_station(run_case: Callable[[str], dict[str, Any]]) -> None:
    audio = run_case("ok")["audio"]
    assert audio["rtp_packets"] >= MIN_RTP_PACKETS, audio
    assert audio["audio_buffers"] > 0, audio  # decoded by webrtcbin's side (opusdec)
    assert audio["rms"] >= MIN_RMS, audio
    assert audio["tone_share"] >= MIN_TONE_SHARE, audio  # the station's 1000 Hz tone


def test_webrtcbin_keys_the_rig_over_its_data_channel_and_is_heard(
    run_case: Callable[[str], dict[str, Any]],
) -> None:
    report = run_case("ok")
    assert {"floor", "status", "capabilities"} <= set(report["message_types"]), report
    assert report["floor_you"] is True, "webrtcbin's ptt did not take the floor"
    assert report["rig_keyed"] is True, "webrtcbin's ptt did not key the rig"
    assert report["rig_keyed_after_hold"] is True, "its keep-alives did not hold the key"
    assert report["tx_samples"] > 0, "the station played nothing while keyed"
    assert report["tx_tone_share"] >= MIN_TONE_SHARE, "webrtcbin's 600 Hz tone did not arrive"
    assert report["rig_released"] is True


# -- webrtcbin with max-bundle: a BUNDLE group offered, and answered -----------------------------


def test_webrtcbin_with_bundle_gets_a_bundled_answer_and_works(
    run_case: Callable[[str], dict[str, Any]],
) -> None:
    report = run_case("bundle")
    assert report["offer_has_bundle"] is True
    assert report["answer_has_bundle"] is True
    assert report["peer_states"]["connection-state"][-1] == "connected"
    assert report["audio"]["rtp_packets"] >= MIN_RTP_PACKETS
    assert report["audio"]["tone_share"] >= MIN_TONE_SHARE
    assert report["rig_keyed"] is True and report["rig_released"] is True


# -- every peer connection of the server on one UDP port -----------------------------------------


def test_webrtcbin_without_bundle_works_through_one_shared_port(
    run_case: Callable[[str], dict[str, Any]],
) -> None:
    """webrtcbin's two transports (no BUNDLE) against a server whose peer connections all share
    one port: both of the server's transports, which share an ICE username fragment, connect."""
    report = run_case("one_port")
    assert report["answer_has_bundle"] is False
    assert report["answer_host_ports"] == [40600], report["answer_host_ports"]
    states = report["peer_states"]
    assert states["dtls-0"][-1] == "connected", states
    assert states["connection-state"][-1] == "connected", states
    assert report["audio"]["tone_share"] >= MIN_TONE_SHARE
    assert report["rig_keyed"] is True and report["rig_released"] is True
    assert not [line for line in report["server_warnings"] if "media of" in line]


# -- a DTLS handshake that fails: the operator is told why ------------------------------------


def test_a_failed_dtls_handshake_is_told_to_the_operator(
    run_case: Callable[[str], dict[str, Any]],
) -> None:
    """The server's DTLS put back to aiortc's ECDSA-only suites: webrtcbin (RSA) finds no
    shared cipher and refuses; the operator gets `error` `media_failed`, saying why."""
    report = run_case("dtls_failure")
    assert report["answer_ok"] is True  # the offer/answer itself was fine
    assert report["peer_states"]["connection-state"][-1] == "failed"
    failures = [e for e in report["socketio_errors"] if e.get("code") == "media_failed"]
    assert len(failures) == 1, report["socketio_errors"]
    (failure,) = failures
    assert failure["reason"] == "dtls"
    assert len(failure["board_id"]) == 36
    assert failure["message"].startswith("the DTLS handshake failed: the peer refused it (")
    assert "alert handshake failure" in failure["message"]
    # and the server's log says so at WARNING, not only at DEBUG
    assert any(
        "failed (dtls)" in line and "handshake failure" in line
        for line in report["server_warnings"]
    ), report["server_warnings"]
