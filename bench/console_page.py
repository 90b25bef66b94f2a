"""Driving the operator console in a browser page (Playwright) as a person does, for `bench e2e`
and the end-to-end tests: bounded waits, signing in, choosing a station.

The console's Content-Security-Policy forbids Playwright's `wait_for_function` (an `eval` in the
page); `page.evaluate` comes over DevTools and works, so waits poll it. Pages are typed `Any`:
Playwright is a test and benchmark dependency, not the server's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

#: Debian's Chromium, which Playwright drives (never `playwright install`).
CHROMIUM: Final = "/usr/bin/chromium"
#: Headless, fake microphone and permission, loopback candidates (in a loopback-only network
#: namespace Chromium gathers none without it), audio that plays without a gesture.
CHROMIUM_FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    # several pages at once (two operators): none of them is a background page whose timers
    # (PTT keep-alives) Chromium would slow down
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
#: How often a wait looks again, seconds.
POLL_S: Final = 0.05
#: The default bound on a wait for the page, seconds.
PAGE_WAIT_S: Final = 15.0


#: The page's received audio from getStats (null before a peer connection): `packetsReceived`,
#: `audioLevel`, `bytesReceived`; given the name of a `window` property holding an earlier
#: peer connection, also `same_pc`: whether these stats are still that connection's.
INBOUND_AUDIO_JS: Final = """
async (earlierPc) => {
  const pc = window.radiocore && window.radiocore.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  let found = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      found = {
        packetsReceived: s.packetsReceived ?? 0,
        audioLevel: s.audioLevel ?? null,
        bytesReceived: s.bytesReceived ?? 0,
      };
    }
  });
  if (found && earlierPc) found.same_pc = pc === window[earlierPc];
  return found;
}
"""


class PageWaitError(Exception):
    """The page did not reach the awaited state within the wait's bound."""


def poll(
    what: str,
    seconds: float,
    probe: Callable[[], Any],
    *,
    error: type[Exception] = PageWaitError,
    interval_s: float = POLL_S,
) -> Any:
    """`probe()` until it is truthy, for at most `seconds`: its value, or `error` naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"{what}: not within {seconds:g} s")
        time.sleep(interval_s)


def wait_js(
    page: Any,
    expression: str,
    seconds: float,
    what: str,
    *,
    error: type[Exception] = PageWaitError,
    interval_s: float = POLL_S,
) -> Any:
    """`expression` evaluated in `page` until it is truthy (bounded by `seconds`); its value."""
    return poll(
        what, seconds, lambda: page.evaluate(expression), error=error, interval_s=interval_s
    )


def sign_in(
    page: Any, url: str, email: str, password: str, *, error: type[Exception] = PageWaitError
) -> None:
    """Opens the console at `url` and submits its sign-in form (does not wait for the result)."""
    page.goto(url, wait_until="load")
    wait_js(
        page,
        "window.radiocore && window.radiocore.state === 'signed-out'",
        PAGE_WAIT_S,
        "the sign-in page",
        error=error,
    )
    # the sign-in form's own fields: the page has other forms with an email and a password
    form = page.locator("#login-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def choose_station(page: Any, board_name: str, seconds: float = PAGE_WAIT_S) -> None:
    """Clicks the station's entry in the list of stations (once the list shows it)."""
    board = page.get_by_role("button", name=re.compile(re.escape(board_name)))
    board.first.click(timeout=seconds * 1000)
