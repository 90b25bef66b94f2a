"""`radiocore bench join`: many operators choosing one station at the same instant — how long
from their `join` to the first audio packet.

Every component is real and on loopback (`bench.faults.Station`): rigctld with Hamlib's dummy
rig, `radiocore serve`, the board agent with its tone. The operators run in `--processes` child
processes (aiortc, as the soak's listeners), each first connected to `/operator` as the console
is after sign-in; then all are told one start instant, and each does what the console does when
a station is chosen: `join`, an offer with a receiving audio m-line and the control data channel,
the answer applied. Each records on one clock (`time.time()`): the start, the `join` answer, the
offer's answer, its first RTP packet.

Prints one JSON object: join -> first audio p50/p95/p99/max over the operators that heard audio,
its parts (join answered, offer answered, answer -> first packet), refusals by error code,
errors, and the server's CPU over that time (its workers' included) per join and as a share of
one core — the server's own cost, whatever the co-located operators take. The operators' own
cost is inside the latency figures (aiortc's ICE and DTLS handshakes on cores the server
shares): they bound from above what the server adds. With `--prepared` each operator
makes its peer connection and offer (a key pair, a certificate, the SDP) before the start, as
browsers would each on their own machine; the handshakes stay in the figure. Exit 0 when the
run completed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from bench.faults import Station
from bench.sfu import ServerTree, cpu_seconds
from bench.soak import Ear, RefusedError, _wait_online, connect_ear, join_board, prepare_offer
from bench.tools import LISTENER_EMAIL, login, percentile_ms, seed_listener, wait_workers

#: The issue's target: join -> first audio p99 for 50 operators joining at once.
TARGET_P99_MS: Final = 500.0
#: Bound on the wait for every operator's first packet after the start.
HEAR_WITHIN_S: Final = 30.0
#: The start instant is this far after every process said it is connected.
START_MARGIN_S: Final = 0.5


def _operators(
    url: str, token: str, board_id: str, count: int, prepared: bool, pipe: Connection
) -> None:
    asyncio.run(_run_operators(url, token, board_id, count, prepared, pipe))


async def _run_operators(
    url: str, token: str, board_id: str, count: int, prepared: bool, pipe: Connection
) -> None:
    """Connect `count` operators (with `prepared`, each with its peer connection and offer
    made), say "connected", wait for ("start", at), join them all at `at`, then send ("done",
    rows) once each heard audio or failed (bounded)."""
    from bench.tools import use_loopback_ice

    use_loopback_ice()
    ears = [Ear(keep_arrivals=False) for _ in range(count)]
    step = "connecting"
    try:
        await asyncio.gather(*(connect_ear(url, token, ear) for ear in ears))
        if prepared:
            step = "preparing the offers"
            await asyncio.gather(*(prepare_offer(ear) for ear in ears))
    except Exception as exc:
        pipe.send(("error", f"{step}: {exc!r}"))
        return
    pipe.send(("connected", count))
    command, start_at = await asyncio.to_thread(pipe.recv)
    assert command == "start"
    await asyncio.sleep(max(0.0, start_at - time.time()))
    outcomes: list[str] = ["ok"] * count

    async def one(index: int) -> None:
        try:
            await join_board(board_id, ears[index])
        except RefusedError as refused:
            outcomes[index] = f"refused:{refused.code}"
        except Exception as exc:  # told in the report
            outcomes[index] = f"error:{type(exc).__name__}: {exc}"

    await asyncio.gather(*(one(i) for i in range(count)))
    for _ in range(int(HEAR_WITHIN_S / 0.05)):  # bounded: everyone's first packet
        if all(
            ear.first_at is not None or outcome != "ok"
            for ear, outcome in zip(ears, outcomes, strict=True)
        ):
            break
        await asyncio.sleep(0.05)
    rows = [
        {
            "start": start_at,
            "joined": ear.joined_at,
            "answered": ear.answered_at,
            "first_packet": ear.first_at,
            "outcome": outcome,
        }
        for ear, outcome in zip(ears, outcomes, strict=True)
    ]
    pipe.send(("done", rows))
    for ear in ears:
        with contextlib.suppress(Exception):
            await ear.leave(board_id, say_leave=False)


def summarize(rows: list[dict[str, Any]], operators: int) -> dict[str, Any]:
    """The figures of one run from every operator's row."""
    heard = [r for r in rows if r["outcome"] == "ok" and r["first_packet"] is not None]
    outcomes = collections.Counter(r["outcome"] for r in rows if r["outcome"] != "ok")
    silent = sum(1 for r in rows if r["outcome"] == "ok" and r["first_packet"] is None)

    def span(since: str, until: str) -> list[float]:
        return [r[until] - r[since] for r in heard if r[since] is not None and r[until] is not None]

    total = span("start", "first_packet")
    p99 = percentile_ms(total, 99)
    return {
        "operators": operators,
        "heard_audio": len(heard),
        "heard_nothing": silent,
        "refused_or_failed": dict(outcomes),
        "join_to_first_audio_ms_p50": percentile_ms(total, 50),
        "join_to_first_audio_ms_p95": percentile_ms(total, 95),
        "join_to_first_audio_ms_p99": p99,
        "join_to_first_audio_ms_max": round(max(total) * 1000, 2) if total else None,
        "join_answered_ms_p99": percentile_ms(span("start", "joined"), 99),
        "offer_answered_ms_p99": percentile_ms(span("start", "answered"), 99),
        "answer_to_first_packet_ms_p99": percentile_ms(span("answered", "first_packet"), 99),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99 is not None and p99 <= TARGET_P99_MS and len(heard) == operators,
    }


def run_join_bench(args: argparse.Namespace) -> int:
    rigctld = shutil.which("rigctld")
    if rigctld is None:
        print("radiocore bench join: needs Hamlib's rigctld (libhamlib-utils)", file=sys.stderr)
        return 2
    if not 1 <= args.operators <= 1000 or not 1 <= args.processes <= 16:
        print("radiocore bench join: --operators 1 … 1000, --processes 1 … 16", file=sys.stderr)
        return 2
    # one bench account for every operator: its per-account bound raised to hold them all
    config = (
        f"udp_port = {args.udp_port}\n"  # [ice], which the station's config opens
        f"[limits]\nmax_connections_per_user = {args.operators + 1}\n"
    )
    with tempfile.TemporaryDirectory(prefix="radiocore-bench-join-") as tmp:
        # the workers from the start: the operators are spread from the first
        top = f"workers = {args.workers}\nworker_spill_listeners = 0\n"
        station = Station(Path(tmp), rigctld, extra_config=config, top_config=top)
        try:
            token = station.token
            if args.workers > 1:  # operators who may only listen: spread over the workers
                asyncio.run(seed_listener(Path(tmp), station.board_id))
                token = login(station.url, LISTENER_EMAIL)
                wait_workers(station.url, args.workers - 1)
            result = _run(station, args.operators, args.processes, token, args.prepared)
            result["workers"] = args.workers
            result["prepared"] = args.prepared
            result["udp_port"] = args.udp_port
        finally:
            station.close()
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _run(
    station: Station, operators: int, processes: int, token: str, prepared: bool
) -> dict[str, Any]:
    if not _wait_online(station, station.token, True, 30):
        return {"ok": False, "failure": "the station did not come online"}
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no server state
    shares = [operators // processes + (1 if i < operators % processes else 0)
              for i in range(processes)]  # fmt: skip
    children = []
    for share in (s for s in shares if s):
        ours, theirs = context.Pipe()
        child = context.Process(
            target=_operators,
            args=(station.url, token, station.board_id, share, prepared, theirs),
            daemon=True,
        )
        child.start()
        children.append((child, ours))
    try:
        for _, pipe in children:
            if not pipe.poll(60):
                return {"ok": False, "failure": "an operator process did not connect in 60 s"}
            message = pipe.recv()
            if message[0] != "connected":
                return {"ok": False, "failure": str(message[1])}
        start_at = time.time() + START_MARGIN_S
        for _, pipe in children:
            pipe.send(("start", start_at))
        server = ServerTree(station.server.pid)  # with its workers
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = cpu_seconds(server.cpu_times())
        rows: list[dict[str, Any]] = []
        for _, pipe in children:
            if not pipe.poll(HEAR_WITHIN_S + 30):
                return {"ok": False, "failure": "an operator process did not report"}
            kind, data = pipe.recv()
            if kind != "done":
                return {"ok": False, "failure": str(data)}
            rows.extend(data)
        cpu_s = cpu_seconds(server.cpu_times()) - cpu_before
        window_s = time.time() - start_at
    finally:
        for child, _ in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    return {
        "ok": True,
        "failure": None,
        "processes": len(children),
        **summarize(rows, operators),
        # the server's CPU (its workers' included) from the start until every operator heard
        # audio, per join: what joining costs the server, the audio it then forwards included
        "server_cpu_ms_per_join": round(cpu_s * 1000 / operators, 2),
        "server_cpu_share_of_a_core": round(cpu_s / window_s, 3) if window_s > 0 else None,
    }
