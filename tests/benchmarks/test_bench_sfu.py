"""`radiocore bench sfu` runs end to end and reports what it promises (figures are not judged
here: speed targets live in the benchmark's output, not in assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.tools import free_udp_port
from tests.support.coturn import require_coturn

#: What the plain run printed before `--relay` existed: other tooling reads these.
PLAIN_FIELDS = (
    "listeners",
    "seconds",
    "packets_sent",
    "packets_received_min_pct",
    "payload_identical",
    "packets_forwarded",
    "server_cpu_us_per_forwarded_packet",
    "server_cpu_pct",
    "added_latency_ms_p50",
    "added_latency_ms_p99",
    "latency_samples",
    "server_rss_mb",
    "packets_dropped",
)
JOIN_FIELDS = (
    "join_to_first_audio_ms_p50",
    "join_to_first_audio_ms_p99",
    "join_to_first_audio_ms_max",
)
#: The server with every listener connected and no audio, and forwarding's own cost.
IDLE_FIELDS = ("server_idle_cpu_pct", "server_marginal_cpu_us_per_forwarded_packet")
#: The kernel's share of the server's CPU in the window (system time over user + system).
KERNEL_FIELDS = ("server_kernel_cpu_share",)
#: Every run has them: the server's workers and forwarding_lane settings, each worker's added
#: latency p99 (its own samples), and the listeners each process serves (the main process first).
WORKER_FIELDS = (
    "workers", "lane", "udp_port", "worker_added_latency_ms_p99", "listeners_per_process",
)  # fmt: skip
#: `--control` (every run has them, None when not measured): the status fan-out to listeners
#: over their control data channels, and its cost from a second idle window without status.
CONTROL_FIELDS = (
    "control_channels",
    "status_hz",
    "status_received_min_per_s",
    "server_idle_no_status_cpu_pct",
    "server_cpu_us_per_status_delivered",
)


def bench_sfu(*extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "radiocore", "bench", "sfu", "--listener-processes", "1",
         "--json", *extra],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def assert_every_listener_heard_everything(phase: dict[str, Any], listeners: int) -> None:
    assert phase["listeners"] == listeners
    assert phase["packets_sent"] >= 100
    assert phase["payload_identical"] is True
    assert phase["packets_received_min_pct"] >= 95.0
    assert phase["join_to_first_audio_count"] == listeners  # every listener heard a first packet
    for field in JOIN_FIELDS:
        assert isinstance(phase[field], float), field


def test_bench_sfu_reports_every_field_and_loses_nothing() -> None:
    port = free_udp_port()  # every peer connection on one port: the batched send's best case
    figures = bench_sfu(
        "--control", "--listeners", "4", "--seconds", "3", "--idle-seconds", "1",
        "--udp-port", str(port),
    )  # fmt: skip
    assert figures["udp_port"] == port
    assert set(figures) == {
        *PLAIN_FIELDS, *JOIN_FIELDS, *IDLE_FIELDS, *CONTROL_FIELDS, *WORKER_FIELDS,
        *KERNEL_FIELDS, "join_to_first_audio_count", "server_rss_kb_per_listener",
        "delivery_ms_p50", "delivery_ms_p99",
    }  # fmt: skip
    assert figures["workers"] == 1 and figures["listeners_per_process"] == [4]
    # the listeners' share of the server's memory: measured from before the first joined
    assert isinstance(figures["server_rss_kb_per_listener"], float)
    assert_every_listener_heard_everything(figures, 4)  # audio came back after the idle time
    assert isinstance(figures["server_cpu_us_per_forwarded_packet"], float)
    assert 0.0 <= figures["server_kernel_cpu_share"] <= 1.0
    for field in IDLE_FIELDS:
        assert isinstance(figures[field], float), field
    # every listener's control channel carried the station's status, at about 5 Hz (the default)
    assert figures["control_channels"] is True
    assert figures["status_hz"] == 5.0
    assert figures["status_received_min_per_s"] >= 3.0
    assert isinstance(figures["server_idle_no_status_cpu_pct"], float)
    # a CPU difference over 1 s may come out at or below 0 here; it is a number all the same
    assert isinstance(figures["server_cpu_us_per_status_delivered"], float)


def test_bench_sfu_relay_measures_the_direct_path_then_every_listener_through_coturn() -> None:
    require_coturn()
    figures = bench_sfu("--relay", "--listeners", "5", "--seconds", "3", "--idle-seconds", "0")
    direct, relay = figures["direct"], figures["relay"]
    for phase in (direct, relay):
        assert set(PLAIN_FIELDS) <= set(phase)
        assert set(CONTROL_FIELDS) <= set(phase)
        assert_every_listener_heard_everything(phase, 5)
        assert phase["packets_forwarded"] >= 5 * 100
    # the relay phase really went through coturn, and the direct one did not
    assert relay["relayed_listeners"] == 5
    assert direct["relayed_listeners"] == 0
    assert isinstance(relay["coturn_cpu_pct"], float)
    assert isinstance(relay["coturn_cpu_us_per_relayed_packet"], float)
    assert "coturn_cpu_pct" not in direct
    for phase in (direct, relay):
        assert isinstance(phase["delivery_ms_p50"], float)
        assert isinstance(phase["delivery_ms_p99"], float)
        # --idle-seconds 0: no idle window, and the output says so rather than inventing one
        assert phase["server_idle_cpu_pct"] is None
        assert phase["server_marginal_cpu_us_per_forwarded_packet"] is None
        # no --control: no control channels, nothing measured of them
        assert phase["control_channels"] is False
        for field in CONTROL_FIELDS[1:]:
            assert phase[field] is None, field
    assert figures["relay_to_direct_server_cpu_per_packet"] == round(
        relay["server_cpu_us_per_forwarded_packet"] / direct["server_cpu_us_per_forwarded_packet"],
        3,
    )


def test_bench_sfu_with_two_workers_spreads_the_listeners_and_loses_nothing() -> None:
    figures = bench_sfu(
        "--workers", "2", "--listeners", "6", "--seconds", "3", "--idle-seconds", "0"
    )
    assert figures["workers"] == 2
    # the least loaded process each time: the main process counts the worker's relay
    assert figures["listeners_per_process"] == [3, 3], figures
    assert_every_listener_heard_everything(figures, 6)
    assert len(figures["worker_added_latency_ms_p99"]) == 1
    # what a listener on the worker waits includes the relay hop: measured end to end
    assert isinstance(figures["delivery_ms_p99"], float)


def test_bench_sfu_lane_both_runs_the_compiled_and_the_python_lane_and_loses_nothing() -> None:
    figures = bench_sfu(
        "--lane", "both", "--listeners", "3", "--seconds", "3", "--idle-seconds", "0"
    )
    assert [run["lane"] for side in ("compiled", "python") for run in figures["runs"][side]] == [
        "compiled",
        "python",
    ]
    for side in ("compiled", "python"):
        assert_every_listener_heard_everything(figures["runs"][side][0], 3)
        assert figures[side]["server_cpu_us_per_forwarded_packet"] > 0
    ratio = figures["ratio_compiled_to_python"]["server_cpu_us_per_forwarded_packet"]
    assert ratio == round(
        figures["compiled"]["server_cpu_us_per_forwarded_packet"]
        / figures["python"]["server_cpu_us_per_forwarded_packet"],
        3,
    )
    assert figures["payload_identical"] is True
