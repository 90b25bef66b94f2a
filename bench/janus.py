"""`radiocore bench sfu --compare-janus`: RadioCore's SFU and Janus measured in one invocation.

Janus is the bar for the SFU's cost per forwarded packet. Its harness lives outside this
repository (`../shared/anchors/janus/`, or `--janus-harness DIR`): one plain-RTP Opus source
fanned out by the Streaming plugin to N aiortc listeners that tap RTP after SRTP decryption,
Janus's own CPU (`/proc/<pid>/stat`) over a steady window after an idle window. `bench sfu`
measures RadioCore the same way (the board agent's Opus track as the source, the same aiortc
tap, the server's `cpu_times()`), so the two figures divide into a ratio.

The machines are shared and noisy: the sides run back to back in one invocation, and with
`--rounds 2` in the order RadioCore, Janus, Janus, RadioCore (each side's median is used), so
a load change during the run falls on both sides alike. The harness runs with this
interpreter (it needs aiortc and aiohttp, which the `[server]` extra has), in a temporary copy
(it caches its Opus frames beside itself; the original may be read-only), inside the private
network namespace it makes for itself (`unshare -n`: root or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

JANUS: Final = "/usr/bin/janus"
#: Where the harness sits on the lab machines: beside this repository's checkout, else at the
#: lab's fixed path (a clone elsewhere, e.g. a CI workspace).
HARNESS_PLACES: Final = (
    Path(__file__).resolve().parents[2] / "shared" / "anchors" / "janus",
    Path("/work/shared/anchors/janus"),
)
DEFAULT_HARNESS: Final = next(
    (place for place in HARNESS_PLACES if (place / "bench.py").is_file()), HARNESS_PLACES[0]
)
#: The issue's bar: Janus with two shared event loops (its fastest set-up measured here).
DEFAULT_EVENT_LOOPS: Final = 2
#: Janus's setup (~7 s at 400 listeners), its idle and warm-up windows, and slack.
_HARNESS_OVERHEAD_S: Final = 120.0


def missing_janus(harness: Path) -> str | None:
    """Why the comparison cannot run here (with what to install), or None."""
    if not os.access(JANUS, os.X_OK):
        return f"Janus is not installed at {JANUS} (Debian: apt-get install janus)"
    if not (harness / "bench.py").is_file():
        return f"the Janus harness is not at {harness} (bench.py missing; --janus-harness DIR)"
    return None


def run_janus(
    harness: Path, listeners: int, seconds: float, idle_seconds: float, event_loops: int
) -> dict[str, Any]:
    """One run of the Janus harness: its JSON result. Raises RuntimeError if it fails."""
    with tempfile.TemporaryDirectory(prefix="radiocore-janus-") as tmp:
        copy = Path(tmp) / "janus"
        shutil.copytree(harness, copy, ignore=shutil.ignore_patterns(".venv", "results"))
        command = [
            sys.executable, str(copy / "bench.py"),
            "--listeners", str(listeners),
            "--seconds", str(seconds),
            "--idle-seconds", str(idle_seconds),
            "--event-loops", str(event_loops),
            # the other side of the comparison just ran: do not wait for a quiet machine or
            # retry (both sides see the same machine; the ratio is the figure)
            "--quiet-pct", "200", "--quiet-timeout", "5", "--attempts", "1",
        ]  # fmt: skip
        print(f"[bench] Janus, {listeners} listeners, event_loops {event_loops}", file=sys.stderr)
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_HARNESS_OVERHEAD_S + seconds + idle_seconds + listeners * 0.5,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"the Janus harness failed (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def median(values: list[float | None]) -> float | None:
    """The median of the values present, rounded to 0.01 (None: none present)."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours is not None and theirs else None


def comparison(
    ours: list[dict[str, Any]], janus: list[dict[str, Any]], event_loops: int
) -> dict[str, Any]:
    """Both sides' runs and their medians, and RadioCore ÷ Janus for each figure (below 1:
    RadioCore spends less)."""
    cpu = median([r["server_cpu_us_per_forwarded_packet"] for r in ours])
    janus_cpu = median([r["server_cpu_us_per_forwarded_packet"] for r in janus])
    marginal = median([r["server_marginal_cpu_us_per_forwarded_packet"] for r in ours])
    janus_marginal = median([r["server_cpu_us_per_forwarded_packet_minus_idle"] for r in janus])
    idle = median([r["server_idle_cpu_pct"] for r in ours])
    janus_idle = median([r["server_idle_cpu_pct"] for r in janus])
    rss = median([r["server_rss_mb"] for r in ours])
    janus_rss = median([r["server_rss_mb"] for r in janus])
    per_listener = median([r.get("server_rss_kb_per_listener") for r in ours])
    return {
        "listeners": ours[0]["listeners"],
        "seconds": ours[0]["seconds"],
        "janus_event_loops": event_loops,
        "radiocore_cpu_us_per_forwarded_packet": cpu,
        "janus_cpu_us_per_forwarded_packet": janus_cpu,
        "ratio_cpu_per_packet": _ratio(cpu, janus_cpu),
        "radiocore_marginal_cpu_us_per_forwarded_packet": marginal,
        "janus_marginal_cpu_us_per_forwarded_packet": janus_marginal,
        "ratio_marginal_cpu_per_packet": _ratio(marginal, janus_marginal),
        "radiocore_idle_cpu_pct": idle,
        "janus_idle_cpu_pct": janus_idle,
        "ratio_idle_cpu": _ratio(idle, janus_idle),
        "radiocore_rss_mb": rss,
        "janus_rss_mb": janus_rss,
        "ratio_rss": _ratio(rss, janus_rss),
        "radiocore_rss_kb_per_listener": per_listener,
        "packets_received_min_pct": {
            "radiocore": min(r["packets_received_min_pct"] for r in ours),
            "janus": min(r["packets_received_min_pct"] for r in janus),
        },
        "payload_identical": {
            "radiocore": all(r["payload_identical"] for r in ours),
            "janus": all(r["payload_identical"] for r in janus),
        },
        "added_latency_ms_p99": {
            # not the same measurement: RadioCore's is its own ingress -> egress, Janus's the
            # listener's arrival time (its Python listener stack included)
            "radiocore_server": median([r["added_latency_ms_p99"] for r in ours]),
            "janus_listener_side": median([r["added_latency_ms_p99"] for r in janus]),
        },
        "radiocore_runs": ours,
        "janus_runs": janus,
    }
