"""The operator console in real headless Chromium against the real demo server, end to end.

Meant to run inside a private network namespace that has only loopback, so neither Chromium
nor aioice can use the machine's other interfaces and no packet leaves the machine:

    unshare -n python tests/e2e/console_check.py --screenshot /tmp/console.png

It brings `lo` up, starts `python -m signaling.cli demo` (the server on SQLite plus a simulated
station sending a ~1 kHz tone and a status message every second) in its own process group,
waits for its `RADIOCORE_DEMO_READY {json}` line, then drives Chromium like a person:

1. signs in with a wrong password and reads the error the form shows;
2. signs in properly, clicks the station, and polls `pc.getStats()` until the inbound audio
   `packetsReceived` grows over a ~2 s window and `audioLevel > 0`, waits for two or more
   status messages and reads what the page renders (frequency, mode, S-meter, errors).

It prints one JSON line with what it saw (`ok` false and `failure` say why it stopped early)
and exits 0 when every step completed; the pytest wrapper (`test_console_chromium.py`) judges
the figures. The demo is always stopped, and dies with this script if it is killed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
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
)
READY_PREFIX = "RADIOCORE_DEMO_READY "
STATS_WINDOW_S = 2.0
POLL_INTERVAL_S = 0.2
# A wrong password makes the browser log the 401 of the login request; that one is expected.
EXPECTED_LOGIN_CONSOLE_ERROR = re.compile(r"Failed to load resource: .*\b401\b")

INBOUND_AUDIO_JS = """
async () => {
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
  return found;
}
"""

PR_SET_PDEATHSIG = 1


class CheckFailedError(Exception):
    """A step did not complete in its time bound; the message says which."""


@dataclass
class Demo:
    """The demo server process and what it printed (stdout kept, bounded)."""

    process: subprocess.Popen[str]
    log_path: Path
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    ready: dict[str, Any] | None = None
    ready_event: threading.Event = field(default_factory=threading.Event)

    def read_stdout(self) -> None:
        assert self.process.stdout is not None  # Popen(stdout=PIPE)
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            if self.ready is None and line.startswith(READY_PREFIX):
                with contextlib.suppress(ValueError):
                    self.ready = json.loads(line[len(READY_PREFIX) :])
                    self.ready_event.set()
        self.ready_event.set()  # stdout closed: the demo has ended

    def log_tail(self, count: int = 40) -> list[str]:
        lines = list(self.lines)[-count:]
        with contextlib.suppress(OSError):
            lines += self.log_path.read_text(errors="replace").splitlines()[-count:]
        return lines


def _die_with_parent() -> None:
    """In the demo child: own process group, and SIGTERM when this script dies (even by KILL)."""
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bring_up_loopback() -> None:
    """`ip link set lo up`, after checking that loopback is all this namespace has."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if line]
    others = [name for name in names if name != "lo"]
    if others:
        raise CheckFailedError(
            f"not in an isolated network namespace (interfaces {others}); run under `unshare -n`"
        )
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


@contextlib.contextmanager
def running_demo(python: str, module: str, data_dir: Path, ready_timeout: float) -> Iterator[Demo]:
    port = _free_port()
    log_path = data_dir / "demo.log"
    command = [
        python,
        "-m",
        module,
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir / "demo"),
        "--ice-host-address",
        "127.0.0.1",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            # no other thread exists yet, so preexec_fn is safe here
            preexec_fn=_die_with_parent,
        )
    demo = Demo(process=process, log_path=log_path)
    reader = threading.Thread(target=demo.read_stdout, name="demo-stdout", daemon=True)
    reader.start()
    try:
        if not demo.ready_event.wait(ready_timeout) or demo.ready is None:
            status = process.poll()
            why = (
                f"exited with {status}" if status is not None else f"not ready in {ready_timeout} s"
            )
            raise CheckFailedError(f"demo {why}; log tail: {demo.log_tail(15)}")
        yield demo
    finally:
        _stop(process)
        reader.join(timeout=5)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM the demo's process group, then SIGKILL whatever is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # children that outlived the leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _inbound_audio(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] | None = page.evaluate(INBOUND_AUDIO_JS)
    if stats is None:
        raise CheckFailedError(
            f"no inbound audio stats (state {page.evaluate('window.radiocore.state')})"
        )
    return stats


def _wait_for(description: str, timeout: float, probe: Any) -> Any:
    """Calls `probe()` every POLL_INTERVAL_S until it returns something truthy, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise CheckFailedError(f"{description}: not within {timeout} s")
        time.sleep(POLL_INTERVAL_S)


def _sign_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_function("window.radiocore && window.radiocore.state === 'signed-out'")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def check_wrong_password(page: Page, url: str, email: str, password: str) -> dict[str, Any]:
    _sign_in(page, url, email, password + "-wrong")
    error = page.locator("#login-error")
    _wait_for("login error shown", 10, lambda: error.inner_text().strip())
    return {
        "login_error": error.inner_text().strip(),
        "last_error": page.evaluate("window.radiocore.lastError"),
        "login_form_visible": page.locator("#login-form").is_visible(),
        "console_visible": page.locator("#console").is_visible(),
    }


def check_listening(
    page: Page, url: str, ready: dict[str, Any], screenshot: Path, result: dict[str, Any]
) -> None:
    """Fills `result` as it goes, so a failure still reports how far it got."""
    started = time.monotonic()
    _sign_in(page, url, ready["email"], ready["password"])
    board = page.get_by_role("button", name=re.compile(re.escape(ready["board_name"])))
    board.first.click(timeout=15_000)  # waits until the station shows online (enabled)
    page.wait_for_function("window.radiocore.state === 'connected'", timeout=15_000)
    result["connected_s"] = round(time.monotonic() - started, 2)

    first = _wait_for(
        "inbound audio packets",
        10,
        lambda: (s := _inbound_audio(page))["packetsReceived"] > 0 and s,
    )
    result["packets_first"] = first["packetsReceived"]
    window_start = time.monotonic()
    level = first["audioLevel"] or 0.0
    while time.monotonic() - window_start < STATS_WINDOW_S:
        time.sleep(POLL_INTERVAL_S)
        level = max(level, _inbound_audio(page)["audioLevel"] or 0.0)
    later = _inbound_audio(page)
    result["packets_later"] = later["packetsReceived"]
    result["packets_window_s"] = round(time.monotonic() - window_start, 2)
    result["bytes_received"] = later["bytesReceived"]
    if level <= 0:  # playout may start a little after the first packets
        level = _wait_for("audioLevel > 0", 5, lambda: _inbound_audio(page)["audioLevel"] or 0.0)
    result["audio_level"] = level

    page.wait_for_function("window.radiocore.statusCount >= 2", timeout=10_000)
    result["status_count"] = page.evaluate("window.radiocore.statusCount")
    result["last_status"] = page.evaluate("window.radiocore.lastStatus")
    for key, selector in (
        ("freq_text", "#freq"),
        ("mode_text", "#mode"),
        ("smeter_text", "#smeter"),
        ("status_count_text", "#status-count"),
        ("conn_state_text", "#conn-state"),
        ("tx_text", "#tx-indicator"),
    ):
        result[key] = page.locator(selector).inner_text().strip()
    result["audio_element"] = page.evaluate(
        "(() => { const a = document.getElementById('rx-audio');"
        " return {paused: a.paused, muted: a.muted, hasStream: a.srcObject !== null}; })()"
    )
    result["state"] = page.evaluate("window.radiocore.state")
    page.screenshot(path=str(screenshot), full_page=True)
    result["screenshot"] = str(screenshot)


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False, "failure": None}
    _bring_up_loopback()
    data_dir = Path(tempfile.mkdtemp(prefix="radiocore-e2e-"))
    demo: Demo | None = None
    try:
        started = time.monotonic()
        with running_demo(args.python, args.demo_module, data_dir, args.ready_timeout) as demo:
            ready = demo.ready
            assert ready is not None  # running_demo yields only once ready
            result["demo_ready_s"] = round(time.monotonic() - started, 2)
            result["demo"] = {k: ready.get(k) for k in ("url", "board_id", "board_name")}
            url = ready["url"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS), headless=True
                )
                try:
                    result["browser_version"] = browser.version
                    login_page = browser.new_context().new_page()
                    login_page.set_default_timeout(15_000)
                    login_console = _collect_console(login_page)
                    wrong = check_wrong_password(login_page, url, ready["email"], ready["password"])
                    wrong["console_errors"] = [
                        text
                        for text in login_console
                        if not EXPECTED_LOGIN_CONSOLE_ERROR.search(text)
                    ]
                    result["wrong_password"] = wrong
                    login_page.context.close()

                    page = browser.new_context().new_page()
                    page.set_default_timeout(15_000)
                    console_errors = _collect_console(page)
                    result["console_errors"] = console_errors
                    try:
                        check_listening(page, url, ready, args.screenshot, result)
                    finally:
                        result["errors"] = [
                            item.strip()
                            for item in page.locator("#error-list li").all_inner_texts()
                        ]
                        result["last_error"] = _safe_evaluate(page, "window.radiocore.lastError")
                finally:
                    browser.close()
        result["ok"] = True
    except (CheckFailedError, PlaywrightError) as exc:
        result["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        if demo is not None:
            result["demo_log_tail"] = demo.log_tail()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def _collect_console(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of `page`, as they happen."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return errors


def _safe_evaluate(page: Page, expression: str) -> Any:
    try:
        return page.evaluate(expression)
    except PlaywrightError as exc:
        return f"unavailable: {exc}".splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the demo")
    parser.add_argument(
        "--demo-module", default="signaling.cli", help="module whose `demo` command to run"
    )
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds")
    args = parser.parse_args()
    try:
        result = run(args)
    except CheckFailedError as exc:
        result = {"ok": False, "failure": str(exc)}
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
