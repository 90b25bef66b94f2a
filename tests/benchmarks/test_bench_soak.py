"""`radiocore bench soak` runs end to end, short, and reports what it promises: samples over
time, every steady listener hearing the station, PTT cycled and never left keyed at the rig,
the agent and the operator reconnected (the 30-minute targets are judged in the report, not
here)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.soak import asyncio_tasks
from tests.support.rigctld import require_rigctld

SAMPLE_FIELDS = {
    "t_s",
    "rss_mb",
    "fds",
    "tasks",
    "threads",
    "station_packets",
    "churning_listeners",
    "steady_ratio_min",
}
TARGETS = {
    "rss_growth_le_5_pct",
    "no_fd_growth",
    "no_task_growth",
    "every_listener_ge_99_pct",
    "no_ptt_left_keyed",
}


def test_bench_soak_short_run_keeps_listeners_hearing_and_never_leaves_the_rig_keyed() -> None:
    require_rigctld()
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "soak", "--minutes", "0.5",
         "--listeners", "2", "--churn", "1", "--sample-s", "2", "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["listeners"] == 2

    samples = report["samples"]
    assert len(samples) >= 5
    for sample in samples:
        assert set(sample) == SAMPLE_FIELDS
        assert sample["rss_mb"] > 0 and sample["fds"] > 0
    # the station's audio reached the server over the run
    assert samples[-1]["station_packets"] > samples[0]["station_packets"]

    summary = report["summary"]
    assert len(summary["listener_packet_ratios"]) == 2
    assert all(ratio > 0 for ratio in summary["listener_packet_ratios"])  # each heard the station
    assert summary["listener_packet_ratio_min"] > 0
    assert summary["ptt_cycles"] > 0
    assert summary["ptt_left_keyed"] == 0
    assert summary["ptt_keyed_at_end"] is False
    assert summary["agent_reconnects"] > 0
    assert summary["operator_reconnects"] > 0
    assert summary["reconnects"] == summary["agent_reconnects"] + summary["operator_reconnects"]
    assert summary["agent_reconnect_failures"] == 0
    assert summary["churn"]["joins"] > 0 and summary["churn"]["heard_audio"] > 0
    assert isinstance(summary["rss_growth_pct"], float)
    assert isinstance(summary["fd_growth"], int | float)
    assert set(summary["targets"]) == TARGETS
    assert summary["targets"]["no_ptt_left_keyed"] is True
    assert isinstance(summary["targets_met"], bool)


def test_asyncio_tasks_reads_the_gauge_from_prometheus_text() -> None:
    text = (
        "# HELP radiocore_asyncio_tasks Tasks on the event loop\n"
        "# TYPE radiocore_asyncio_tasks gauge\n"
        "radiocore_asyncio_tasks_total_other 3.0\n"
        "radiocore_asyncio_tasks 42.0\n"
    )
    assert asyncio_tasks(text) == 42
    assert asyncio_tasks('radiocore_asyncio_tasks{node="a"} 7\n') == 7
    assert asyncio_tasks("radiocore_rooms 1\n") is None
