"""`radiocore bench sfu` runs end to end and reports what it promises (figures are not judged
here: speed targets live in the benchmark's output, not in assertions)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_sfu_reports_every_field_and_loses_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "sfu", "--listeners", "4",
         "--seconds", "3", "--listener-processes", "1", "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for field in (
        "listeners",
        "packets_sent",
        "packets_received_min_pct",
        "payload_identical",
        "server_cpu_us_per_forwarded_packet",
        "added_latency_ms_p50",
        "added_latency_ms_p99",
        "server_rss_mb",
    ):
        assert field in figures, field
    assert figures["listeners"] == 4
    assert figures["packets_sent"] >= 100
    assert figures["payload_identical"] is True
    assert figures["packets_received_min_pct"] >= 95.0
