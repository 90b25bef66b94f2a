"""The station panel's and transmit side's steps of `console_check.py` (issue 9).

On the operator's page (the demo station's owner, listening, PTT released), each checked
against the rig itself: the demo's Hamlib dummy rig behind a real rigctld, whose port the
demo's ready line gives (`rigctld_port`); this module reads it on its own TCP connection
(`f` frequency, `m` mode, `t` PTT).

- the mouse wheel over the frequency display tunes by the chosen step (the target shown at once),
  a fast burst of notches goes out as fewer `freq` messages, the last one the final value;
- the arrow keys (Up one step, PageDown ten) tune the focused display; the step is remembered;
- band buttons tune into their band; a band outside the station's ranges is not offered;
- the rig tuned at the rig itself (rigctld `F`, as its VFO knob would) is followed by the page;
- mode buttons set the mode; the S-meter bar follows status readings on its S-unit scale;
- the microphone meter moves before keying; holding PTT keys the rig (rigctld `t` 1), the TX
  clock counts, a screenshot is taken on the air, and the release unkeys it;
- latching PTT asks before keying, stays keyed without a hand on it, the next press unkeys;
- a `floor_busy` refusal is said plainly, with the holder's callsign;
- in a touch context (a second page), a finger on PTT keys the rig, sliding off it unkeys, and
  the page does not scroll under the finger;
- on an insecure origin (http://10.77.0.1:port, forwarded to the demo; Chromium counts every
  127.0.0.0/8 address as secure) the transmit panel says why it cannot transmit.

Self-contained (no import of `console_check`, which imports this module).
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, Page, ViewportSize
from playwright.sync_api import Error as PlaywrightError

from bench.console_page import choose_station, poll, sign_in
from bench.rig_reader import RigReader

_T = TypeVar("_T")

RIG_WAIT_S = 5.0
METER_WAIT_S = 6.0
# an address on `lo` that Chromium does not count as a secure origin
INSECURE_ADDRESS = "10.77.0.1"
WHEEL_NOTCH_PX = 100
BURST_NOTCHES = 10
#: Where the rig is tuned at the rig itself (FT8 on 40 m), not from the page.
AT_THE_RIG_HZ = 7_074_000
TOUCH_VIEWPORT: ViewportSize = {"width": 390, "height": 700}
#: Where the PTT button is on the screen (viewport coordinates, CSS px).
PTT_TOP_JS = "document.getElementById('ptt').getBoundingClientRect().top"

# What the transmit side shows, in one round trip.
STATION_VIEW_JS = """
() => {
  const rc = window.radiocore;
  const text = (id) => document.getElementById(id).textContent.trim();
  const shown = (id) => {
    const e = document.getElementById(id);
    return !e.hidden && (e.checkVisibility ? e.checkVisibility() : e.offsetParent !== null);
  };
  const track = document.querySelector("#smeter-bar .smeter-track");
  const fill = document.querySelector("#smeter-bar .smeter-fill");
  return {
    ptt: rc.ptt,
    status_ptt: rc.lastStatus ? rc.lastStatus.ptt : null,
    status_freq: rc.lastStatus ? rc.lastStatus.freq : null,
    status_smeter: rc.lastStatus ? rc.lastStatus.smeter : null,
    freq_text: text("freq"),
    freq_pending: document.getElementById("freq").classList.contains("pending"),
    smeter_text: text("smeter"),
    smeter_fraction: track && fill
      ? fill.getBoundingClientRect().width / track.getBoundingClientRect().width : null,
    smeter_ticks: [...document.querySelectorAll("#smeter-bar .tick")]
      .map((t) => t.textContent).filter((t) => t),
    bands: [...document.querySelectorAll("#bands button")].map((b) => b.textContent),
    band_pressed: [...document.querySelectorAll("#bands button[aria-pressed=true]")]
      .map((b) => b.textContent),
    modes: [...document.querySelectorAll("#mode-buttons button")].map((b) => b.textContent),
    mode_pressed: [...document.querySelectorAll("#mode-buttons button[aria-pressed=true]")]
      .map((b) => b.textContent),
    mic_level: document.getElementById("mic-level").value,
    mic_level_shown: shown("mic-level"),
    tx_clock: text("tx-clock"),
    tx_clock_shown: shown("tx-clock"),
    tx_notice: text("tx-notice"),
    ptt_text: text("ptt"),
    ptt_hint: text("ptt-hint"),
    confirm_shown: shown("ptt-confirm"),
    insecure_shown: shown("tx-insecure"),
    insecure_text: text("tx-insecure"),
    transmit_shown: shown("transmit"),
    mic_status: text("mic-status"),
    secure_context: window.isSecureContext,
    ptt_log: rc.pttLog.map((e) => `${e.keyed ? "on" : "off"}:${e.why}`),
    scroll_y: window.scrollY,
    freq_sent: window.__stationFreqSent ? [...window.__stationFreqSent] : null,
  };
}
"""

# Records the `freq` messages the page sends on its control channel (after the check's own hook).
RECORD_FREQ_JS = """
() => {
  const channel = window.__rcControl;
  window.__stationFreqSent = [];
  if (channel.__stationWrapped) return;
  const send = channel.send;
  channel.send = (data) => {
    const text = String(data);
    if (text.includes('"type":"freq"')) window.__stationFreqSent.push(JSON.parse(text).value);
    return send(data);
  };
  channel.__stationWrapped = true;
}
"""

DELIVER_JS = f"""
(message) => {{
  const event = new MessageEvent("message", {{ data: JSON.stringify(message) }});
  window.__rcControl.dispatchEvent(event);
  return ({STATION_VIEW_JS})();
}}
"""

S9_DBM = -73
S0_DBM = S9_DBM - 54


class StationStepError(Exception):
    """A station step did not complete in its time bound."""


def s_meter_fraction(dbm: float | None) -> float:
    """The bar's expected fill (meter.js `sMeterFraction`): S0..S9 over the first 60 %,
    S9..S9+60 dB over the rest."""
    if dbm is None:
        return 0.0
    if dbm <= S9_DBM:
        fraction = 0.6 * (dbm - S0_DBM) / (S9_DBM - S0_DBM)
    else:
        fraction = 0.6 + 0.4 * (dbm - S9_DBM) / 60
    return min(1.0, max(0.0, fraction))


def step_frequency(hz: int, step: int, count: int) -> int:
    """dial.js `stepFrequency`: `count` steps from `hz` on the step's grid."""
    base = (hz // step) * step if count > 0 else -((-hz) // step) * step
    return base + count * step


def _ask_rig(port: int, read: Callable[[RigReader], _T]) -> _T:
    """One reading of the rig, from rigctld on a connection of its own."""
    reader = RigReader.connect(port)
    try:
        return read(reader)
    finally:
        reader.close()


def _poll(what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
    return poll(what, timeout_s, probe, error=StationStepError)


def _view(page: Page) -> dict[str, Any]:
    view: dict[str, Any] = page.evaluate(STATION_VIEW_JS)
    return view


def _rig_freq(port: int) -> int:
    return _ask_rig(port, RigReader.freq)


def _rig_ptt(port: int) -> int:
    return int(_ask_rig(port, RigReader.ptt))


def _wait_rig_freq(port: int, hz: int) -> int:
    try:
        return int(_poll(f"rigctld f == {hz}", RIG_WAIT_S, lambda: _rig_freq(port) == hz) and hz)
    except StationStepError:
        raise StationStepError(f"the rig stays on {_rig_freq(port)} Hz, not {hz}") from None


def _wait_rig_ptt(port: int, keyed: int) -> None:
    try:
        _poll(f"rigctld t == {keyed}", RIG_WAIT_S, lambda: _rig_ptt(port) == keyed)
    except StationStepError:
        raise StationStepError(f"rigctld t stays {_rig_ptt(port)}, not {keyed}") from None


def _center(page: Page, selector: str) -> tuple[float, float]:
    locator = page.locator(selector)
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    if box is None:
        raise StationStepError(f"{selector} is not visible")
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _wait_settled(page: Page, hz: int) -> dict[str, Any]:
    """The page's status shows `hz` and the display settled on it (no target pending)."""
    return dict(
        _poll(
            f"the page settles on {hz} Hz",
            RIG_WAIT_S,
            lambda: (v := _view(page))["status_freq"] == hz and not v["freq_pending"] and v,
        )
    )


def check_dial(page: Page, port: int, station: dict[str, Any]) -> None:
    """Wheel, arrow keys, step memory, band and mode buttons, read back from rigctld."""
    dial: dict[str, Any] = {}
    station["dial"] = dial
    page.evaluate(RECORD_FREQ_JS)
    page.select_option("#tuning-step", "1000")
    dial["stored_step"] = page.evaluate("localStorage.getItem('console.tuningStep')")
    start = _rig_freq(port)
    _wait_settled(page, start)
    dial["start"] = start

    # three notches up, one by one
    x, y = _center(page, "#freq")
    page.mouse.move(x, y)
    scroll_before = page.evaluate("window.scrollY")
    page.mouse.wheel(0, -WHEEL_NOTCH_PX)
    dial["first_notch_text"] = _view(page)["freq_text"]  # before any status came back
    page.mouse.wheel(0, -WHEEL_NOTCH_PX)
    page.mouse.wheel(0, -WHEEL_NOTCH_PX)
    wheel_target = step_frequency(start, 1000, 3)
    dial["wheel_target"] = wheel_target
    dial["wheel_rig"] = _wait_rig_freq(port, wheel_target)
    dial["wheel_view"] = _wait_settled(page, wheel_target)
    dial["page_scrolled"] = page.evaluate("window.scrollY") != scroll_before

    # a fast burst: fewer messages than notches, the last one the final value
    page.evaluate("window.__stationFreqSent = []")
    for _ in range(BURST_NOTCHES):
        page.mouse.wheel(0, WHEEL_NOTCH_PX)
    burst_target = step_frequency(wheel_target, 1000, -BURST_NOTCHES)
    dial["burst_target"] = burst_target
    dial["burst_rig"] = _wait_rig_freq(port, burst_target)
    _wait_settled(page, burst_target)
    dial["burst_sent"] = page.evaluate("window.__stationFreqSent")

    # the keyboard, on the focused display: Up one step, PageDown ten (of 100 Hz)
    page.select_option("#tuning-step", "100")
    dial["stored_step_after"] = page.evaluate("localStorage.getItem('console.tuningStep')")
    page.focus("#freq")
    page.keyboard.press("ArrowUp")
    up_target = step_frequency(burst_target, 100, 1)
    dial["key_up_rig"] = _wait_rig_freq(port, up_target)
    page.keyboard.press("PageDown")
    page_target = step_frequency(up_target, 100, -10)
    dial["key_page_rig"] = _wait_rig_freq(port, page_target)
    dial["key_targets"] = [up_target, page_target]
    dial["key_view"] = _wait_settled(page, page_target)
    page.select_option("#tuning-step", "1000")

    # band buttons: only bands the rig reaches; 40 m and 20 m tune into their band
    view = _view(page)
    dial["bands"] = view["bands"]
    for band, low, high in (("40m", 7_000_000, 7_300_000), ("20m", 14_000_000, 14_350_000)):
        page.locator("#bands button", has_text=re.compile(f"^{band}$")).click()

        def in_band(low: int = low, high: int = high) -> int | None:
            hz = _rig_freq(port)
            return hz if low <= hz <= high else None

        hz = _poll(f"the rig in the {band} band", RIG_WAIT_S, in_band)
        dial[f"band_{band}_rig"] = hz
        dial[f"band_{band}_view"] = _wait_settled(page, hz)

    # turned at the rig itself (its VFO knob, another program on its rigctld): the page follows
    _ask_rig(port, lambda reader: reader.set_freq(AT_THE_RIG_HZ))
    dial["at_the_rig_view"] = _wait_settled(page, AT_THE_RIG_HZ)

    capabilities = page.evaluate("window.radiocore.capabilities")
    dial["capabilities"] = capabilities
    narrow = {
        "type": "capabilities",
        "modes": ["USB", "LSB", "CW"],
        "freq_ranges": [{"low": 1_800_000, "high": 29_700_000}],
    }
    dial["narrow_bands"] = page.evaluate(DELIVER_JS, narrow)["bands"]
    if capabilities is not None:  # the station's own again
        page.evaluate(DELIVER_JS, {"type": "capabilities", **capabilities})
    dial["bands_restored"] = _view(page)["bands"]

    # mode buttons
    status_mode = page.evaluate("window.radiocore.lastStatus.mode")
    mode = "LSB" if status_mode != "LSB" else "USB"
    page.locator(f'#mode-buttons button[data-mode="{mode}"]').click()
    dial["mode"] = mode
    dial["rig_mode"] = _poll(
        f"rigctld m == {mode}",
        RIG_WAIT_S,
        lambda: (m := _ask_rig(port, RigReader.mode)) == mode and m,
    )
    _poll(
        "the page shows the mode",
        RIG_WAIT_S,
        lambda: page.evaluate("window.radiocore.lastStatus.mode") == mode,
    )
    dial["mode_view"] = _view(page)


def check_s_meter(page: Page, station: dict[str, Any]) -> None:
    """The bar against the station's own status, then two readings handed to the page."""
    meter: dict[str, Any] = {}
    station["s_meter"] = meter
    meter["real"] = _poll(
        "a status with an S-meter reading",
        RIG_WAIT_S,
        lambda: (v := _view(page))["status_smeter"] is not None and v,
    )
    status = page.evaluate("window.radiocore.lastStatus")
    readings = {}
    for dbm in (-53, -109, -73):
        view = page.evaluate(DELIVER_JS, {**status, "smeter": dbm})
        readings[str(dbm)] = {
            "text": view["smeter_text"],
            "fraction": view["smeter_fraction"],
            "expected": s_meter_fraction(dbm),
        }
    meter["readings"] = readings
    meter["ticks"] = _view(page)["smeter_ticks"]
    meter["real_expected"] = s_meter_fraction(meter["real"]["status_smeter"])


def check_ptt(page: Page, port: int, station: dict[str, Any]) -> None:
    """The microphone meter before keying; a held PTT keys the rig, the clock counts."""
    ptt: dict[str, Any] = {}
    station["ptt"] = ptt
    levels: list[float] = []

    def mic_moves() -> bool:
        view = _view(page)
        levels.append(view["mic_level"])
        return view["ptt"] is False and view["mic_level_shown"] and view["mic_level"] > 0

    with contextlib.suppress(StationStepError):  # judged by the test
        _poll("the microphone meter moves", METER_WAIT_S, mic_moves)
    ptt["mic_levels_max"] = max(levels, default=0)
    ptt["idle_view"] = _view(page)
    ptt["rig_ptt_before"] = _rig_ptt(port)

    x, y = _center(page, "#ptt")
    page.mouse.move(x, y)
    page.mouse.down()
    try:
        _wait_rig_ptt(port, 1)
        ptt["rig_ptt_held"] = _rig_ptt(port)
        ptt["keyed_view"] = _view(page)
        ptt["clock_later"] = _poll(
            "the TX clock counts",
            RIG_WAIT_S,
            lambda: (
                (t := _view(page)["tx_clock"]).startswith("On air 0:0")
                and not t.startswith("On air 0:00")
                and t
            ),
        )
        ptt["floor"] = page.evaluate("window.radiocore.floor")
    finally:
        page.mouse.up()
    _wait_rig_ptt(port, 0)
    ptt["rig_ptt_released"] = _rig_ptt(port)
    _poll("the page unkeyed", RIG_WAIT_S, lambda: _view(page)["status_ptt"] is False)
    ptt["released_view"] = _view(page)


def check_latching(page: Page, port: int, screenshot: Path, station: dict[str, Any]) -> None:
    """Latching PTT: a press asks; Cancel keys nothing; Transmit keys until the next press.
    The screenshot on the air is taken then: no pointer is held, so a full-page capture cannot
    unkey it."""
    latch: dict[str, Any] = {}
    station["latching"] = latch
    page.check("#ptt-latch")
    latch["hint"] = _view(page)["ptt_hint"]
    page.click("#ptt")
    latch["asked_view"] = _view(page)
    page.click("#ptt-confirm-no")
    time.sleep(0.3)
    latch["cancelled_view"] = _view(page)
    latch["rig_ptt_cancelled"] = _rig_ptt(port)

    page.click("#ptt")
    page.click("#ptt-confirm-yes")
    _wait_rig_ptt(port, 1)
    time.sleep(1.2)  # hands off: still keyed (keep-alives keep the floor)
    latch["latched_view"] = _view(page)
    latch["rig_ptt_latched"] = _rig_ptt(port)
    tx_shot = screenshot.with_name("console-station-tx.png")
    page.screenshot(path=str(tx_shot), full_page=True)
    latch["screenshot"] = str(tx_shot)
    page.click("#ptt")
    _wait_rig_ptt(port, 0)
    latch["rig_ptt_unlatched"] = _rig_ptt(port)
    _poll("the page unkeyed", RIG_WAIT_S, lambda: _view(page)["ptt"] is False)
    latch["unlatched_view"] = _view(page)
    page.uncheck("#ptt-latch")
    _poll("status.ptt false", RIG_WAIT_S, lambda: _view(page)["status_ptt"] is False)


def check_floor_busy(page: Page, station: dict[str, Any]) -> None:
    """A refused PTT: the notice names who holds the floor."""
    view = page.evaluate(
        DELIVER_JS,
        {"type": "error", "code": "floor_busy", "message": "DL9XYZ is transmitting", "ref": "ptt"},
    )
    station["floor_busy_notice"] = view["tx_notice"]


def _sign_in_and_join(page: Page, url: str, ready: dict[str, Any]) -> None:
    sign_in(page, url, ready["email"], ready["password"], error=StationStepError)
    choose_station(page, ready["board_name"])


def check_touch(browser: Browser, url: str, ready: dict[str, Any], station: dict[str, Any]) -> None:
    """A finger on PTT (touch pointer events from the browser's own touch input): keys the rig
    while held, lifting unkeys; sliding off the button unkeys; the page does not scroll."""
    touch: dict[str, Any] = {}
    station["touch"] = touch
    port = ready["rigctld_port"]
    context = browser.new_context(viewport=TOUCH_VIEWPORT, has_touch=True, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _sign_in_and_join(page, url, ready)
        _poll(
            "PTT usable on the touch page",
            15,
            lambda: page.evaluate(
                "window.radiocore.state === 'connected' && window.radiocore.mic === 'ready'"
                " && !document.getElementById('ptt').disabled"
            ),
        )
        cdp = context.new_cdp_session(page)
        x, y = _center(page, "#ptt")
        touch["scroll_before"] = page.evaluate("window.scrollY")
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}
        )
        _wait_rig_ptt(port, 1)
        touch["held_view"] = _view(page)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        _wait_rig_ptt(port, 0)
        touch["lifted_view"] = _view(page)

        # slide off the button while held: unkeys, and the page does not scroll
        x, y = _center(page, "#ptt")
        before = page.evaluate("window.scrollY")
        top_before = page.evaluate(PTT_TOP_JS)
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}
        )
        _wait_rig_ptt(port, 1)
        for offset in range(20, 241, 20):
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": "touchMove", "touchPoints": [{"x": x, "y": y - offset}]},
            )
        _wait_rig_ptt(port, 0)
        touch["slid_view"] = _view(page)
        touch["scrolled_by"] = page.evaluate("window.scrollY") - before
        # what the finger feels: the button stays put under it (the browser's scroll anchoring
        # may move scrollY while the roster or TX lines above change height; that is fine)
        touch["ptt_moved_by"] = page.evaluate(PTT_TOP_JS) - top_before
        touch["selection"] = page.evaluate("String(window.getSelection())")
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        touch["after_view"] = _view(page)
    finally:
        touch["page_errors"] = errors
        context.close()


@contextlib.contextmanager
def _forwarder(listen: tuple[str, int], target: tuple[str, int]) -> Iterator[None]:
    """Forwards TCP connections from `listen` to `target` (threads; ends with the block)."""
    server = socket.create_server(listen)
    server.settimeout(0.2)
    stop = threading.Event()

    def pipe(client: socket.socket) -> None:
        with client, socket.create_connection(target, timeout=5) as upstream:
            selector = selectors.DefaultSelector()
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=pipe, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def check_insecure_origin(
    browser: Browser, url: str, ready: dict[str, Any], station: dict[str, Any]
) -> None:
    """The console opened on http://10.77.0.1:port (forwarded to the demo): the transmit panel
    says it cannot transmit on an insecure page, and how to fix it."""
    insecure: dict[str, Any] = {}
    station["insecure"] = insecure
    demo_port = int(url.rstrip("/").rsplit(":", 1)[1].split("/")[0])
    added = subprocess.run(
        ["ip", "addr", "add", f"{INSECURE_ADDRESS}/32", "dev", "lo"], capture_output=True, text=True
    )
    if added.returncode != 0:
        insecure["skipped"] = f"ip addr add: {added.stderr.strip()}"
        return
    context = browser.new_context()
    try:
        probe = socket.create_server((INSECURE_ADDRESS, 0))
        port = probe.getsockname()[1]
        probe.close()
        with _forwarder((INSECURE_ADDRESS, port), ("127.0.0.1", demo_port)):
            page = context.new_page()
            insecure_url = f"http://{INSECURE_ADDRESS}:{port}/"
            insecure["url"] = insecure_url
            _sign_in_and_join(page, insecure_url, ready)
            insecure["view"] = _poll(
                "the transmit panel on the insecure page",
                15,
                lambda: (v := _view(page))["transmit_shown"] and v["insecure_shown"] and v,
            )
    finally:
        context.close()
        subprocess.run(["ip", "addr", "del", f"{INSECURE_ADDRESS}/32", "dev", "lo"], check=False)


def check_station(
    browser: Browser,
    page: Page,
    url: str,
    ready: dict[str, Any],
    screenshot: Path,
    result: dict[str, Any],
) -> None:
    """Every station step; fills `result["station"]` as it goes (`failure` says where one
    stopped: the other helpers' steps go on)."""
    station: dict[str, Any] = {"failure": None}
    result["station"] = station
    port = ready.get("rigctld_port")
    station["rigctld_port"] = port
    if port is None:
        station["failure"] = "the demo runs no rigctld (Hamlib missing)"
        return
    try:
        check_dial(page, port, station)
        check_s_meter(page, station)
        check_ptt(page, port, station)
        check_latching(page, port, screenshot, station)
        check_floor_busy(page, station)
        check_touch(browser, url, ready, station)
        check_insecure_origin(browser, url, ready, station)
    except (StationStepError, PlaywrightError, OSError, ValueError) as exc:
        station["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
        with contextlib.suppress(PlaywrightError):
            page.mouse.up()
            page.uncheck("#ptt-latch", timeout=2_000)  # unkeys a latched PTT
