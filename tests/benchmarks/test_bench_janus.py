"""`radiocore bench sfu --compare-janus` runs RadioCore's SFU and Janus (its harness, the same
aiortc listeners) in one invocation and divides their figures. Figures are not judged here
(targets live in the benchmark's output): what is checked is that both sides really forwarded
every packet byte-identical to every listener, and that each ratio is the division it claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.janus import DEFAULT_HARNESS, HARNESS_PLACES, JANUS
from tests.support.components import require


def test_compare_janus_measures_both_servers_in_one_run() -> None:
    require(os.access(JANUS, os.X_OK), f"Janus is not installed at {JANUS} (Debian: janus)")
    if not (DEFAULT_HARNESS / "bench.py").is_file():
        # the harness is the lab's anchor, kept outside this repository (not a package)
        reason = f"the Janus harness is in none of {[str(p) for p in HARNESS_PLACES]}"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    listeners = 3
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "sfu", "--compare-janus", "--json",
         "--listener-processes", "1", "--listeners", str(listeners), "--seconds", "3",
         "--idle-seconds", "1"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["listeners"] == listeners
    assert figures["janus_event_loops"] == 2
    # both servers delivered every packet of the window, byte-identical, to every listener
    assert figures["payload_identical"] == {"radiocore": True, "janus": True}
    assert figures["packets_received_min_pct"]["radiocore"] >= 95.0
    assert figures["packets_received_min_pct"]["janus"] >= 95.0
    (ours,) = figures["radiocore_runs"]
    (janus,) = figures["janus_runs"]
    assert janus["listeners_connected"] == listeners
    assert ours["packets_forwarded"] >= listeners * 100
    assert figures["ratio_cpu_per_packet"] == round(
        figures["radiocore_cpu_us_per_forwarded_packet"]
        / figures["janus_cpu_us_per_forwarded_packet"],
        3,
    )
    assert (
        figures["radiocore_cpu_us_per_forwarded_packet"]
        == ours["server_cpu_us_per_forwarded_packet"]
    )
    assert (
        figures["janus_cpu_us_per_forwarded_packet"] == janus["server_cpu_us_per_forwarded_packet"]
    )
    assert isinstance(figures["radiocore_rss_kb_per_listener"], float)
