"""`radiocore bench faults` runs end to end and reports per fault what it promises (the release
times themselves are judged by tests/integration/test_kill_matrix.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.rigctld import require_rigctld


def test_bench_faults_reports_each_fault_it_ran() -> None:
    require_rigctld()
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "faults", "--rounds", "1",
         "--faults", "operator_sigkill,agent_sigkill", "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rounds_per_fault"] == 1
    assert set(report["faults"]) == {"operator_sigkill", "agent_sigkill"}
    for fault, figures in report["faults"].items():
        assert figures["failed_rounds"] == [], (fault, figures)
        assert figures["rounds"] == 1
        assert figures["rekeyed_after_heal"] == 0
        assert isinstance(figures["release_ms_p50"], float) and figures["release_ms_p50"] > 0


def test_bench_faults_refuses_an_unknown_fault() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "faults", "--faults", "power_cut"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown fault(s) power_cut" in result.stderr
