"""The console getting the audio back by itself after a network change (issue 9): a step of
`console_check.py`.

In a fresh context the station's owner signs in and listens. Once the page hears the station
(the inbound audio's `packetsReceived` grows), the check finds this page's media flow (the
selected candidate pairs' remote ports in `getStats()`: the SFU's UDP port for this peer
connection; the station's agent and the other pages use other ports) and cuts it silently: an
nftables table of its own in the check's network namespace drops every UDP datagram to or from
that port on `lo`, at the input hook (the sender's `sendto` still succeeds: nobody is told).

Every ~0.2 s it records what the page shows (the link line's activity, the transmit notice,
`window.radiocore.state`, the peer connection's state): the page must say the audio is
interrupted, then that it is reconnecting (web/src/recovery.js), and join again by itself (a new
peer connection) without a reload (a marker on `window` survives). The cut is held for at least
`MIN_CUT_S` (longer than the console's 6 s grace) and until the rejoin has started, then the
table is deleted; the new connection's audio must flow (packets grow, `audioLevel` > 0) and the
station's status keep arriving, within bounds.

Self-contained (no import of `console_check`, which imports this module).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page
from playwright.sync_api import Error as PlaywrightError

from bench.console_page import INBOUND_AUDIO_JS, choose_station, poll, sign_in

CUT_TABLE = "rc_recovery_cut"
#: The console waits 6 s (`DISCONNECTED_GRACE_MS`) before it acts on `disconnected`.
MIN_CUT_S = 8.0
#: Bound on the cut: disconnected (~6 s in Chromium here) + the 6 s grace + the first 1 s pause.
MAX_CUT_S = 16.0
SAMPLE_INTERVAL_S = 0.2
#: From the heal to the new connection's audio heard.
AUDIO_BACK_S = 20.0
HEAR_S = 15.0
STATUS_AFTER_S = 5.0
CLEARED_S = 3.0

RECOVERY_VIEW_JS = """
() => {
  const rc = window.radiocore;
  const text = (id) => {
    const e = document.getElementById(id);
    return e ? e.textContent.trim() : null;
  };
  const pc = rc.pc;
  return {
    activity: text("link-activity"),
    link_level: document.getElementById("link-quality").dataset.level,
    notice: text("tx-notice"),
    state: rc.state,
    connection: pc ? pc.connectionState : null,
    same_pc: pc !== null && pc === window.__recoveryOldPc,
    marker: window.__recoveryMarker === "same document",
  };
}
"""


# The remote ports of the selected candidate pairs (one per transport; one with BUNDLE).
SELECTED_PORTS_JS = """
async () => {
  const pc = window.radiocore.pc;
  const report = await pc.getStats();
  const ports = [];
  const locals = [];
  report.forEach((s) => {
    if (s.type !== "transport" || !s.selectedCandidatePairId) return;
    const pair = report.get(s.selectedCandidatePairId);
    const remote = pair && report.get(pair.remoteCandidateId);
    const local = pair && report.get(pair.localCandidateId);
    if (remote && typeof remote.port === "number") ports.push(remote.port);
    if (local && typeof local.port === "number") locals.push(local.port);
  });
  return { remote: ports, local: locals };
}
"""


class RecoveryStepError(Exception):
    """A recovery step did not complete in its time bound."""


def _cut_table(ports: list[int]) -> str:
    """Drops UDP to and from `ports` as it arrives on `lo` (after the sender's `sendto`)."""
    listed = ", ".join(str(port) for port in sorted(set(ports)))
    return (
        f"table inet {CUT_TABLE} {{\n"
        "  chain input {\n"
        "    type filter hook input priority -100; policy accept;\n"
        f'    iifname "lo" udp dport {{ {listed} }} drop\n'
        f'    iifname "lo" udp sport {{ {listed} }} drop\n'
        "  }\n"
        "}\n"
    )


def _nft(args: list[str], stdin: str | None = None) -> None:
    run = subprocess.run(
        ["nft", *args], input=stdin, capture_output=True, text=True, timeout=10, check=False
    )
    if run.returncode != 0:
        raise RecoveryStepError(f"nft {' '.join(args)} failed: {run.stderr.strip()}")


def _poll(what: str, seconds: float, probe: Any) -> Any:
    return poll(what, seconds, probe, error=RecoveryStepError, interval_s=0.1)


def _inbound(page: Page) -> dict[str, Any]:
    return page.evaluate(INBOUND_AUDIO_JS, "__recoveryOldPc") or {}


def check_recovery(
    browser: Browser, url: str, ready: dict[str, Any], result: dict[str, Any]
) -> None:
    """Cuts this page's media flow, watches the page say so and rejoin, heals, hears it again."""
    recovery: dict[str, Any] = {}
    result["recovery"] = recovery
    if shutil.which("nft") is None:
        recovery["nft_missing"] = True
        return
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page_errors: list[str] = []
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", on_console)
    timeline: list[dict[str, Any]] = []
    recovery["timeline"] = timeline
    cut = False
    try:
        sign_in(page, url, ready["email"], ready["password"], error=RecoveryStepError)
        choose_station(page, ready["board_name"])
        _poll(
            "connected before the cut",
            HEAR_S,
            lambda: page.evaluate("window.radiocore.state === 'connected'"),
        )
        page.evaluate(
            "window.__recoveryMarker = 'same document';"
            " window.__recoveryOldPc = window.radiocore.pc"
        )
        first = _poll(
            "inbound audio before the cut", HEAR_S, lambda: _inbound(page).get("packetsReceived")
        )
        recovery["packets_before"] = _poll(
            "inbound audio growing before the cut",
            5,
            lambda: (n := _inbound(page).get("packetsReceived") or 0) > first and n,
        )
        ports = page.evaluate(SELECTED_PORTS_JS)
        recovery["ports"] = ports
        if not ports["remote"]:
            raise RecoveryStepError(f"no selected candidate pair in getStats: {ports}")

        _nft(["-f", "-"], stdin=_cut_table(ports["remote"]))
        cut = True
        cut_at = time.monotonic()
        recovery["view_at_cut"] = page.evaluate(RECOVERY_VIEW_JS)
        rejoin_s: float | None = None
        while True:
            now = time.monotonic() - cut_at
            view = page.evaluate(RECOVERY_VIEW_JS)
            view["t"] = round(now, 2)
            view["phase"] = "cut"
            timeline.append(view)
            if rejoin_s is None and not view["same_pc"]:
                rejoin_s = now
            if (rejoin_s is not None and now >= MIN_CUT_S) or now >= MAX_CUT_S:
                break
            time.sleep(SAMPLE_INTERVAL_S)
        recovery["rejoin_started_s"] = None if rejoin_s is None else round(rejoin_s, 2)

        _nft(["delete", "table", "inet", CUT_TABLE])
        cut = False
        healed_at = time.monotonic()
        recovery["cut_held_s"] = round(healed_at - cut_at, 2)

        # the new connection's audio: packets grow, and the <audio> element plays sound
        audio_back_s: float | None = None
        packets_first: int | None = None
        while time.monotonic() - healed_at < AUDIO_BACK_S:
            now = time.monotonic() - healed_at
            view = page.evaluate(RECOVERY_VIEW_JS)
            view["t"] = round(now + recovery["cut_held_s"], 2)
            view["phase"] = "healed"
            inbound = _inbound(page)
            view["inbound"] = inbound
            timeline.append(view)
            if inbound and not inbound["same_pc"] and view["connection"] == "connected":
                packets = inbound.get("packetsReceived") or 0
                if packets_first is None and packets > 0:
                    packets_first = packets
                elif (
                    packets_first is not None
                    and packets > packets_first
                    and (inbound.get("audioLevel") or 0) > 0
                ):
                    audio_back_s = now
                    recovery["audio_after"] = inbound
                    break
            time.sleep(SAMPLE_INTERVAL_S)
        recovery["audio_back_s"] = None if audio_back_s is None else round(audio_back_s, 2)
        recovery["audio_back_after_cut_s"] = (
            None if audio_back_s is None else round(recovery["cut_held_s"] + audio_back_s, 2)
        )
        # once the audio is back, the line shows the link's figures again, the notice is gone
        try:
            _poll(
                "the recovery's words cleared",
                CLEARED_S,
                lambda: page.evaluate(
                    "document.getElementById('link-activity').textContent === ''"
                    " && document.getElementById('tx-notice').textContent === ''"
                ),
            )
            recovery["words_cleared"] = True
        except RecoveryStepError:
            recovery["words_cleared"] = False
        recovery["view_after"] = page.evaluate(RECOVERY_VIEW_JS)

        # the station still works: its status keeps arriving on the new connection
        try:
            start = page.evaluate("window.radiocore.statusCount")
            _poll(
                "status updates after the recovery",
                STATUS_AFTER_S,
                lambda: page.evaluate("window.radiocore.statusCount") >= start + 2,
            )
            recovery["status_after"] = page.evaluate("window.radiocore.lastStatus")
            recovery["status_count_after"] = page.evaluate("window.radiocore.statusCount")
        except RecoveryStepError:
            recovery["status_after"] = None
        _summarise(recovery, timeline)
    except (RecoveryStepError, PlaywrightError) as exc:
        recovery["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    finally:
        if cut:
            try:
                _nft(["delete", "table", "inet", CUT_TABLE])
            except RecoveryStepError as exc:
                recovery["cleanup_failure"] = str(exc)
        recovery["page_errors"] = page_errors
        recovery["console_errors"] = console_errors
        context.close()


def _summarise(recovery: dict[str, Any], timeline: list[dict[str, Any]]) -> None:
    """When each wording first showed (seconds after the cut), and what the page went through."""

    def first(predicate: Any) -> float | None:
        return next((view["t"] for view in timeline if predicate(view)), None)

    def says(view: dict[str, Any], word: str) -> bool:
        return word in f"{view['activity']} {view['notice']}".lower()

    recovery["interrupted_shown_s"] = first(lambda v: says(v, "interrupted"))
    recovery["reconnecting_shown_s"] = first(lambda v: says(v, "reconnecting"))
    recovery["disconnected_s"] = first(
        lambda v: v["same_pc"] and v["connection"] in ("disconnected", "failed")
    )
    recovery["no_reload"] = all(view["marker"] for view in timeline)
    shown: list[str] = []
    for view in timeline:
        for text in (view["activity"], view["notice"]):
            if text and text not in shown:
                shown.append(text)
    recovery["texts_shown"] = shown
    recovery["states"] = list(dict.fromkeys(f"{v['state']}/{v['connection']}" for v in timeline))
