"""The console in headless Chromium over the server's own HTTPS (a test certificate), its media
forced through a real coturn (`ice.transport_policy = relay`), inside a loopback-only network
namespace: one run of `https_relay_check.py` serves every test here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from radiocore.demo import DEMO_CALLSIGN
from tests.e2e.test_console_chromium import MIN_KEYED_PACKETS, MIN_PACKET_GROWTH, _preconditions
from tests.support.components import missing
from tests.support.coturn import require_coturn
from tests.support.namespaces import run_check

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHECK_SCRIPT = HERE / "https_relay_check.py"
# Above the script's own bounds (60 s for the demo to be ready, then bounded browser waits;
# a run takes ~15 s here).
RUN_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the Chromium HTTPS relay test cannot run: {reason}")
    require_coturn()
    screenshot = tmp_path_factory.mktemp("e2e") / "https-relay.png"
    return run_check(
        namespace, CHECK_SCRIPT, ["--screenshot", str(screenshot)], REPO_ROOT, RUN_TIMEOUT_S
    )


def test_console_is_a_secure_context_over_the_servers_own_tls(report: dict[str, Any]) -> None:
    assert report["demo_url"].startswith("https://127.0.0.1:")
    tls = report["tls"]
    assert tls["status"] == 200
    assert tls["protocol"] in ("TLS 1.2", "TLS 1.3")
    assert (tls["subject"], tls["issuer"]) == ("radiocore.test", "RadioCore test CA")
    security = report["security"]
    assert security["protocol"] == "https:"
    assert security["is_secure_context"] is True
    assert security["microphone_api"] is True, "navigator.mediaDevices is missing"


def test_station_audio_arrives_through_the_relay(report: dict[str, Any]) -> None:
    growth = report["packets_later"] - report["packets_first"]
    assert growth >= MIN_PACKET_GROWTH, (
        f"inbound audio packets grew by {growth} in {report['packets_window_s']} s"
    )
    assert report["audio_level"] > 0, "the <audio> element plays silence"
    assert report["state"] == "connected"

    security = report["security"]
    assert security["ice_transport_policy"] == "relay"
    assert security["ice_urls"], "the page was given no ICE server"
    assert all(url.startswith("turn:") for url in security["ice_urls"])
    pair = report["selected_pair"]
    assert pair["state"] == "succeeded"
    assert pair["local_type"] == "relay", f"media not relayed: {pair}"
    assert pair["relay_protocol"] == "udp"
    assert pair["local_url"] in security["ice_urls"]
    assert pair["bytes_received"] > 0


def test_coturn_allocated_for_the_operator(report: dict[str, Any]) -> None:
    (username,) = report["security"]["ice_usernames"]
    expiry, identity = username.split(":", 1)
    assert expiry.isdigit()
    assert identity == report["operator_identity"]
    assert report["operator_allocations"] >= 1, "coturn granted the operator no allocation"


def test_push_to_talk_keys_the_station_through_the_relay(report: dict[str, Any]) -> None:
    hold = report["ptt_hold"]
    on_air = hold["on_air_view"]
    assert on_air["status_ptt"] is True, "the station's status never showed PTT on"
    assert on_air["tx_badge"] == "TX"
    assert on_air["floor_text"] == f"{DEMO_CALLSIGN} (you)"
    assert hold["status_ptt_while_held"] is True
    voice = hold["keyed_outbound"]
    assert voice["packets"] >= MIN_KEYED_PACKETS, f"outbound audio while keyed: {voice}"
    assert voice["source_level"] > 0
    released = hold["released_view"]
    assert released["status_ptt"] is False
    assert released["tx_badge"] == "RX"
    assert Path(report["screenshot"]).stat().st_size > 0


def test_page_shows_no_errors(report: dict[str, Any]) -> None:
    assert report["errors"] == [], "the page shows errors"
    assert report["console_errors"] == [], "the page logged errors"
