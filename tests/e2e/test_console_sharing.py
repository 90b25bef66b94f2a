"""Station sharing in the console, in headless Chromium inside a loopback-only network namespace:
register -> pair by the sticker's QR link -> the board appears online -> listen, and around it
the pages of station sharing (settings, grants, public stations and booking, my bookings, the
TX log, releasing, signing out), with a second account that must not see the owner's board;
the station list following the agent going away and coming back, without a reload; and closing
a tab while keyed unkeys the rig.

One run of `sharing_check.py` under `unshare -n` (`radiocore serve` on SQLite, a board
provisioned with `radiocore board provision`, a real board agent with Hamlib's dummy rig behind
a real rigctld, and browser contexts) serves every test here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.test_console_chromium import _preconditions
from tests.support.components import missing
from tests.support.namespaces import run_check

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHECK_SCRIPT = HERE / "sharing_check.py"
# Above the script's own bounds (30 s for the server, bounded browser waits); a run takes
# ~30 s here.
RUN_TIMEOUT_S = 150
# Closing a keyed tab must unkey the rig: a safety property with a generous bound (the server's
# dead-man is 1 s), not a speed target.
UNKEY_BOUND_S = 5.0
MIN_PACKET_GROWTH = 50  # ~50 packets/s of 20 ms Opus over a ~2 s window gives ~100
PAIRING_CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")
# The refusals the walk provokes on purpose: the browser logs each failed request.
EXPECTED_REFUSALS = {
    # the grant to an email without an account
    "owner": ["404"],
    # the refused callsign, the used pairing link, the malformed grid, the booked slot
    "guest": ["422", "409", "422", "409"],
}
FAILED_REQUEST = re.compile(
    r"^Failed to load resource: the server responded with a status of (\d+)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    namespace, reason = _preconditions(("setpriv", "rigctld"))
    if namespace is None:
        missing(f"the Chromium station-sharing test cannot run: {reason}")
    screenshot = tmp_path_factory.mktemp("e2e") / "sharing.png"
    return run_check(
        namespace, CHECK_SCRIPT, ["--screenshot", str(screenshot)], REPO_ROOT, RUN_TIMEOUT_S
    )


def test_register_then_pair_from_the_sticker_link(report: dict[str, Any]) -> None:
    board_name = report["walk"]["board_name"]
    board_id = report["provisioned"]["board_id"]
    link = report["provisioned"]["pairing_link"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/pair\?id={board_id}&code=[A-Z0-9-]+", link)
    seen = report["pairing"]
    # signed out, the link is kept and said so, on sign-in and on registration alike
    assert seen["sign_in_shown"] is True
    assert board_id in seen["pending_notice"]
    assert "Sign in, or create an account" in seen["pending_notice"]
    assert seen["pending_notice_on_register"] is True
    # registered: straight on to the pairing page of that board
    assert seen["pair_page_board_id"] == board_id
    assert seen["url_on_pair_page"].startswith(link)
    # paired: in "my stations", offline (no agent yet), opened; the code left the address
    assert seen["listed_name"] == board_name
    assert seen["presence_before_agent"] == "offline"
    assert seen["manage_shown"] is True and seen["manage_name"] == board_name
    assert "code=" not in seen["url_after"] and seen["url_after"].endswith("/#/my-stations")
    assert seen["listen_list"] == [board_name], "the station list to listen from has it too"


def test_the_board_turns_online_when_its_agent_connects_without_a_reload(
    report: dict[str, Any],
) -> None:
    online = report["online"]
    assert online["presence"] == "online"
    assert online["manage_presence"] == "online"
    assert online["same_document"] is True, "the page was reloaded"


def test_the_owner_listens_to_the_paired_station(report: dict[str, Any]) -> None:
    heard = report["listening"]
    growth = heard["packets_later"] - heard["packets_first"]
    assert growth >= MIN_PACKET_GROWTH, (
        f"inbound audio packets grew by {growth} in {heard['packets_window_s']} s"
    )
    assert heard["audio_level"] > 0, "the <audio> element plays silence"
    assert heard["audio_element_muted"] is False
    assert report["errors_owner"] == [], "the owner's page shows errors"


def test_the_station_list_shows_the_board_offline_and_online_again_without_a_reload(
    report: dict[str, Any],
) -> None:
    presence = report["presence"]
    assert presence["listen_before"] == "online"
    assert presence["agent_exit_code"] == 0, "the agent did not stop cleanly on SIGTERM"
    # the agent stopped: offline in the "Listen" page's station list, on screen, and in
    # "my stations"
    assert presence["listen_visible"] is True
    assert presence["listen_offline"] == "offline"
    assert presence["my_stations_offline"] == "offline"
    assert presence["same_document_offline"] is True, "the page was reloaded"
    # started again: online again, the same page
    assert presence["listen_online_again"] == "online"
    assert presence["my_stations_online_again"] == "online"
    assert presence["same_document"] is True, "the page was reloaded"


def test_closing_the_tab_while_keyed_unkeys_the_rig(report: dict[str, Any]) -> None:
    closed = report["tab_close"]
    # what rigctld itself says, asked on a connection of the test's own
    assert closed["rig_ptt_before"] is False
    assert closed["rig_keyed"] is True, "holding PTT did not key the rig"
    assert closed["errors_before_close"] == []
    assert closed["rig_unkeyed"] is True, "the rig stayed keyed after the tab was closed"
    assert closed["unkeyed_s"] < UNKEY_BOUND_S, f"unkeyed {closed['unkeyed_s']} s after closing"
    assert closed["console_errors"] == []


def test_another_account_sees_nothing_of_the_board_and_cannot_claim_it(
    report: dict[str, Any],
) -> None:
    guest = report["guest"]
    assert guest["start_view_visible"] is True
    assert guest["listen_list"] == []
    assert guest["my_stations"] == []
    assert guest["my_stations_status"].startswith("No stations yet")
    assert guest["public_before"] == [], "a private station is listed publicly"
    # the sticker's link, used by the owner, claims nothing
    assert "already has an owner" in guest["hijack_error"]
    assert guest["my_stations_after_hijack"] == []


def test_a_refused_registration_value_is_shown_at_its_field(report: dict[str, Any]) -> None:
    guest = report["guest"]
    assert guest["callsign_error"].startswith("callsign must be an amateur radio callsign"), (
        f"the error for {report['walk']['bad_callsign']!r}"
    )
    assert guest["callsign_invalid"] == "true"
    assert guest["other_field_errors"] == ["", "", ""]


def test_settings_are_stored_and_shown_canonical(report: dict[str, Any]) -> None:
    settings = report["settings"]
    assert settings["locator_field"] == "JO62qm"
    assert settings["bands_field"] == "40m, 20m"  # long waves first
    assert settings["summary"] == "JO62qm · 40m, 20m · public · free"
    assert settings["price_error"].startswith("Give the price in euros")


def test_public_stations_by_grid_and_band_and_booking_a_slot(report: dict[str, Any]) -> None:
    board_name = report["walk"]["board_name"]
    booking = report["booking"]
    assert booking["other_grid_status"] == "No public station matches."
    assert booking["found"] == [board_name]
    assert (
        booking["found_summary"]
        == f"{report['walk']['owner']['callsign']} · JO62qm · 40m, 20m · free"
    )
    assert booking["found_presence"] == "online"
    assert booking["grid_error"].startswith("grid must be a Maidenhead locator")

    # the start typed on New York's clock reached the server in UTC
    local = datetime.fromisoformat(booking["start_default"]).replace(
        tzinfo=ZoneInfo(report["walk"]["guest_timezone"])
    )
    assert booking["browser_offset_min"] == -local.utcoffset().total_seconds() // 60  # type: ignore[union-attr]
    sent = booking["request_body"]
    assert sent["duration_minutes"] == 30
    assert datetime.fromisoformat(sent["start"]) == local
    assert sent["start"].endswith("Z")
    assert booking["start_hint"] == "Your local time (UTC\u221205:00)."
    assert local.minute % 15 == 0, "the default start is a quarter of an hour"

    shown = booking["start_default"].replace("T", " ")
    # the 30 minutes as the console writes them: the end's date too when they cross midnight
    end = local + timedelta(minutes=30)
    if end.date() == local.date():
        window = f"{shown}\u2013{end:%H:%M}"
    else:
        window = f"{shown} \u2013 {end:%Y-%m-%d %H:%M}"
    assert booking["booked"].startswith(f"Booked: “{board_name}”, {window} (your time)")
    assert booking["booked"].endswith("(your time), free. See “My bookings”.")
    assert booking["conflict"].startswith(f"Already booked: “{board_name}” is booked")
    assert booking["result_after_conflict"] == ""

    assert booking["listed"].startswith(f"{board_name}\n{window}")
    assert booking["after_cancel"] == f"Cancelled: {board_name}. No bookings left."
    assert booking["listed_after_cancel"] == 0


def test_grants_by_email(report: dict[str, Any]) -> None:
    guest = report["walk"]["guest"]
    grants = report["grants"]
    assert grants["unknown_email_error"] == "no account with this email"
    assert grants["granted"].startswith(f"{guest['callsign']} ({guest['email']})\nlisten")
    assert grants["after_remove"] == 0


def test_tx_log_release_and_sign_out(report: dict[str, Any]) -> None:
    board_name = report["walk"]["board_name"]
    release = report["release"]
    assert len(release["tx_log"]) == 1
    callsign, keyed, unkeyed, why = release["tx_log"][0]
    assert (callsign, why) == (report["walk"]["owner"]["callsign"], "released")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", keyed) and unkeyed != "on air"

    assert release["confirm_text"].startswith(f"Release “{board_name}”?")
    assert release["still_listed_before_confirm"] == 1, "released before it was confirmed"
    assert release["released_name"] == board_name
    assert PAIRING_CODE.fullmatch(release["new_code"]), release["new_code"]
    assert release["new_secret_chars"] == 43
    assert release["listed_after"] == 0
    assert release["status_after"].startswith("No stations yet")
    assert release["listen_list_after"] == []
    assert release["credentials_after_done"] == [False, ""], "the credentials stayed on the page"

    assert release["logout_method"] == "POST"
    assert release["signed_out_form"] is True
    assert release["nav_after_sign_out"] is False


def test_no_policy_violations_and_no_unexpected_console_errors(report: dict[str, Any]) -> None:
    assert report["csp_violations"] == {"owner": [], "guest": []}
    for page, logged in report["console_errors"].items():
        statuses = [m.group(1) for text in logged if (m := FAILED_REQUEST.match(text))]
        assert len(statuses) == len(logged), f"{page}: {logged}"
        assert statuses == EXPECTED_REFUSALS[page], f"{page}: {logged}"
    assert report["errors_guest"] == []
