"""Who is on the station, and asking to talk, in real Chromium (issue 9).

Judges the `roster` part of the one `console_check.py` run (the `report` fixture in
conftest.py; the steps are tests/e2e/roster_steps.py): two operators on the demo station (the
owner's page and a guest granted `transmit`, each in its own browser context) see each other;
the guest asks to talk while the owner transmits and the owner sees it; the guest is refused the
floor and sees who holds it; after the owner lets go the guest keys. The screenshot with the
holder's notice lands in build/test-artifacts/console-roster.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from radiocore.demo import DEMO_CALLSIGN
from tests.e2e.roster_steps import GUEST

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(200)]
GUEST_CALLSIGN = GUEST["callsign"]


@pytest.fixture(scope="module")
def roster(report: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] | None = report.get("roster")
    assert part is not None, f"the roster steps did not run: {report.get('failure')}"
    return part


def _completed(roster: dict[str, Any], key: str) -> Any:
    value = roster.get(key)
    assert value is not None, f"the roster steps stopped before {key}: {roster['failure']}"
    return value


def _texts(view: dict[str, Any]) -> list[str]:
    return [item["text"] for item in view["items"]]


def test_both_operators_see_each_other(roster: dict[str, Any]) -> None:
    assert roster["owner"] == DEMO_CALLSIGN
    for key in ("a_joined", "b_joined"):
        view = _completed(roster, key)
        assert view["hidden"] is False
        assert view["count"] == "2"
        assert sorted(_texts(view)) == sorted([DEMO_CALLSIGN, GUEST_CALLSIGN]), key


def test_the_holder_sees_who_is_waiting_to_talk(roster: dict[str, Any]) -> None:
    assert _completed(roster, "b_ask_before") == {
        "text": "Ask to talk",
        "pressed": "false",
        "disabled": False,
    }
    a = _completed(roster, "a_waiting")
    assert a["notice"] == f"{GUEST_CALLSIGN} is waiting to talk"
    assert f"{GUEST_CALLSIGN} waiting to talk" in _texts(a)
    assert f"{DEMO_CALLSIGN} on the air" in _texts(a)
    assert a["ask"] is None, "the holder has no 'Ask to talk'"
    b = _completed(roster, "b_waiting")
    assert b["ask"]["pressed"] == "true"
    assert b["notice"] is None, "only the holder gets the notice"
    assert roster["screenshot"].endswith("console-roster.png")


def test_a_second_browser_is_refused_the_floor_and_sees_who_holds_it(
    roster: dict[str, Any],
) -> None:
    refused = _completed(roster, "b_refused")
    assert refused["button_disabled"] is True
    assert refused["hint"] == f"{DEMO_CALLSIGN} is transmitting."
    assert refused["floor_text"] == DEMO_CALLSIGN
    assert refused["ptt"] is False and refused["floor_is_mine"] is False
    assert refused["ptt_log"] == [], "the refused press keyed"
    assert f"{DEMO_CALLSIGN} on the air" in _texts(refused["roster"])
    assert roster["a_still_holds"] is True, "the refused press took the floor from A"


def test_after_the_holder_lets_go_the_waiting_operator_keys(roster: dict[str, Any]) -> None:
    assert _completed(roster, "b_keyed") is True
    a = _completed(roster, "a_after_grant")
    assert f"{GUEST_CALLSIGN} on the air" in _texts(a)
    assert not any("waiting" in text for text in _texts(a)), "the request was not cleared"
    assert a["notice"] is None
    b = _completed(roster, "b_after_grant")
    assert b["ask"] is None, "the holder has no 'Ask to talk'"
    assert roster["failure"] is None, roster["failure"]


def test_the_guest_leaving_leaves_the_owner_alone(roster: dict[str, Any]) -> None:
    view = _completed(roster, "a_after_leave")
    assert view["count"] == "1"
    assert _texts(view) == [DEMO_CALLSIGN]
