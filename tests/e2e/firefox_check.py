"""The operator console in real headless Firefox against the real demo server: listen, status, PTT.

Meant to run inside a private network namespace that has only loopback (nothing leaves the
machine):

    unshare -n python tests/e2e/firefox_check.py --screenshot /tmp/firefox.png

It brings `lo` up and sets it up the way Firefox needs (Firefox gathers ICE candidates only on
the address of the default route: `127.0.0.2/8` on `lo` and a default route via `lo` from
127.0.0.1), starts `python -m radiocore demo` (the server plus a simulated station whose rig is
Hamlib's dummy behind a real rigctld), waits for its `RADIOCORE_DEMO_READY {json}` line, then
runs `firefox_flow.mjs` with Node: Debian's firefox-esr driven headless by puppeteer-core over
WebDriver BiDi, in a temporary profile. That script signs in, chooses the station, measures the
inbound audio, reads the status the page renders, keys with the PTT button and with the space
bar, and reads the rig's PTT back from rigctld (`rigctld_port` of the ready line) on its own
connection while keyed and after each release.

It prints one JSON line (the flow's report plus the demo's timings; `ok` false and `failure`
say why it stopped early) and exits 0 when every step completed; `test_console_firefox.py`
judges the figures. The demo, Node and Firefox are always stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script: the repository's test helpers
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.console_check import (  # noqa: E402
    CheckFailedError,
    _bring_up_loopback,
    run_and_report,
    running_demo,
)

FLOW_SCRIPT = Path(__file__).resolve().parent / "firefox_flow.mjs"
# Firefox gathers host candidates only on the default route's address.
FIREFOX_LOOPBACK_COMMANDS = (
    ("ip", "addr", "add", "127.0.0.2/8", "dev", "lo"),
    ("ip", "route", "add", "default", "dev", "lo", "src", "127.0.0.1"),
)
# Node and Firefox starting (~6 s idle, over 20 s under a heavy load) plus the flow's own
# bounded waits (a run takes ~16 s on an idle machine).
FLOW_TIMEOUT_S = 90.0
PR_SET_PDEATHSIG = 1
# Loaded here, not in the forked child: the demo's stdout reader thread runs by then.
LIBC = ctypes.CDLL(None, use_errno=True)


def _own_group_dying_with_parent() -> None:
    """In the Node child: its own process group, and SIGTERM (on which puppeteer closes
    Firefox) when this script dies, even by SIGKILL."""
    os.setpgid(0, 0)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _set_up_firefox_loopback() -> None:
    for command in FIREFOX_LOOPBACK_COMMANDS:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CheckFailedError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")


def _processes_using(marker: str) -> list[int]:
    """Ids of the processes whose command line names `marker` (this run's Firefox profile)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _stop_leftover_firefox(profile: Path) -> list[int]:
    """Kills the Firefox processes of this run's profile that outlived the flow (there are none
    when puppeteer closed it); returns their ids."""
    leftovers = [pid for pid in _processes_using(str(profile)) if pid != os.getpid()]
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftovers


def run_flow(node: str, config: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Runs the Node flow (its own process group, killed with this script); its JSON report."""
    process = subprocess.Popen(
        [node, str(FLOW_SCRIPT), json.dumps(config)],
        cwd=REPO_ROOT,
        env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},  # no crash helper process
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_own_group_dying_with_parent,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        # SIGTERM first: puppeteer closes Firefox on it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate(timeout=5)
        raise CheckFailedError(
            f"the Firefox flow did not finish in {timeout_s} s; stderr: {stderr[-1500:]!r}"
        ) from None
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise CheckFailedError(
            f"the Firefox flow printed no JSON (exit {process.returncode}); "
            f"stdout: {stdout[-1000:]!r} stderr: {stderr[-1500:]!r}"
        )
    report: dict[str, Any] = json.loads(lines[-1])
    if not report.get("ok"):
        report["flow_stderr"] = stderr[-1500:]
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False, "failure": None}
    _bring_up_loopback()
    _set_up_firefox_loopback()
    data_dir = Path(tempfile.mkdtemp(prefix="radiocore-firefox-"))
    profile = data_dir / "firefox-profile"
    profile.mkdir()
    try:
        started = time.monotonic()
        with running_demo(args.python, args.demo_module, data_dir, args.ready_timeout) as demo:
            ready = demo.ready
            assert ready is not None  # running_demo yields only once ready
            result["demo_ready_s"] = round(time.monotonic() - started, 2)
            result["demo"] = {k: ready.get(k) for k in ("url", "board_id", "board_name")}
            rigctld_port = ready.get("rigctld_port")
            result["rigctld_port"] = rigctld_port
            if not isinstance(rigctld_port, int):
                raise CheckFailedError(
                    "the demo runs no rigctld (no Hamlib here): the rig's PTT cannot be read"
                )
            config = {
                "url": ready["url"],
                "email": ready["email"],
                "password": ready["password"],
                "boardName": ready["board_name"],
                "rigctldPort": rigctld_port,
                "profile": str(profile),
                "screenshot": str(args.screenshot),
            }
            flow_started = time.monotonic()
            try:
                flow = run_flow(args.node, config, FLOW_TIMEOUT_S)
            finally:
                result["leftover_firefox"] = _stop_leftover_firefox(profile)
            result["flow_s"] = round(time.monotonic() - flow_started, 2)
            result.update({k: v for k, v in flow.items() if k not in ("ok", "failure")})
            if not flow.get("ok"):
                result["demo_log_tail"] = demo.log_tail(20)
                raise CheckFailedError(f"Firefox: {flow.get('failure')}")
        result["ok"] = True
    except CheckFailedError as exc:
        result["failure"] = str(exc).splitlines()[0][:2000]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the demo")
    parser.add_argument(
        "--demo-module", default="radiocore", help="module whose `demo` command to run"
    )
    parser.add_argument("--node", default=shutil.which("node") or "node", help="Node.js")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds")
    args = parser.parse_args()
    return run_and_report(run, args)


if __name__ == "__main__":
    sys.exit(main())
