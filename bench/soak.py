"""`radiocore bench soak --minutes M`: one board kept busy for a long time, and whether the
server holds steady — its memory, descriptors and tasks, every listener's audio, and the rig.

Every component is real and on loopback (`bench.faults.Station`): rigctld with Hamlib's dummy
rig (`-m 1 -P RIG`), `radiocore serve`, the board agent as its own process (its simulated tone,
`--rig rigctld` so its PTT guard runs). Around them, for the whole run:

- a crowd process (aiortc, no decoding): `--listeners` steady listeners that stay the whole
  time (the packet-loss figure is theirs) and `--churn` listeners that each join, listen a few
  seconds and leave, again and again (every other one says `leave` first, the rest just go).
  Each opens the console's control data channel, as the console does;
- an operator process (`bench.control`'s, the console's control channel) keying the rig,
  holding it 1.5 s and releasing it, over and over; the rig's PTT is read back from rigctld on
  a connection of its own (`bench.rig_reader`). A release counts as "left keyed" when the rig
  still reads keyed `PTT_SETTLE_S` after it (and the rig is read once more at the end);
- about once a minute (every third of a shorter run) the agent is restarted (SIGTERM, a new process,
  the station online again) and, half a period later, the operator closes its connection and
  opens a new one (a new process).

Sampled every `--sample-s` from the server's process: RSS and open descriptors (psutil), its
asyncio task count (the `radiocore_asyncio_tasks` gauge of its `/metrics`; null when that
endpoint does not answer), the station's packets as the server received them and what each
steady listener tapped over the same span. A listener's packet ratio is packets it received /
packets the server received from the station (so the silence while the agent restarts is not
counted as loss; the station's own packets are in the samples). Growth compares the median of
the last third of the samples after a warm-up with the median of the first third.

Prints one JSON object: `samples` and `summary` (with `targets` and `targets_met`, the issue's
30-minute targets judged on this run). Exit 0 whenever the run completed.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import bisect
import collections
import contextlib
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from bench.control import _operator
from bench.faults import Station
from bench.tools import login, operator_offer, percentile_ms, stop_process

#: The issue's soak targets (judged on any run; the issue's run is 30 minutes).
TARGET_MINUTES: Final = 30
TARGET_RSS_GROWTH_PCT: Final = 5.0
TARGET_LISTENER_RATIO: Final = 0.99
#: How long PTT is held each cycle, the pause between cycles, and how long after a release
#: the rig must read unkeyed.
PTT_HOLD_S: Final = 1.5
PTT_GAP_S: Final = 0.5
PTT_SETTLE_S: Final = 1.0
#: Bound on the rig reading keyed after the operator keyed.
PTT_KEY_BOUND_S: Final = 5.0
#: A churning listener listens this long, then leaves; after a refusal it waits this long.
CHURN_STAY_S: Final = 4.0
CHURN_RETRY_S: Final = 1.0
#: Agent restarts: once a minute, or every third of a shorter run (at least every 8 s).
RECONNECT_MAX_S: Final = 60.0
RECONNECT_MIN_S: Final = 8.0
#: Bounds on the station going offline after its agent stopped, and back online after.
OFFLINE_BOUND_S: Final = 10.0
ONLINE_BOUND_S: Final = 60.0
#: A listener counts packets arrived up to this long after the server's counter was read
#: (in flight on loopback); the same shift at both ends of a span cancels out.
IN_FLIGHT_S: Final = 0.25
#: Warm-up before the RSS/descriptor/task figures: this share of the run, at most WARMUP_MAX_S.
WARMUP_SHARE: Final = 0.2
WARMUP_MAX_S: Final = 120.0
#: The access token lasts 15 minutes by default: a new sign-in this often, for new joins.
TOKEN_REFRESH_S: Final = 300.0
#: Bound on the crowd's start: every steady listener joined and heard its first packet.
CROWD_READY_S: Final = 90.0


# -- the crowd process (steady and churning listeners) ------------------------------------------


class RefusedError(Exception):
    """A `join` or `offer` answered `ok: false`; `code` is the protocol's error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(eq=False)  # kept in a set: hashed by identity
class Ear:
    """One listener: its connection, what it tapped (arrival times, kept for the steady ones)
    and the `status` messages its control channel received."""

    keep_arrivals: bool
    arrivals: array.array[float] = field(default_factory=lambda: array.array("d"))
    packets: int = 0
    statuses: int = 0
    pc: Any = None
    sio: Any = None
    #: time.time() when `join` was answered, the offer answered, the first packet tapped.
    joined_at: float | None = None
    answered_at: float | None = None
    first_at: float | None = None

    def packet(self, _: Any) -> None:
        if self.first_at is None:
            self.first_at = time.time()
        self.packets += 1
        if self.keep_arrivals:
            self.arrivals.append(time.time())

    def message(self, data: str | bytes) -> None:
        import radiocore_protocol as protocol

        if protocol.message_type(data) == "status":
            self.statuses += 1

    def count_until(self, moment: float) -> int:
        return bisect.bisect_right(self.arrivals, moment)

    async def leave(self, board_id: str, say_leave: bool) -> None:
        if say_leave and self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.call(
                    "leave", {"board_id": board_id}, namespace="/operator", timeout=5
                )
        if self.pc is not None:
            await self.pc.close()
        if self.sio is not None:
            await self.sio.disconnect()


async def _join(url: str, token: str, board_id: str, ear: Ear) -> None:
    """Connect `ear` as the console does: Socket.IO, `join`, an offer with a receiving audio
    m-line and the control data channel; its packets tapped from the first one."""
    await connect_ear(url, token, ear)
    await join_board(board_id, ear)


async def connect_ear(url: str, token: str, ear: Ear) -> None:
    """`ear`'s Socket.IO connection to `/operator`, as the console opens it at sign-in."""
    import socketio

    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    ear.sio = sio
    await sio.connect(
        url,
        namespaces=["/operator"],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )


def _ear_connection(ear: Ear) -> Any:
    """`ear`'s peer connection as the console makes it: a receiving audio m-line and the
    control data channel."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    import radiocore_protocol as protocol

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # explicit: no public STUN
    ear.pc = pc
    pc.addTransceiver("audio", direction="recvonly")
    pc.createDataChannel(protocol.CONTROL_CHANNEL_LABEL).on("message", ear.message)
    return pc


async def prepare_offer(ear: Ear) -> None:
    """Make `ear`'s peer connection and its offer now (`join_board` then sends that offer)."""
    pc = _ear_connection(ear)
    await pc.setLocalDescription(await pc.createOffer())


async def join_board(board_id: str, ear: Ear) -> None:
    """What the console does when a station is chosen: `join`, then an offer with a receiving
    audio m-line and the control data channel (the one `prepare_offer` made, if it ran);
    `ear.packet` tapped from the first packet on."""
    from radiocore.aiortc_hooks import tap_receiver

    sio = ear.sio
    joined = await sio.call("join", {"board_id": board_id}, namespace="/operator", timeout=10)
    if not joined.get("ok"):
        raise RefusedError(str(joined.get("error", {}).get("code")))
    ear.joined_at = time.time()
    pc = ear.pc if ear.pc is not None else _ear_connection(ear)
    reply = await operator_offer(sio, pc, board_id)
    if not reply.get("ok"):
        raise RefusedError(str(reply.get("error", {}).get("code")))
    ear.answered_at = time.time()
    # no await since setRemoteDescription: ICE has not connected, no packet is missed
    tap_receiver(pc.getTransceivers()[0].receiver, ear.packet)


@dataclass
class ChurnFigures:
    joins: int = 0
    connected: int = 0
    heard_audio: int = 0
    left: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "joins": self.joins,
            "connected": self.connected,
            "heard_audio": self.heard_audio,
            "left": self.left,
            "refused": dict(self.refused),
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
        }


def _crowd(url: str, token: str, board_id: str, steady: int, churn: int, pipe: Connection) -> None:
    asyncio.run(_listen(url, token, board_id, steady, churn, pipe))


async def _listen(
    url: str, token: str, board_id: str, steady: int, churn: int, pipe: Connection
) -> None:
    """The steady listeners (joined, each its first packet heard: "ready"), then the churn;
    commands on `pipe`: ("token", t), ("counts", moment) -> counts, ("stop",) -> report."""
    from bench.tools import use_loopback_ice

    use_loopback_ice()
    current = {"token": token}
    ears = [Ear(keep_arrivals=True) for _ in range(steady)]
    try:
        await asyncio.gather(*(_join(url, token, board_id, ear) for ear in ears))
        for _ in range(int(CROWD_READY_S / 0.1)):  # bounded: every one's first packet
            if all(ear.packets for ear in ears):
                break
            await asyncio.sleep(0.1)
        if not all(ear.packets for ear in ears):
            raise RuntimeError("a steady listener heard nothing")
    except Exception as exc:  # told to the driver, which fails the run with it
        pipe.send(("error", f"steady listeners: {exc!r}"))
        for ear in ears:
            with contextlib.suppress(Exception):
                await ear.leave(board_id, say_leave=False)
        return
    figures = ChurnFigures()
    churning: set[Ear] = set()
    stopping = asyncio.Event()

    async def churn_slot(slot: int) -> None:
        await asyncio.sleep(slot * CHURN_STAY_S / max(1, churn))  # staggered
        turn = 0
        while not stopping.is_set():
            turn += 1
            ear = Ear(keep_arrivals=False)
            churning.add(ear)
            figures.joins += 1
            try:
                await _join(url, current["token"], board_id, ear)
                figures.connected += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), CHURN_STAY_S)
                figures.heard_audio += ear.packets > 0
                pause = 0.0
            except RefusedError as exc:
                figures.refused[exc.code] += 1
                pause = CHURN_RETRY_S
            except Exception as exc:
                figures.errors.append(repr(exc)[:200])
                pause = CHURN_RETRY_S
            try:
                await ear.leave(board_id, say_leave=turn % 2 == 0)
                figures.left += 1
            except Exception as exc:
                figures.errors.append(f"leaving: {exc!r}"[:200])
            churning.discard(ear)
            if pause:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), pause)

    slots = [asyncio.create_task(churn_slot(n)) for n in range(churn)]
    pipe.send(("ready", None))
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command[0] == "token":
            current["token"] = command[1]
        elif command[0] == "counts":
            pipe.send(
                {
                    "steady": [ear.count_until(command[1]) for ear in ears],
                    "churning": len(churning),
                }
            )
        else:  # "stop"
            break
    stopping.set()
    for outcome in await asyncio.gather(*slots, return_exceptions=True):
        if isinstance(outcome, BaseException):
            figures.errors.append(f"churn: {outcome!r}"[:200])
    report = {
        "steady_packets": [ear.packets for ear in ears],
        "steady_statuses": [ear.statuses for ear in ears],
        "churn": figures.report(),
    }
    for ear in ears:
        with contextlib.suppress(Exception):
            await ear.leave(board_id, say_leave=True)
    pipe.send(report)


class Crowd:
    """The crowd process, its pipe shared by the sampler and the driver (one at a time)."""

    def __init__(self, station: Station, steady: int, churn: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child_end = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(
            target=_crowd,
            args=(station.url, station.token, station.board_id, steady, churn, child_end),
        )
        self.process.start()
        child_end.close()
        if not self._pipe.poll(CROWD_READY_S + 60):
            raise RuntimeError("the listeners were not ready in time")
        kind, detail = self._pipe.recv()
        if kind != "ready":
            raise RuntimeError(detail)

    def token(self, token: str) -> None:
        with self._lock:
            self._pipe.send(("token", token))

    def counts(self, moment: float) -> dict[str, Any]:
        with self._lock:
            self._pipe.send(("counts", moment))
            if not self._pipe.poll(30):
                raise RuntimeError("the listeners did not answer")
            answer: dict[str, Any] = self._pipe.recv()
            return answer

    def stop(self) -> dict[str, Any] | None:
        report: dict[str, Any] | None = None
        with self._lock, contextlib.suppress(OSError, EOFError):
            self._pipe.send(("stop",))
            if self._pipe.poll(60):
                report = self._pipe.recv()
        self.process.join(timeout=20)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        return report


# -- the operator --------------------------------------------------------------------------------


class Operator:
    """`bench.control`'s operator process: PTT through the console's control channel."""

    def __init__(self, station: Station, token: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child_end = ctx.Pipe()
        self.process = ctx.Process(
            target=_operator, args=(station.url, token, station.board_id, child_end)
        )
        self.process.start()
        child_end.close()
        if not (self.pipe.poll(90) and self.pipe.recv() == "ready"):
            self.close()
            raise RuntimeError("the operator could not reach the station")

    def send(self, command: str) -> None:
        self.pipe.send((command,))
        if not self.pipe.poll(30):
            raise RuntimeError(f"the operator did not confirm {command!r}")
        self.pipe.recv()

    def close(self) -> None:
        """Close its connection (Socket.IO and peer connection) and end the process."""
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.pipe.send(("stop",))
            self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.pipe.close()


# -- sampling ------------------------------------------------------------------------------------


def _get(url: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def asyncio_tasks(metrics_text: str) -> int | None:
    """The `radiocore_asyncio_tasks` gauge in Prometheus text, or None if absent."""
    for line in metrics_text.splitlines():
        name, _, rest = line.partition(" ")
        if name.split("{", 1)[0] == "radiocore_asyncio_tasks" and rest:
            return int(float(rest.split()[0]))
    return None


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    tasks: int | None
    station_packets: int  # the server's count of packets received from the station
    steady_packets: list[int]  # each steady listener's packets, same moment (+ in flight)
    churning: int
    threads: int

    def row(self, previous: Sample | None) -> dict[str, Any]:
        ratio = None
        if previous is not None:
            expected = self.station_packets - previous.station_packets
            if expected > 0:
                ratio = round(
                    min(
                        (now - before) / expected
                        for now, before in zip(
                            self.steady_packets, previous.steady_packets, strict=True
                        )
                    ),
                    4,
                )
        return {
            "t_s": round(self.t_s, 1),
            "rss_mb": round(self.rss_mb, 2),
            "fds": self.fds,
            "tasks": self.tasks,
            "threads": self.threads,
            "station_packets": self.station_packets,
            "churning_listeners": self.churning,
            "steady_ratio_min": ratio,
        }


class Sampler(threading.Thread):
    def __init__(self, station: Station, crowd: Crowd, every_s: float, started: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        import psutil

        self._server = psutil.Process(station.server.pid)
        self._url = station.url
        self._crowd = crowd
        self._every_s = every_s
        self._origin = started
        self.stopping = threading.Event()
        self.samples: list[Sample] = []
        self.tasks_note: str | None = None
        self.error: str | None = None

    def sample(self) -> Sample:
        rss = self._server.memory_info().rss / 2**20
        fds = self._server.num_fds()
        threads = self._server.num_threads()
        tasks = self._tasks()
        stats = json.loads(_get(self._url + "api/internal/sfu"))
        read_at = time.time()
        time.sleep(IN_FLIGHT_S)
        counts = self._crowd.counts(read_at + IN_FLIGHT_S)
        return Sample(
            t_s=read_at - self._origin,
            rss_mb=rss,
            fds=fds,
            tasks=tasks,
            station_packets=int(stats["packets_in"]),
            steady_packets=list(counts["steady"]),
            churning=int(counts["churning"]),
            threads=threads,
        )

    def _tasks(self) -> int | None:
        try:
            tasks = asyncio_tasks(_get(self._url + "metrics").decode(errors="replace"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.tasks_note = f"GET /metrics: {exc}"
            return None
        if tasks is None:
            self.tasks_note = "GET /metrics has no radiocore_asyncio_tasks"
        return tasks

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # the driver reports it with the run
                self.error = repr(exc)
                return
            next_at += self._every_s
            self.stopping.wait(max(0.0, next_at - time.monotonic()))


# -- the driver -----------------------------------------------------------------------------------


@dataclass
class Activity:
    ptt_cycles: int = 0
    ptt_key_failures: int = 0
    ptt_left_keyed: int = 0
    release_s: list[float] = field(default_factory=list)
    agent_reconnects: int = 0
    agent_reconnect_failures: int = 0
    agent_offline_s: list[float] = field(default_factory=list)
    operator_reconnects: int = 0
    operator_reconnect_failures: int = 0
    errors: list[str] = field(default_factory=list)


def _ptt_cycle(station: Station, operator: Operator, activity: Activity) -> None:
    """Key, hold, release; the rig read back from rigctld."""
    operator.send("key")
    keyed = station.rig.wait_until(lambda r: r.ptt(), seconds=PTT_KEY_BOUND_S)
    if keyed is None:
        activity.ptt_key_failures += 1
    else:
        time.sleep(PTT_HOLD_S)
    operator.send("unkey")
    released_from = time.time()
    released = station.rig.wait_until(lambda r: not r.ptt(), seconds=PTT_SETTLE_S)
    time.sleep(max(0.0, released_from + PTT_SETTLE_S - time.time()))
    if station.rig.ptt():
        activity.ptt_left_keyed += 1
        # let it go before the next cycle (the agent's own TX time-out is the last resort)
        station.rig.wait_until(lambda r: not r.ptt(), seconds=10)
    if keyed is not None:
        activity.ptt_cycles += 1
        if released is not None:
            activity.release_s.append(released - released_from)


def _station_online(station: Station, token: str) -> bool:
    boards = json.loads(_get(station.url + "api/boards", token))["boards"]
    return any(b["id"] == station.board_id and b["online"] for b in boards)


def _wait_online(station: Station, token: str, online: bool, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _station_online(station, token) == online:
            return True
        time.sleep(0.1)
    return False


def _reconnect_agent(station: Station, token: str, activity: Activity) -> None:
    """SIGTERM the agent, the station seen offline, a new agent, the station seen online."""
    stopped = time.monotonic()
    stop_process(station.agent)
    offline = _wait_online(station, token, False, OFFLINE_BOUND_S)
    station.restart_agent()
    if offline and _wait_online(station, token, True, ONLINE_BOUND_S):
        activity.agent_reconnects += 1
        activity.agent_offline_s.append(time.monotonic() - stopped)
    else:
        activity.agent_reconnect_failures += 1
        activity.errors.append(
            f"agent reconnect at {time.time():.0f}: offline seen {offline}, not online again"
        )


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _thirds(samples: list[Sample], warmup_s: float, key: str) -> tuple[float | None, float | None]:
    """Medians of `key` over the first and the last third of the samples after the warm-up."""
    values = [getattr(s, key) for s in samples if s.t_s >= warmup_s]
    values = [v for v in values if v is not None]
    if len(values) < 3:
        return None, None
    third = len(values) // 3
    return _median(values[:third]), _median(values[-third:])


def summarize(
    samples: list[Sample],
    warmup_s: float,
    activity: Activity,
    crowd_report: dict[str, Any] | None,
    keyed_at_end: bool,
) -> dict[str, Any]:
    rss_first, rss_last = _thirds(samples, warmup_s, "rss_mb")
    fds_first, fds_last = _thirds(samples, warmup_s, "fds")
    tasks_first, tasks_last = _thirds(samples, warmup_s, "tasks")
    rss_growth = (
        round(100.0 * (rss_last - rss_first) / rss_first, 2)
        if rss_first and rss_last is not None
        else None
    )
    fd_growth = fds_last - fds_first if fds_first is not None and fds_last is not None else None
    task_growth = (
        tasks_last - tasks_first if tasks_first is not None and tasks_last is not None else None
    )
    ratios: list[float] = []
    station_packets = 0
    if len(samples) >= 2:
        first, last = samples[0], samples[-1]
        station_packets = last.station_packets - first.station_packets
        if station_packets > 0:
            ratios = [
                round((end - start) / station_packets, 4)
                for start, end in zip(first.steady_packets, last.steady_packets, strict=True)
            ]
    ratio_min = min(ratios) if ratios else None
    targets: dict[str, bool | None] = {
        "rss_growth_le_5_pct": None if rss_growth is None else rss_growth <= TARGET_RSS_GROWTH_PCT,
        "no_fd_growth": None if fd_growth is None else fd_growth <= 0,
        "no_task_growth": None if task_growth is None else task_growth <= 0,
        "every_listener_ge_99_pct": None
        if ratio_min is None
        else ratio_min >= TARGET_LISTENER_RATIO,
        "no_ptt_left_keyed": activity.ptt_left_keyed == 0 and not keyed_at_end,
    }
    churn = crowd_report["churn"] if crowd_report else None
    return {
        "rss_mb_first_third_median": _round(rss_first),
        "rss_mb_last_third_median": _round(rss_last),
        "rss_growth_pct": rss_growth,
        "fds_first_third_median": fds_first,
        "fds_last_third_median": fds_last,
        "fd_growth": fd_growth,
        "tasks_first_third_median": tasks_first,
        "tasks_last_third_median": tasks_last,
        "task_growth": task_growth,
        "station_packets": station_packets,
        "listener_packet_ratios": ratios,
        "listener_packet_ratio_min": ratio_min,
        "steady_statuses_min": min(crowd_report["steady_statuses"]) if crowd_report else None,
        "churn": churn,
        "ptt_cycles": activity.ptt_cycles,
        "ptt_key_failures": activity.ptt_key_failures,
        "ptt_left_keyed": activity.ptt_left_keyed,
        "ptt_keyed_at_end": keyed_at_end,
        "ptt_release_ms_p50": percentile_ms(activity.release_s, 50),
        "ptt_release_ms_p99": percentile_ms(activity.release_s, 99),
        "agent_reconnects": activity.agent_reconnects,
        "agent_reconnect_failures": activity.agent_reconnect_failures,
        "agent_offline_s_max": _round(max(activity.agent_offline_s))
        if activity.agent_offline_s
        else None,
        "operator_reconnects": activity.operator_reconnects,
        "operator_reconnect_failures": activity.operator_reconnect_failures,
        "reconnects": activity.agent_reconnects + activity.operator_reconnects,
        "errors": activity.errors[:10],
        "targets": targets,
        "targets_unjudged": [name for name, met in targets.items() if met is None],
        "targets_met": all(met is True for met in targets.values()),
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def run_soak_bench(args: argparse.Namespace) -> int:
    rigctld = shutil.which("rigctld")
    if rigctld is None:
        print("radiocore bench soak: needs Hamlib's rigctld (libhamlib-utils)", file=sys.stderr)
        return 2
    seconds = float(args.minutes) * 60.0
    if not seconds > 0 or args.listeners < 1 or args.churn < 0:
        print(
            "radiocore bench soak: --minutes above 0, --listeners at least 1, --churn at least 0",
            file=sys.stderr,
        )
        return 2
    sample_s = args.sample_s if args.sample_s is not None else max(1.0, min(10.0, seconds / 20))
    if not sample_s > 0:
        print("radiocore bench soak: --sample-s must be above 0", file=sys.stderr)
        return 2
    reconnect_s = max(RECONNECT_MIN_S, min(RECONNECT_MAX_S, seconds / 3))
    warmup_s = min(WARMUP_MAX_S, WARMUP_SHARE * seconds)
    activity = Activity()
    crowd: Crowd | None = None
    operator: Operator | None = None
    sampler: Sampler | None = None
    crowd_report: dict[str, Any] | None = None
    keyed_at_end = False
    with tempfile.TemporaryDirectory(prefix="radiocore-soak-") as tmp:
        station = Station(Path(tmp), rigctld)
        try:
            token, token_at = station.token, time.monotonic()
            if not _wait_online(station, token, True, ONLINE_BOUND_S):
                raise RuntimeError("the station did not come online")
            crowd = Crowd(station, args.listeners, args.churn)
            operator = Operator(station, token)
            started = time.time()
            sampler = Sampler(station, crowd, sample_s, started)
            sampler.start()
            begun = time.monotonic()
            deadline = begun + seconds
            next_agent = begun + reconnect_s
            next_operator = begun + reconnect_s / 2
            while time.monotonic() < deadline and sampler.is_alive():
                _ptt_cycle(station, operator, activity)
                now = time.monotonic()
                if now - token_at >= TOKEN_REFRESH_S:
                    token, token_at = login(station.url), now
                    crowd.token(token)
                if now >= next_agent and now < deadline:
                    _reconnect_agent(station, token, activity)
                    next_agent += reconnect_s
                elif now >= next_operator and now < deadline:
                    operator.close()
                    try:
                        operator = Operator(station, token)
                        activity.operator_reconnects += 1
                    except RuntimeError as exc:
                        activity.operator_reconnect_failures += 1
                        activity.errors.append(f"operator reconnect: {exc}")
                        operator = Operator(station, token)  # once more, or the run fails
                    next_operator += reconnect_s
                time.sleep(PTT_GAP_S)
            sampler.stopping.set()
            sampler.join(timeout=60)
            if sampler.error is not None:
                raise RuntimeError(f"sampling failed: {sampler.error}")
            operator.close()
            operator = None
            time.sleep(PTT_SETTLE_S)
            keyed_at_end = station.rig.ptt()
            crowd_report = crowd.stop()
            crowd = None
        finally:
            if sampler is not None:
                sampler.stopping.set()
            if operator is not None:
                operator.close()
            if crowd is not None:
                crowd.stop()
            station.close()
    samples = sampler.samples
    result = {
        "minutes": args.minutes,
        "target_minutes": TARGET_MINUTES,
        "listeners": args.listeners,
        "churn": args.churn,
        "sample_s": sample_s,
        "warmup_s": round(warmup_s, 1),
        "reconnect_every_s": round(reconnect_s, 1),
        "tasks_note": sampler.tasks_note,
        "samples": [s.row(samples[i - 1] if i else None) for i, s in enumerate(samples)],
        "summary": summarize(samples, warmup_s, activity, crowd_report, keyed_at_end),
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
