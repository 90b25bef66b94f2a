"""Station sharing in the operator console, in real headless Chromium against `radiocore serve`,
end to end, the way a new owner and a guest walk through it.

Meant to run inside a private network namespace that has only loopback (nothing leaves the
machine; Chromium and aioice see loopback only):

    unshare -n python tests/e2e/sharing_check.py --screenshot /tmp/sharing.png

It brings `lo` up, starts `python -m radiocore serve` (SQLite in a temp data dir, no demo
station, its own secret) and provisions a board with `radiocore board provision --base-url
http://127.0.0.1:PORT` (its JSON line: id, agent secret, pairing code and link). Then:

1. the owner opens the board's pairing link in a fresh browser (as a phone scanning the QR
   sticker would): the page says a pairing link waits; they go on to "Create one", register
   (email, password, callsign), land on the pairing page, name the board and pair it; "my
   stations" lists it, offline, and the link's code has left the address bar;
2. the board's agent starts (`python -m board_agent --rig hamlib --rig-model 1`: Hamlib's dummy
   rig behind a real rigctld that the agent runs on a port chosen here; the provisioned secret in
   its environment): the board turns online in "my stations" without a reload;
3. a guest registers in a second browser context (a callsign refused first: the error stands
   next to the callsign field): the board is in none of their lists; the sticker's link, used
   up, does not let them claim it;
4. the owner makes the station public with a locator and bands (the list shows the stored,
   canonical values); the guest finds it by grid and band, not under another grid, books a
   slot (start in local time), is told plainly that the same slot is already booked, sees the
   booking in "my bookings" and cancels it;
5. the owner grants the guest listening by email and takes it back;
6. the owner joins the station and listens (inbound audio grows, audioLevel > 0), keys PTT
   briefly, and leaves;
7. on the "Listen" page (no reload since step 1): the agent is stopped (SIGTERM) and the board is
   shown offline in the station list (and in "my stations"); started again, online again;
8. the owner reads the TX log;
9. in a fresh tab the owner joins and holds PTT (the mouse button down on it): the rig, read on
   a rigctld connection of this script's own, is keyed; the tab is closed with the button still
   held: the rig unkeys (the server's dead-man, 1 s by default, is the last resort);
10. the owner releases the board (after a confirmation: the new pairing code and agent secret
   are shown); signs out (the refresh token is revoked).

Every page records Content-Security-Policy violations and console errors. It prints one JSON
line with what it saw (`ok` false and `failure` say why it stopped early) and exits 0 when every
step completed; `test_console_sharing.py` judges it. Server and agent are always stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script: the repository's test helpers
    sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from bench.console_page import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from bench.demo_process import die_with_parent, stop_process_group  # noqa: E402
from bench.rig_reader import RigReader  # noqa: E402
from bench.tools import free_port  # noqa: E402
from tests.e2e.console_check import (  # noqa: E402
    VIEWPORT,
    CheckFailedError,
    _bring_up_loopback,
    _collect_console,
    _collect_csp_violations,
    _error_list,
    _new_page,
    _press_ptt_button,
    _sign_in,
    _wait_for,
    _wait_js,
    _wait_status,
    measure_listening,
    run_and_report,
)

OWNER = {"email": "owner@example.org", "password": "owner-password-1", "callsign": "DL2OWN"}
GUEST = {"email": "guest@example.org", "password": "guest-password-1", "callsign": "DL3GST"}
BAD_CALLSIGN = "ABC"
BOARD_NAME = "Sticker station"
LOCATOR_TYPED, BANDS_TYPED = "jo62QM", "20m 40m"
# The guest's browser runs on New York's clock (the namespace's own is UTC): a booking's start
# typed in local time must reach the server in UTC.
GUEST_TIMEZONE = "America/New_York"
READY_TIMEOUT_S = 30.0
ONLINE_TIMEOUT_S = 20.0
PTT_HOLD_S = 0.6
# Marks the owner's page: still there after the board went online means no reload happened.
NO_RELOAD_MARK = "window.__rcSameDocument"
# Bounds of the presence and tab-closing steps (what they took is reported, the judge decides)
AGENT_EXIT_TIMEOUT_S = 10.0
OFFLINE_TIMEOUT_S = 15.0
RIG_KEYED_TIMEOUT_S = 5.0
RIG_UNKEYED_TIMEOUT_S = 10.0  # well above the server's 1 s dead-man: a late unkey is measured
RIG_POLL_S = 0.02


def _server_environment(secret: str) -> dict[str, str]:
    """This environment without RADIOCORE_* variables (the server refuses unknown ones), and
    the server's signing secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOCORE_")}
    return env | {"RADIOCORE_SECRET": secret}


@contextlib.contextmanager
def running_process(
    command: Sequence[str], log_path: Path, env: Mapping[str, str], *, before_threads: bool
) -> Iterator[subprocess.Popen[str]]:
    """`command` in its own process group, output to `log_path`, stopped (group-wide) on exit.
    It dies with this script: by `die_with_parent` while this process has one thread (a fork
    with other threads running must not run Python code), else by `setpriv --pdeathsig`."""
    prefix: list[str] = [] if before_threads else ["setpriv", "--pdeathsig", "TERM", "--"]
    # `process_group` (setpgid in the child, no Python code after the fork) when threads run
    spawn: dict[str, Any] = (
        {"preexec_fn": die_with_parent} if before_threads else {"process_group": 0}
    )
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*prefix, *command],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            **spawn,
        )
    try:
        yield process
    finally:
        stop_process_group(process)


class Agent:
    """The board's agent (Hamlib's dummy rig behind the rigctld it runs on `rigctld_port`),
    started and stopped by the walk; each run logs to a file of its own."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], work: Path, rigctld_port: int
    ) -> None:
        self._command = list(command)
        self._env = dict(env)
        self._work = work
        self._stack = contextlib.ExitStack()
        self._process: subprocess.Popen[str] | None = None
        self.rigctld_port = rigctld_port
        self.logs: list[Path] = []

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start(self) -> None:
        log = self._work / f"agent-{len(self.logs) + 1}.log"
        self.logs.append(log)
        self._process = self._stack.enter_context(
            running_process(self._command, log, self._env, before_threads=False)
        )

    def stop(self) -> int | None:
        """SIGTERM to the agent (it unkeys, stops its rigctld and leaves), its exit awaited
        (bounded); its exit status, None when it had to be killed."""
        process = self._process
        if process is None:
            raise CheckFailedError("the agent is not running")
        self._process = None
        process.send_signal(signal.SIGTERM)  # setpriv exec()s the agent: it is this process
        try:
            code: int | None = process.wait(timeout=AGENT_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        stop_process_group(process)  # what is left of its process group (the agent's rigctld)
        return code

    def log_tail(self, count: int) -> list[str]:
        return _log_tail(self.logs[-1], count) if self.logs else []


def _log_tail(path: Path, count: int = 20) -> list[str]:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace").splitlines()[-count:]
    return []


def wait_for_server(url: str, process: subprocess.Popen[str], log_path: Path) -> None:
    """Until `GET /health` answers 200 (bounded), or the server has exited."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise CheckFailedError(
                f"the server exited with {process.returncode}: {_log_tail(log_path)}"
            )
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as reply,
        ):
            if reply.status == 200:
                return
        if time.monotonic() >= deadline:
            raise CheckFailedError(f"the server did not answer in {READY_TIMEOUT_S} s")
        time.sleep(0.1)


def provision(python: str, data_dir: Path, url: str, env: Mapping[str, str]) -> dict[str, Any]:
    """One board provisioned in the server's database: its JSON line."""
    run = subprocess.run(
        [
            python, "-m", "radiocore", "board", "provision", "--data-dir", str(data_dir),
            "--base-url", url, "--qr-dir", str(data_dir / "qr"),
        ],
        cwd=REPO_ROOT, env=dict(env), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or len(lines) != 1:
        raise CheckFailedError(f"provisioning failed ({run.returncode}): {run.stderr[-2000:]}")
    board: dict[str, Any] = json.loads(lines[0])
    return board


# -- what the pages show ----------------------------------------------------------------------


def _text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def _visible(page: Page, selector: str) -> bool:
    return page.locator(selector).is_visible()


def _board_item(page: Page, board_id: str) -> str:
    return f'#my-boards li[data-board-id="{board_id}"]'


def _listen_presence(name: str) -> str:
    """The presence word of the board called `name` in the "Listen" page's station list."""
    return f"#boards li:has-text({json.dumps(name)}) .presence"


def _wait_text(page: Page, selector: str, wanted: str, timeout_s: float = 10) -> str:
    """Waits (bounded) until `selector`'s text contains `wanted`; the text."""
    locator = page.locator(selector)

    def probe() -> str | None:
        text = locator.inner_text().strip() if locator.count() == 1 else ""
        return text if wanted in text else None

    text: str = _wait_for(f"{selector} showing {wanted!r}", timeout_s, probe)
    return text


def _go(page: Page, nav: str) -> None:
    """Follows one of the navigation's links (a person's click)."""
    page.locator("#nav").get_by_role("link", name=nav, exact=True).click()


def register(page: Page, account: dict[str, str], callsign: str | None = None) -> None:
    form = page.locator("#register-form")
    form.get_by_label("Email").fill(account["email"])
    form.get_by_label("Password").fill(account["password"])
    form.get_by_label("Callsign").fill(callsign or account["callsign"])
    form.get_by_role("button", name="Create account").click()


def _signed_in_as(page: Page, callsign: str) -> None:
    _wait_text(page, "#whoami", callsign)


# -- the walk ---------------------------------------------------------------------------------


def owner_pairs(page: Page, board: dict[str, Any], result: dict[str, Any]) -> None:
    """Step 1: the pairing link, signed out -> register -> name -> paired, offline."""
    seen: dict[str, Any] = {}
    result["pairing"] = seen
    page.goto(board["pairing_link"], wait_until="load")
    _wait_js(page, "window.radiocore && window.radiocore.state === 'signed-out'")
    seen["pending_notice"] = _text(page, "#pair-pending") if _visible(page, "#pair-pending") else ""
    seen["sign_in_shown"] = _visible(page, "#login-form")
    page.locator("#login").get_by_role("link", name="Create one").click()
    page.locator("#register-form").wait_for(state="visible", timeout=5_000)
    seen["pending_notice_on_register"] = _visible(page, "#pair-pending")
    register(page, OWNER)
    page.locator("#pair-form").wait_for(state="visible", timeout=10_000)
    _signed_in_as(page, OWNER["callsign"])
    seen["pair_page_board_id"] = _text(page, "#pair-board-id")
    seen["url_on_pair_page"] = page.url
    page.get_by_label("Station name").fill(BOARD_NAME)
    page.get_by_role("button", name="Pair this board").click()
    item = _board_item(page, board["board_id"])
    page.locator(item).wait_for(state="visible", timeout=10_000)
    seen["listed_name"] = _text(page, f"{item} .board-name")
    seen["presence_before_agent"] = _text(page, f"{item} .presence")
    seen["url_after"] = page.url
    seen["manage_shown"] = _visible(page, "#manage")
    seen["manage_name"] = _text(page, "#manage-name")
    seen["listen_list"] = page.locator("#boards .board-name").all_inner_texts()
    page.evaluate(f"{NO_RELOAD_MARK} = true")


def board_goes_online(page: Page, board: dict[str, Any], result: dict[str, Any]) -> float:
    """Step 2 (the agent was just started): online in "my stations", no reload; seconds."""
    started = time.monotonic()
    item = _board_item(page, board["board_id"])
    _wait_text(page, f"{item} .presence", "online", ONLINE_TIMEOUT_S)
    result["online"] = {
        "after_s": round(time.monotonic() - started, 2),
        "presence": _text(page, f"{item} .presence"),
        "manage_presence": _text(page, "#manage-presence"),
        "same_document": page.evaluate(NO_RELOAD_MARK) is True,
        "dot_color": page.evaluate(
            "getComputedStyle(document.querySelector("
            f"'{item} .presence'), '::before').backgroundColor"
        ),
    }
    return float(result["online"]["after_s"])


def guest_registers_and_sees_nothing(
    page: Page, url: str, board: dict[str, Any], result: dict[str, Any]
) -> None:
    """Step 3: a refused callsign shown at its field; then no trace of the owner's board."""
    seen: dict[str, Any] = {}
    result["guest"] = seen
    page.goto(url, wait_until="load")
    _wait_js(page, "window.radiocore && window.radiocore.state === 'signed-out'")
    page.locator("#login").get_by_role("link", name="Create one").click()
    page.locator("#register-form").wait_for(state="visible", timeout=5_000)
    register(page, GUEST, callsign=BAD_CALLSIGN)
    seen["callsign_error"] = _wait_text(page, "#register-callsign-error", "callsign")
    seen["callsign_invalid"] = page.get_attribute("#register-callsign", "aria-invalid")
    seen["other_field_errors"] = [
        _text(page, "#register-email-error"),
        _text(page, "#register-password-error"),
        _text(page, "#register-error"),
    ]
    register(page, GUEST)
    _signed_in_as(page, GUEST["callsign"])
    seen["start_view_visible"] = _visible(page, "#console")
    _wait_for("the guest's empty station list", 10, lambda: _visible(page, "#boards-empty"))
    seen["listen_list"] = page.locator("#boards .board-name").all_inner_texts()
    _go(page, "My stations")
    seen["my_stations_status"] = _wait_text(page, "#my-stations-status", "No stations yet")
    seen["my_stations"] = page.locator("#my-boards .board-name").all_inner_texts()
    _go(page, "Public stations")
    _wait_text(page, "#public-status", "No public station")
    seen["public_before"] = page.locator("#public-list .board-name").all_inner_texts()

    # The sticker's link, used up: claiming the board fails (a new page load signs out).
    _sign_in(page, board["pairing_link"], GUEST["email"], GUEST["password"])
    page.locator("#pair-form").wait_for(state="visible", timeout=10_000)
    page.get_by_label("Station name").fill("Mine now")
    page.get_by_role("button", name="Pair this board").click()
    seen["hijack_error"] = _wait_for(
        "the refused pairing's message", 10, lambda: _text(page, "#pair-error")
    )
    _go(page, "My stations")
    _wait_text(page, "#my-stations-status", "No stations yet")
    seen["my_stations_after_hijack"] = page.locator("#my-boards .board-name").all_inner_texts()


def owner_makes_it_public(page: Page, board: dict[str, Any], result: dict[str, Any]) -> None:
    """Step 4a: locator, bands, public; the stored values come back canonical."""
    seen: dict[str, Any] = {}
    result["settings"] = seen
    form = page.locator("#settings-form")
    form.get_by_label("Locator").fill(LOCATOR_TYPED)
    form.get_by_label("Bands").fill(BANDS_TYPED)
    form.get_by_label("Public", exact=True).check()
    form.get_by_role("button", name="Save").click()
    _wait_text(page, "#settings-saved", "Saved")
    seen["locator_field"] = page.input_value("#settings-locator")
    seen["bands_field"] = page.input_value("#settings-bands")
    seen["summary"] = _text(page, f"{_board_item(page, board['board_id'])} .board-summary")
    # a price that is not one stays next to its field, and nothing is sent
    form.get_by_label("Price").fill("cheap")
    form.get_by_role("button", name="Save").click()
    seen["price_error"] = _wait_for(
        "the price error", 5, lambda: _text(page, "#settings-price-error")
    )
    form.get_by_label("Price").fill("")


def guest_books(page: Page, screenshot: Path, result: dict[str, Any]) -> None:
    """Step 4b: find by grid and band, book, the same slot again (409), my bookings, cancel."""
    seen: dict[str, Any] = {}
    result["booking"] = seen
    _go(page, "Public stations")
    filters = page.locator("#stations-filter")
    filters.get_by_label("Grid").fill("JO63")
    filters.get_by_label("Bands").fill("")
    filters.get_by_role("button", name="Search").click()
    seen["other_grid_status"] = _wait_text(page, "#public-status", "No public station")
    filters.get_by_label("Grid").fill("jo62")
    filters.get_by_label("Bands").fill("20m")
    filters.get_by_role("button", name="Search").click()
    _wait_text(page, "#public-status", "1 public station")
    seen["found"] = page.locator("#public-list .board-name").all_inner_texts()
    seen["found_summary"] = _text(page, "#public-list .board-summary")
    seen["found_presence"] = _text(page, "#public-list .presence")
    filters.get_by_label("Grid").fill("J062")  # a digit zero: not a locator
    filters.get_by_role("button", name="Search").click()
    seen["grid_error"] = _wait_for("the grid error", 5, lambda: _text(page, "#filter-grid-error"))
    filters.get_by_label("Grid").fill("JO62")
    filters.get_by_role("button", name="Search").click()
    _wait_text(page, "#public-status", "1 public station")

    page.get_by_role("button", name=f"Book {BOARD_NAME}").click()
    page.locator("#book").wait_for(state="visible", timeout=5_000)
    seen["start_default"] = page.input_value("#book-start")
    seen["start_hint"] = _text(page, "#book-start-hint")
    seen["browser_offset_min"] = page.evaluate("new Date().getTimezoneOffset()")
    page.locator("#book-form").get_by_label("Minutes").fill("30")
    with page.expect_request("**/book") as booking:
        page.get_by_role("button", name="Book", exact=True).click()
    seen["booked"] = _wait_text(page, "#book-result", "Booked")
    seen["request_body"] = booking.value.post_data_json
    page.get_by_role("button", name="Book", exact=True).click()
    seen["conflict"] = _wait_for("the overlap's message", 10, lambda: _text(page, "#book-error"))
    seen["result_after_conflict"] = _text(page, "#book-result")
    page.screenshot(path=str(screenshot))

    _go(page, "My bookings")
    _wait_for("the booking listed", 10, lambda: page.locator("#bookings-list li").count() == 1)
    seen["listed"] = _text(page, "#bookings-list li")
    page.locator("#bookings-list").get_by_role("button", name="Cancel").click()
    _wait_for("the booking gone", 10, lambda: page.locator("#bookings-list li").count() == 0)
    seen["after_cancel"] = _wait_text(page, "#bookings-status", "Cancelled")
    seen["listed_after_cancel"] = page.locator("#bookings-list li").count()


def owner_grants(page: Page, result: dict[str, Any]) -> None:
    """Step 5: a grant by email, listed, removed."""
    seen: dict[str, Any] = {}
    result["grants"] = seen
    grant = page.locator("#grant-form")
    grant.get_by_label("Their account's email").fill("nobody@example.org")
    grant.get_by_role("button", name="Give access").click()
    seen["unknown_email_error"] = _wait_for(
        "the unknown email's error", 5, lambda: _text(page, "#grant-error")
    )
    grant.get_by_label("Their account's email").fill(GUEST["email"])
    grant.get_by_label("Right").select_option("listen")
    grant.get_by_role("button", name="Give access").click()
    seen["granted"] = _wait_text(page, "#grants", GUEST["callsign"])
    page.get_by_role("button", name=f"Remove {GUEST['callsign']}").click()
    _wait_for("the grant removed", 10, lambda: _visible(page, "#grants-empty"))
    seen["after_remove"] = page.locator("#grants li").count()


def owner_listens(page: Page, board: dict[str, Any], result: dict[str, Any]) -> None:
    """Step 6a: join from the station list, listen, key PTT briefly."""
    seen: dict[str, Any] = {}
    result["listening"] = seen
    _go(page, "Listen")
    started = time.monotonic()
    page.locator("#boards").get_by_role("button", name=BOARD_NAME).click(timeout=10_000)
    _wait_js(page, "window.radiocore.state === 'connected'", timeout=15_000)
    seen["connected_s"] = round(time.monotonic() - started, 2)
    measure_listening(page, seen)
    seen["audio_element_muted"] = page.evaluate("document.getElementById('rx-audio').muted")
    _press_ptt_button(page)
    try:
        _wait_status(page, "status.ptt true", "s.ptt === true")
        time.sleep(PTT_HOLD_S)
    finally:
        page.mouse.up()
    _wait_status(page, "status.ptt false", "s.ptt === false")


def owner_sees_presence_follow_the_agent(
    page: Page, board: dict[str, Any], agent: Agent, result: dict[str, Any]
) -> None:
    """Step 7: leave; on the "Listen" page the agent stops -> offline, starts -> online; the
    page is the one of step 1 (never reloaded)."""
    seen: dict[str, Any] = {}
    result["presence"] = seen
    page.get_by_role("button", name="Leave").click()
    _wait_js(page, "window.radiocore.boardId === null", timeout=5_000)
    _go(page, "Listen")
    listen = _listen_presence(BOARD_NAME)
    mine = f"{_board_item(page, board['board_id'])} .presence"  # on a page not shown now
    seen["listen_before"] = _text(page, listen)

    stopping = time.monotonic()
    seen["agent_exit_code"] = agent.stop()
    seen["agent_exit_s"] = round(time.monotonic() - stopping, 2)
    _wait_text(page, listen, "offline", OFFLINE_TIMEOUT_S)
    seen["offline_s"] = round(time.monotonic() - stopping, 2)
    seen["listen_offline"] = _text(page, listen)
    seen["my_stations_offline"] = (page.locator(mine).text_content() or "").strip()
    seen["listen_visible"] = _visible(page, "#boards")
    seen["same_document_offline"] = page.evaluate(NO_RELOAD_MARK) is True

    starting = time.monotonic()
    agent.start()
    _wait_text(page, listen, "online", ONLINE_TIMEOUT_S)
    seen["online_again_s"] = round(time.monotonic() - starting, 2)
    seen["listen_online_again"] = _text(page, listen)
    seen["my_stations_online_again"] = (page.locator(mine).text_content() or "").strip()
    seen["same_document"] = page.evaluate(NO_RELOAD_MARK) is True


def owner_reads_log(page: Page, result: dict[str, Any]) -> None:
    """Step 8: the TX log of the board (the one short transmission of step 6)."""
    seen: dict[str, Any] = result.setdefault("release", {})
    _go(page, "My stations")
    page.get_by_role("button", name=f"Manage {BOARD_NAME}").click()
    page.get_by_role("button", name="Show the TX log").click()
    page.locator("#txlog").wait_for(state="visible", timeout=5_000)
    seen["tx_log"] = [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("#txlog-rows tr").all()
    ]


def _wait_rig_ptt(reader: RigReader, keyed: bool, timeout_s: float) -> float | None:
    """time.monotonic() when rigctld first answers PTT `keyed`, or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if reader.ptt() is keyed:
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        time.sleep(RIG_POLL_S)


def closing_the_tab_unkeys(browser: Any, url: str, agent: Agent, result: dict[str, Any]) -> None:
    """Step 9: in a fresh tab the owner holds PTT (mouse down, never up) and the tab is closed;
    the rig's PTT as rigctld itself says it, on a connection of this script's own."""
    seen: dict[str, Any] = {}
    result["tab_close"] = seen
    page = _new_page(browser, VIEWPORT)
    seen["console_errors"] = _collect_console(page)
    reader = RigReader.connect(agent.rigctld_port)
    try:
        seen["rig_ptt_before"] = reader.ptt()
        _sign_in(page, url, OWNER["email"], OWNER["password"])
        _signed_in_as(page, OWNER["callsign"])
        page.locator("#boards").get_by_role("button", name=BOARD_NAME).click(timeout=10_000)
        _wait_js(page, "window.radiocore.state === 'connected'", timeout=15_000)
        pressed = time.monotonic()
        _press_ptt_button(page)
        keyed_at = _wait_rig_ptt(reader, True, RIG_KEYED_TIMEOUT_S)
        seen["rig_keyed"] = keyed_at is not None
        seen["keyed_s"] = None if keyed_at is None else round(keyed_at - pressed, 2)
        seen["errors_before_close"] = _error_list(page)
        closing = time.monotonic()
        page.close()  # the mouse button still down: no release from the page's PTT
        seen["close_returned_s"] = round(time.monotonic() - closing, 2)
        unkeyed_at = _wait_rig_ptt(reader, False, RIG_UNKEYED_TIMEOUT_S)
        seen["rig_unkeyed"] = unkeyed_at is not None
        seen["unkeyed_s"] = None if unkeyed_at is None else round(unkeyed_at - closing, 2)
    finally:
        reader.close()
        with contextlib.suppress(PlaywrightError):
            page.context.close()


def owner_releases(page: Page, board: dict[str, Any], result: dict[str, Any]) -> None:
    """Step 10: release (confirmed, new credentials shown once); sign out."""
    seen: dict[str, Any] = result.setdefault("release", {})
    page.get_by_role("button", name="Release this station…").click()
    seen["confirm_text"] = _text(page, "#release-text")
    seen["still_listed_before_confirm"] = page.locator(_board_item(page, board["board_id"])).count()
    page.locator("#release-confirm").get_by_role("button", name="Release", exact=True).click()
    page.locator("#released").wait_for(state="visible", timeout=10_000)
    seen["released_name"] = _text(page, "#released-name")
    seen["new_code"] = _text(page, "#released-code")
    seen["new_secret_chars"] = len(_text(page, "#released-secret"))
    seen["listed_after"] = page.locator("#my-boards li").count()
    seen["status_after"] = _text(page, "#my-stations-status")
    # the station list (on the Listen page, hidden now) follows
    _wait_for("the station list emptied", 5, lambda: page.locator("#boards li").count() == 0)
    seen["listen_list_after"] = page.locator("#boards .board-name").all_inner_texts()
    page.get_by_role("button", name="Done").click()
    seen["credentials_after_done"] = [
        _visible(page, "#released"),
        page.evaluate("document.getElementById('released-code').textContent"),
    ]

    with page.expect_request("**/api/auth/logout", timeout=5_000) as logout:
        page.get_by_role("button", name="Sign out").click()
    seen["logout_method"] = logout.value.method
    seen["signed_out_form"] = _visible(page, "#login-form")
    seen["nav_after_sign_out"] = _visible(page, "#nav")


def run_pages(
    browser: Any,
    url: str,
    board: dict[str, Any],
    agent: Agent,
    screenshot: Path,
    result: dict[str, Any],
) -> None:
    csp: dict[str, list[dict[str, Any]]] = {}
    consoles: dict[str, list[str]] = {}
    result["csp_violations"] = csp
    result["console_errors"] = consoles

    owner = _new_page(browser, VIEWPORT)
    csp["owner"] = _collect_csp_violations(owner)
    consoles["owner"] = _collect_console(owner)
    guest = browser.new_context(viewport=VIEWPORT, timezone_id=GUEST_TIMEZONE).new_page()
    guest.set_default_timeout(15_000)
    csp["guest"] = _collect_csp_violations(guest)
    consoles["guest"] = _collect_console(guest)
    try:
        started = time.monotonic()
        owner_pairs(owner, board, result)
        result["paired_s"] = round(time.monotonic() - started, 2)
        owner.screenshot(path=str(screenshot.with_name(f"{screenshot.stem}-paired.png")))
        agent.start()
        board_goes_online(owner, board, result)
        owner.screenshot(path=str(screenshot))
        result["screenshot"] = str(screenshot)

        guest_registers_and_sees_nothing(guest, url, board, result)
        owner_makes_it_public(owner, board, result)
        guest_books(guest, screenshot.with_name(f"{screenshot.stem}-guest.png"), result)
        owner_grants(owner, result)
        owner_listens(owner, board, result)
        step = time.monotonic()
        owner_sees_presence_follow_the_agent(owner, board, agent, result)
        result["presence"]["step_s"] = round(time.monotonic() - step, 2)
        owner_reads_log(owner, result)
        step = time.monotonic()
        closing_the_tab_unkeys(browser, url, agent, result)
        result["tab_close"]["step_s"] = round(time.monotonic() - step, 2)
        owner_releases(owner, board, result)
    finally:
        for name, page in (("owner", owner), ("guest", guest)):
            with contextlib.suppress(PlaywrightError):
                result[f"errors_{name}"] = _error_list(page)
        for page in (owner, guest):
            with contextlib.suppress(PlaywrightError):
                page.evaluate("0")  # a round trip: reported events are in
                page.context.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False, "failure": None}
    result["walk"] = {
        "owner": {"email": OWNER["email"], "callsign": OWNER["callsign"]},
        "guest": {"email": GUEST["email"], "callsign": GUEST["callsign"]},
        "bad_callsign": BAD_CALLSIGN,
        "board_name": BOARD_NAME,
        "guest_timezone": GUEST_TIMEZONE,
    }
    _bring_up_loopback()
    work = Path(tempfile.mkdtemp(prefix="radiocore-sharing-"))
    server_log = work / "server.log"
    agent: Agent | None = None
    started = time.monotonic()
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = _server_environment(secrets.token_urlsafe(48))
        data_dir = work / "data"
        serve = [
            args.python, "-m", "radiocore", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--ice-host-address", "127.0.0.1",
        ]  # fmt: skip
        with running_process(serve, server_log, env, before_threads=True) as server:
            wait_for_server(url, server, server_log)
            result["server_ready_s"] = round(time.monotonic() - started, 2)
            board = provision(args.python, data_dir, url, env)
            result["provisioned"] = {
                "board_id": board["board_id"],
                "pairing_link": board["pairing_link"],
            }
            agent_env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOCORE_")}
            agent_env["RADIOCORE_AGENT_SECRET"] = board["secret"]
            rigctld_port = free_port()
            agent_command = [
                args.python, "-m", "board_agent", "--server", url,
                "--board-id", board["board_id"], "--ice-host-address", "127.0.0.1",
                # Hamlib's dummy rig behind a real rigctld (the agent runs it): its PTT is read
                # from rigctld itself; the dummy needs "-P RIG" on Hamlib 4.5
                "--rig", "hamlib", "--rig-model", "1", "--rig-ptt-type", "RIG",
                "--rigctld-port", str(rigctld_port),
            ]  # fmt: skip
            with (
                Agent(agent_command, agent_env, work, rigctld_port) as agent,
                sync_playwright() as playwright,
            ):
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
                )
                try:
                    result["browser_version"] = browser.version
                    run_pages(browser, url, board, agent, args.screenshot, result)
                finally:
                    browser.close()
        result["ok"] = True
    except (CheckFailedError, PlaywrightError) as exc:
        result["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        result["server_log_tail"] = _log_tail(server_log, 30)
        result["agent_log_tail"] = agent.log_tail(30) if agent is not None else []
    finally:
        result["run_s"] = round(time.monotonic() - started, 2)
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the server")
    args = parser.parse_args()
    return run_and_report(run, args)


if __name__ == "__main__":
    sys.exit(main())
