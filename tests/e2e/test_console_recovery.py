"""The console gets the audio back by itself after a network change, in real Chromium (issue 9).

Judges the `recovery` part of the one `console_check.py` run (the `report` fixture in
conftest.py; the step is tests/e2e/recovery_steps.py): the page's own media flow to the SFU is
cut silently with nftables inside the check's loopback-only namespace for longer than the
console's grace; the page must say the audio is interrupted, then that it is reconnecting, join
again by itself (a new peer connection) without a reload, hear the station again once the cut is
healed, keep receiving its status, and clear what it said.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.e2e.recovery_steps import MIN_CUT_S
from tests.support.components import missing

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]


@pytest.fixture(scope="module")
def recovery(report: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("nft") is None:
        missing("`nft` is not installed (apt-get install nftables): the media flow cannot be cut")
    part: dict[str, Any] | None = report.get("recovery")
    assert part is not None, f"the recovery step did not run: {report.get('failure')}"
    if part.get("nft_missing"):
        missing("`nft` is not installed in the check's namespace (apt-get install nftables)")
    assert part.get("failure") is None, f"the recovery step stopped: {part['failure']}"
    assert "cleanup_failure" not in part, part["cleanup_failure"]
    return part


def test_the_cut_is_longer_than_the_grace(recovery: dict[str, Any]) -> None:
    assert recovery["ports"]["remote"], "this page's SFU port was not found"
    assert recovery["view_at_cut"]["connection"] == "connected"
    assert recovery["cut_held_s"] >= MIN_CUT_S


def test_the_page_says_the_audio_is_interrupted(recovery: dict[str, Any]) -> None:
    assert recovery["interrupted_shown_s"] is not None, (
        f"never said the audio is interrupted: {recovery['texts_shown']}"
    )
    assert recovery["disconnected_s"] is not None, recovery["states"]


def test_the_page_says_it_is_reconnecting_and_rejoins_by_itself(recovery: dict[str, Any]) -> None:
    assert recovery["reconnecting_shown_s"] is not None, (
        f"never said it is reconnecting: {recovery['texts_shown']}"
    )
    assert recovery["interrupted_shown_s"] <= recovery["reconnecting_shown_s"]
    assert recovery["rejoin_started_s"] is not None, "no new peer connection while cut"


def test_no_reload(recovery: dict[str, Any]) -> None:
    assert recovery["no_reload"] is True, "the marker on window was lost: the page reloaded"
    assert recovery["view_after"]["marker"] is True


def test_the_audio_comes_back_on_a_new_connection(recovery: dict[str, Any]) -> None:
    assert recovery["audio_back_s"] is not None, (
        f"no audio on the new connection after the heal: {recovery['view_after']}"
    )
    after = recovery["audio_after"]
    assert after["same_pc"] is False
    assert after["packetsReceived"] > 0
    assert after["audioLevel"] > 0, "the new connection plays silence"
    assert recovery["view_after"]["state"] == "connected"
    assert recovery["view_after"]["connection"] == "connected"
    # the line shows the link's figures again, not a stale "Reconnecting…"
    assert recovery["words_cleared"] is True, recovery["view_after"]


def test_the_station_keeps_reporting_after_the_recovery(recovery: dict[str, Any]) -> None:
    assert recovery["status_after"] is not None, "no status updates after the recovery"
    assert recovery["status_after"]["rig_online"] is True


def test_no_page_errors_during_the_recovery(recovery: dict[str, Any]) -> None:
    assert recovery["page_errors"] == []
    assert recovery["console_errors"] == []
