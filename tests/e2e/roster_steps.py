"""The roster's steps of `console_check.py` (issue 9): who is on the station, and asking to talk.

Two operators on the demo station, each in its own browser context: page A is the operator's
page of the run (the station's owner, DL0DEMO, listening, PTT released); page B is a guest
(registered through the REST API, granted `transmit` by the owner through the REST API), who
signs in and joins like a person.

- both pages show "On the station: 2" and list both callsigns;
- A holds PTT; B presses "Ask to talk": A's roster marks B waiting and A sees the notice
  "DL2RST is waiting to talk"; B's toggle is pressed;
- B tries PTT while A holds it: refused (the button is off, its hint names the holder, a press
  keys nothing; the server's own `floor_busy` is tested in tests/media), B's page shows who
  holds the floor and B's roster shows A on the air;
- A lets go; B keys (the station's status says PTT on), B's request is cleared (no one waits),
  and B lets go.

Self-contained (no import of `console_check`, which imports this module).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page
from playwright.sync_api import Error as PlaywrightError

from bench.console_page import choose_station, sign_in, wait_js

GUEST = {
    "email": "roster-guest@example.org",
    "password": "roster-guest-password",
    "callsign": "DL2RST",
}
WAIT_MS = 15_000

ROSTER_JS = """(() => {
  const section = document.getElementById('roster');
  const ask = document.getElementById('roster-ask');
  const notice = document.getElementById('roster-notice');
  return {
    hidden: section.hidden,
    count: document.getElementById('roster-count').textContent,
    items: [...document.querySelectorAll('#roster-list li')].map((li) => ({
      text: li.textContent,
      className: li.className,
    })),
    notice: notice.hidden ? null : notice.textContent,
    ask: ask.hidden ? null : {text: ask.textContent, pressed: ask.getAttribute('aria-pressed'),
                              disabled: ask.disabled},
  };
})()"""


class RosterCheckError(Exception):
    pass


def _wait_js(page: Page, expression: str, description: str, timeout_ms: float = WAIT_MS) -> Any:
    return wait_js(page, expression, timeout_ms / 1000, description, error=RosterCheckError)


def _roster(page: Page) -> dict[str, Any]:
    view: dict[str, Any] = page.evaluate(ROSTER_JS)
    return view


def _wait_roster(page: Page, description: str, condition: str) -> dict[str, Any]:
    """Waits until the rendered roster `r` (ROSTER_JS) satisfies `condition` (JS)."""
    try:
        _wait_js(page, f"(() => {{ const r = {ROSTER_JS}; return {condition}; }})()", description)
    except RosterCheckError:
        raise RosterCheckError(f"{description}; the roster shows {_roster(page)}") from None
    return _roster(page)


def _api(page: Page, method: str, url: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = page.request.fetch(url, method=method, data=body, headers=headers)
    if not response.ok:
        raise RosterCheckError(f"{method} {url}: {response.status} {response.text()[:200]}")
    return response.json()


def _make_guest(page: Page, base: str, ready: dict[str, Any]) -> None:
    """Registers the guest and has the owner grant it `transmit`, through the REST API."""
    _api(page, "POST", f"{base}/api/auth/register", GUEST)
    owner = _api(
        page,
        "POST",
        f"{base}/api/auth/login",
        {"email": ready["email"], "password": ready["password"]},
    )
    grant = {"email": GUEST["email"], "right": "transmit"}
    _api(page, "POST", f"{base}/api/boards/{ready['board_id']}/grants", grant, owner["token"])


def _join(page: Page, url: str, board_name: str) -> None:
    sign_in(page, url, GUEST["email"], GUEST["password"], error=RosterCheckError)
    choose_station(page, board_name)
    _wait_js(page, "window.radiocore.state === 'connected'", "the guest's page connected")
    _wait_js(
        page,
        "window.radiocore.mic === 'ready' && !document.getElementById('ptt').disabled",
        "the guest's microphone ready and PTT enabled",
    )


def _hold_ptt(page: Page) -> None:
    page.locator("#ptt").scroll_into_view_if_needed()
    box = page.locator("#ptt").bounding_box()
    if box is None:
        raise RosterCheckError("the PTT button is not visible")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()


def check_roster(
    browser: Browser,
    page: Page,
    url: str,
    ready: dict[str, Any],
    screenshot: Path,
    result: dict[str, Any],
) -> None:
    """The steps in the module docstring; fills `result["roster"]` as it goes (a failure is
    recorded in its `failure`, not raised: the other steps go on)."""
    part: dict[str, Any] = {"failure": None, "guest": GUEST["callsign"]}
    result["roster"] = part
    owner = page.evaluate("window.radiocore.callsign")
    part["owner"] = owner
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    guest = context.new_page()
    guest.set_default_timeout(WAIT_MS)
    a_holds = b_holds = False
    try:
        _make_guest(guest, url.rstrip("/"), ready)
        _join(guest, url, ready["board_name"])

        both = "r.count === '2' && r.items.length === 2 && !r.hidden"
        part["a_joined"] = _wait_roster(page, "A sees two operators", both)
        part["b_joined"] = _wait_roster(guest, "B sees two operators", both)

        # A holds the floor; B asks to talk
        _hold_ptt(page)
        a_holds = True
        _wait_js(page, "window.radiocore.floorIsMine === true", "A holds the floor")
        _wait_js(guest, "window.radiocore.floor !== null", "B sees the floor taken")
        part["b_ask_before"] = _roster(guest)["ask"]
        guest.locator("#roster-ask").click()
        part["a_waiting"] = _wait_roster(
            page,
            "A sees B waiting",
            "r.notice !== null && r.items.some((i) => /waiting/.test(i.text))",
        )
        part["b_waiting"] = _wait_roster(
            guest, "B sees itself waiting", "r.items.some((i) => /waiting/.test(i.text))"
        )
        shot = screenshot.with_name("console-roster.png")
        page.screenshot(path=str(shot), full_page=True)
        part["screenshot"] = str(shot)

        # B tries PTT while A holds it: refused (the button is off and names the holder; a
        # press on it keys nothing), and B sees who holds the floor
        try:
            _wait_js(guest, "document.getElementById('ptt').disabled", "B's PTT refused")
        except RosterCheckError as exc:  # say whether A still held the floor, or lost it
            a_state = page.evaluate(
                "({floorIsMine: window.radiocore.floorIsMine, ptt: window.radiocore.ptt,"
                " lastReleased: window.radiocore.lastReleased, pttLog: window.radiocore.pttLog})"
            )
            raise RosterCheckError(f"{exc}; A meanwhile: {a_state}") from None
        _hold_ptt(guest)
        b_holds = True
        time.sleep(0.5)  # room for a press to go out, were it to
        part["b_refused"] = {
            "button_disabled": guest.evaluate("document.getElementById('ptt').disabled"),
            "hint": guest.locator("#ptt-hint").inner_text(),
            "floor_text": guest.locator("#floor").inner_text(),
            "ptt": guest.evaluate("window.radiocore.ptt"),
            "ptt_log": guest.evaluate("window.radiocore.pttLog"),
            "floor_is_mine": guest.evaluate("window.radiocore.floorIsMine"),
            "roster": _roster(guest),
        }
        guest.mouse.up()
        b_holds = False
        part["a_still_holds"] = page.evaluate("window.radiocore.floorIsMine")

        # A lets go; B keys
        page.mouse.up()
        a_holds = False
        _wait_js(guest, "window.radiocore.floor === null", "B sees the floor free")
        _hold_ptt(guest)
        b_holds = True
        _wait_js(guest, "window.radiocore.floorIsMine === true", "B holds the floor")
        _wait_js(
            guest,
            "window.radiocore.lastStatus && window.radiocore.lastStatus.ptt === true",
            "the station keyed for B",
        )
        part["b_keyed"] = True
        part["a_after_grant"] = _wait_roster(
            page,
            "A sees B on the air and nobody waiting",
            "r.items.some((i) => /on the air/.test(i.text) && i.text.includes('DL2RST'))"
            " && !r.items.some((i) => /waiting/.test(i.text))",
        )
        part["b_after_grant"] = _roster(guest)
        guest.mouse.up()
        b_holds = False
        _wait_js(
            guest,
            "window.radiocore.lastStatus && window.radiocore.lastStatus.ptt === false",
            "the station unkeyed after B",
        )
    except (RosterCheckError, PlaywrightError) as exc:
        part["failure"] = f"{type(exc).__name__}: {exc}"
    finally:
        for holder, held in ((page, a_holds), (guest, b_holds)):
            if held:
                with contextlib.suppress(PlaywrightError):
                    holder.mouse.up()
        with contextlib.suppress(PlaywrightError):
            context.close()
        # A is alone again (the guest left): what the rest of the run expects
        try:
            part["a_after_leave"] = _wait_roster(page, "A alone again", "r.count === '1'")
        except (RosterCheckError, PlaywrightError) as exc:
            part["a_after_leave"] = None
            part["failure"] = part["failure"] or f"{type(exc).__name__}: {exc}"
