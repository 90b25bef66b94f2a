"""`radiocore bench sfu`: one publishing station, N listeners, the real server, all on loopback.

Processes: the server (`radiocore serve`, its CPU measured with psutil), one publisher (the
board agent's own Opus track: a tone encoded once, sent through the `/agent` namespace) and the
listeners spread over `--listener-processes` processes. Listeners never decode: they tap RTP
after SRTP decryption and keep a digest of every payload, so the result says whether payloads
arrived byte-identical. Latency is the server's own ingress -> egress time of every forwarded
packet (after decryption -> handed to the socket), sampled in the server. Join -> first audio is
each listener's time from its `join` call to the first RTP packet it taps.

`--control` gives every listener what each console operator costs beside audio: a "control"
data channel (its own SCTP association) counting the `status` messages it receives, while the
publisher sends a `status` at `--status-hz` and a `heartbeat` every second for the whole run.
With an idle window it adds a second one with the statuses paused (heartbeats go on): their
difference, per status the listeners logged in the first, is the status fan-out's cost.

`--relay` runs it twice, back to back with the same listeners and window: the direct path, then
with every listener forced through a real coturn (`iceTransportPolicy` relay with the ICE
servers its `join` reply gave; the station stays direct) and its nominated pair checked to be
relayed. It adds coturn's CPU, the delivery time (the publisher's track -> a listener's tap,
which the server's own latency cannot see: coturn's hop is outside it) and relay/direct ratios.

`--workers N` runs the server with its media workers (`signaling.workers`): the listeners sign
in as an account that may only listen, so they are spread over the processes; CPU and memory are
the processes' sum, `listeners_per_process` says where they went, and each worker's own added
latency is listed. Every run also gives the delivery time (the publisher's track -> a listener's
tap), which sees the worker's relay hop and the listeners' own load.

Prints one JSON object. Figures are for comparing designs on one machine in one run, not
absolute: these machines are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from bench.coturn import TURNSERVER, Coturn
from bench.tools import (
    BENCH_EMAIL,
    LISTENER_EMAIL,
    login,
    operator_offer,
    percentile_ms,
    seed,
    seed_listener,
    start_server,
    stop_process,
    use_loopback_ice,
    wait_workers,
)

SETTLE_S: Final = 2.0
#: After the audio pauses, before the idle window: the last packets and reports go out.
IDLE_DRAIN_S: Final = 1.0
#: How long listeners wait, once all have joined, for each one's first audio packet.
FIRST_AUDIO_WAIT_S: Final = 30.0
#: Fields only the `--relay` output's phases carry (the plain output keeps its set of fields).
RELAY_RUN_FIELDS: Final = ("relayed_listeners",)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=8).digest()


# -- publisher process --------------------------------------------------------------------------


def _publisher(
    url: str, board_id: str, secret: str, status_hz: float | None, pipe: Connection
) -> None:
    asyncio.run(_publish(url, board_id, secret, status_hz, pipe))


async def _send_status(channel: Any, status_hz: float, statusing: asyncio.Event) -> None:
    """What the agent sends its control channel, for the server to fan out to every operator:
    a `status` at `status_hz` (while `statusing` is set) and a `heartbeat` once a second
    (always: the station's liveness is not part of the status fan-out that is paused)."""
    import radiocore_protocol as protocol

    status = protocol.encode(
        protocol.Status(ptt=False, freq=14_205_000, mode="USB", smeter=-73)
    ).decode()
    loop = asyncio.get_running_loop()
    period = 1.0 / status_hz
    next_status = next_heartbeat = loop.time()
    while True:
        now = loop.time()
        if now >= next_heartbeat:
            channel.send(protocol.encode(protocol.Heartbeat(timestamp=time.time())).decode())
            next_heartbeat += 1.0
        if now >= next_status:
            if statusing.is_set():
                channel.send(status)
            next_status += period
            if next_status < now:  # fell behind (or was paused): no burst to catch up
                next_status = now + period
        await asyncio.sleep(max(0.0, min(next_status, next_heartbeat) - loop.time()))


async def _publish(
    url: str, board_id: str, secret: str, status_hz: float | None, pipe: Connection
) -> None:
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from board_agent.audio_source import ToneSource
    from board_agent.opus_track import OpusPacketTrack

    use_loopback_ice()
    sent: list[tuple[float, bytes]] = []

    sending = asyncio.Event()  # cleared: no audio (the idle measurement)
    sending.set()
    statusing = asyncio.Event()  # cleared: no status (the idle measurement without it)
    statusing.set()

    class RecordingTrack(OpusPacketTrack):
        async def recv(self) -> Any:
            await sending.wait()  # the track skips the silent time when it resumes
            packet = await super().recv()
            sent.append((time.time(), _digest(bytes(packet))))
            return packet

    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        namespaces=["/agent"],
        auth={"board_id": board_id, "secret": secret},
        transports=["websocket"],
    )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(RecordingTrack(ToneSource(frequency_hz=1000)), direction="sendrecv")
    channel = pc.createDataChannel("control")
    channel_open = asyncio.Event()
    channel.on("open", channel_open.set)
    await pc.setLocalDescription(await pc.createOffer())
    reply = await sio.call(
        "offer", {"type": "offer", "sdp": pc.localDescription.sdp}, namespace="/agent"
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    # online (listeners may connect) once the station's control channel is open
    await asyncio.wait_for(channel_open.wait(), 30)
    status_task = (
        asyncio.create_task(_send_status(channel, status_hz, statusing))
        if status_hz is not None
        else None
    )
    pipe.send("ready")
    for _ in range(100):  # commands: pause, resume, pause_status, resume_status, stop
        command = await asyncio.to_thread(pipe.recv)
        if command == "stop":
            break
        if command == "pause":
            sending.clear()
        elif command == "resume":
            sending.set()
        elif command == "pause_status":
            statusing.clear()
        elif command == "resume_status":
            statusing.set()
        pipe.send(command)  # done
    pipe.send(sent)
    if status_task is not None:
        status_task.cancel()
    await pc.close()
    await sio.disconnect()


# -- listener processes -------------------------------------------------------------------------


@dataclass
class ListenerLog:
    """One listener: when it called `join`, every payload it tapped (arrival time, digest),
    the type of its nominated local candidate ("host", "relay" …; None: no pair) and, with
    `--control`, the arrival time of every `status` its control channel received."""

    joined_at: float
    packets: list[tuple[float, bytes]] = field(default_factory=list)
    candidate: str | None = None
    statuses: list[float] = field(default_factory=list)


def _listeners(
    url: str,
    token: str,
    board_id: str,
    count: int,
    relay: bool,
    control: bool,
    pipe: Connection,
) -> None:
    asyncio.run(_listen(url, token, board_id, count, relay, control, pipe))


def _rtc_configuration(joined: dict[str, Any], relay: bool) -> Any:
    """The ICE servers of the `join` reply (TURN credentials included); relay-only if asked."""
    from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in joined.get("ice_servers", [])
    ]
    if relay and not any("username" in s for s in joined.get("ice_servers", [])):
        raise RuntimeError(f"--relay: the join reply gave no TURN server: {joined}")
    return RTCConfiguration(
        iceServers=servers,
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL,
    )


async def _listen(
    url: str,
    token: str,
    board_id: str,
    count: int,
    relay: bool,
    control: bool,
    pipe: Connection,
) -> None:
    import socketio
    from aiortc import RTCPeerConnection
    from aiortc.rtp import RtpPacket

    import radiocore_protocol as protocol
    from radiocore.aiortc_hooks import nominated_pair, tap_receiver

    use_loopback_ice()
    received: list[ListenerLog] = []
    peers: list[tuple[Any, Any]] = []

    async def one() -> None:
        for attempt in range(3):  # bounded: a server busy with hundreds of peers may be slow
            sio = socketio.AsyncClient(reconnection=False)
            try:
                await sio.connect(
                    url,
                    namespaces=["/operator"],
                    auth={"token": token},
                    transports=["websocket"],
                    wait_timeout=30,
                )
                break
            except socketio.exceptions.ConnectionError:
                if attempt == 2:
                    raise
                await asyncio.sleep(1.0)
        listener = ListenerLog(joined_at=time.time())
        received.append(listener)
        joined = await sio.call("join", {"board_id": board_id}, namespace="/operator")
        if not joined.get("ok"):
            raise RuntimeError(f"join refused: {joined}")
        pc = RTCPeerConnection(_rtc_configuration(joined, relay))
        pc.addTransceiver("audio", direction="recvonly")
        if control:  # as the console does: its SCTP association, opened by the operator

            def message(data: str | bytes) -> None:
                if protocol.message_type(data) == "status":
                    listener.statuses.append(time.time())

            pc.createDataChannel(protocol.CONTROL_CHANNEL_LABEL).on("message", message)
        reply = await operator_offer(sio, pc, board_id)
        if not reply.get("ok"):
            raise RuntimeError(f"offer refused: {reply}")

        def record(packet: RtpPacket) -> None:
            listener.packets.append((time.time(), _digest(packet.payload)))

        # no await since setRemoteDescription: ICE has not connected, no packet is missed
        tap_receiver(pc.getTransceivers()[0].receiver, record)
        peers.append((pc, sio))

    for start in range(0, count, 10):
        await asyncio.gather(*(one() for _ in range(min(10, count - start))))
    for _ in range(int(FIRST_AUDIO_WAIT_S / 0.1)):  # bounded: every listener's first audio
        if all(x.packets and (x.statuses or not control) for x in received):  # (and status)
            break
        await asyncio.sleep(0.1)
    for listener, (pc, _) in zip(received, peers, strict=True):
        pair = nominated_pair(pc.getTransceivers()[0].receiver.transport)
        listener.candidate = pair.local_candidate.type if pair is not None else None
    pipe.send("ready")
    await asyncio.to_thread(pipe.recv)  # "stop"
    pipe.send(received)
    for pc, sio in peers:
        await pc.close()
        await sio.disconnect()


# -- driver -------------------------------------------------------------------------------------


def _sfu_stats(url: str, reset: bool = False) -> dict[str, Any]:
    with urllib.request.urlopen(
        url + "api/internal/sfu" + ("?reset=1" if reset else ""), timeout=10
    ) as response:
        result: dict[str, Any] = json.load(response)
        return result


def _wait_ready(pipe: Connection, process: Any, timeout_s: float, what: str) -> None:
    """Until `process` says "ready" on `pipe` (bounded), failing at once if it died."""
    for _ in range(int(timeout_s)):
        if pipe.poll(1.0):
            pipe.recv()
            return
        if not process.is_alive():
            raise RuntimeError(f"{what} exited ({process.exitcode}) before it was ready")
    raise RuntimeError(f"{what} not ready within {timeout_s:g} s")


def _summed(stats: dict[str, Any], field: str) -> int:
    """A counter of the server, its workers' added (`GET /api/internal/sfu` lists theirs)."""
    return int(stats[field]) + sum(int(w[field]) for w in stats.get("workers", []))


@dataclass
class _Times:
    user: float
    system: float


@dataclass
class _Memory:
    rss: int


class ServerTree:
    """The server process and its media workers, measured as one (psutil's interface)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._main = psutil.Process(pid)

    def _all(self) -> list[Any]:
        return [self._main, *self._main.children()]

    def cpu_times(self) -> _Times:
        times = [p.cpu_times() for p in self._all()]
        return _Times(sum(t.user for t in times), sum(t.system for t in times))

    def memory_info(self) -> _Memory:
        return _Memory(sum(p.memory_info().rss for p in self._all()))


def cpu_seconds(times: Any) -> float:
    return float(times.user + times.system)


def _cpu_pct(process: Any, seconds: float) -> float:
    """`process`'s CPU use over the next `seconds`, in % of one core."""
    before = cpu_seconds(process.cpu_times())
    start = time.monotonic()
    time.sleep(seconds)
    used = cpu_seconds(process.cpu_times()) - before
    return 100.0 * used / (time.monotonic() - start)


def run_sfu_bench(args: argparse.Namespace) -> int:
    if args.relay and not os.access(TURNSERVER, os.X_OK):
        print(
            f"bench sfu --relay: coturn is not installed at {TURNSERVER} (Debian: coturn)",
            file=sys.stderr,
        )
        return 2
    if args.control and not args.status_hz > 0:
        print("bench sfu --control: --status-hz must be above 0", file=sys.stderr)
        return 2
    if args.compare_janus:
        if args.lane == "both":
            print("bench sfu --compare-janus: not with --lane both", file=sys.stderr)
            return 2
        return _compare_janus(args)
    if args.lane == "both":
        if args.relay:
            print("bench sfu --lane both: not with --relay", file=sys.stderr)
            return 2
        return _compare_lanes(args)
    direct = _run_phase(args, relay=False)
    if not args.relay:
        result = {k: v for k, v in direct.items() if k not in RELAY_RUN_FIELDS}
    else:
        relay = _run_phase(args, relay=True)
        result = {
            "listeners": args.listeners,
            "seconds": args.seconds,
            "direct": direct,
            "relay": relay,
            "relay_to_direct_server_cpu_per_packet": _ratio(
                relay["server_cpu_us_per_forwarded_packet"],
                direct["server_cpu_us_per_forwarded_packet"],
            ),
            "relay_added_delivery_ms_p50": _difference(
                relay["delivery_ms_p50"], direct["delivery_ms_p50"]
            ),
            "relay_added_delivery_ms_p99": _difference(
                relay["delivery_ms_p99"], direct["delivery_ms_p99"]
            ),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


def _compare_lanes(args: argparse.Namespace) -> int:
    """The compiled and the pure-Python forwarding lane, back to back (ABBA with --rounds 2):
    each side's runs, their medians and compiled ÷ python (below 1: the compiled spends less)."""
    from bench.janus import median

    runs: dict[str, list[dict[str, Any]]] = {"compiled": [], "python": []}
    for round_index in range(args.rounds):
        sides = ("compiled", "python") if round_index % 2 == 0 else ("python", "compiled")
        for side in sides:
            run = _run_phase(argparse.Namespace(**{**vars(args), "lane": side}), relay=False)
            runs[side].append({k: v for k, v in run.items() if k not in RELAY_RUN_FIELDS})
    figures = (
        "server_cpu_us_per_forwarded_packet",
        "server_marginal_cpu_us_per_forwarded_packet",
        "server_idle_cpu_pct",
        "added_latency_ms_p99",
        "server_rss_kb_per_listener",
    )
    medians = {
        side: {f: median([r[f] for r in side_runs]) for f in figures}
        for side, side_runs in runs.items()
    }
    result = {
        "listeners": args.listeners,
        "seconds": args.seconds,
        "compiled": medians["compiled"],
        "python": medians["python"],
        "ratio_compiled_to_python": {
            f: _ratio(medians["compiled"][f], medians["python"][f]) for f in figures
        },
        "packets_received_min_pct": min(
            r["packets_received_min_pct"] for side in runs.values() for r in side
        ),
        "payload_identical": all(r["payload_identical"] for side in runs.values() for r in side),
        "runs": runs,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def _compare_janus(args: argparse.Namespace) -> int:
    """RadioCore's direct path and Janus's harness, back to back (ABBA with --rounds 2)."""
    from bench.janus import comparison, missing_janus, run_janus

    harness = Path(args.janus_harness)
    reason = missing_janus(harness)
    if reason is not None:
        print(f"bench sfu --compare-janus: {reason}", file=sys.stderr)
        return 2
    if args.relay or args.control:
        print("bench sfu --compare-janus: not with --relay or --control", file=sys.stderr)
        return 2
    ours: list[dict[str, Any]] = []
    janus: list[dict[str, Any]] = []
    for round_index in range(args.rounds):
        sides = ("radiocore", "janus") if round_index % 2 == 0 else ("janus", "radiocore")
        for side in sides:
            if side == "radiocore":
                run = _run_phase(args, relay=False)
                ours.append({k: v for k, v in run.items() if k not in RELAY_RUN_FIELDS})
            else:
                janus.append(
                    run_janus(
                        harness, args.listeners, args.seconds, args.idle_seconds, args.event_loops
                    )
                )
    result = comparison(ours, janus, args.event_loops)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def _run_phase(args: argparse.Namespace, relay: bool) -> dict[str, Any]:
    """One run: a fresh server (and coturn with `relay`), the publisher, the listeners, one
    measured window; its figures."""
    import psutil

    listeners: int = args.listeners
    processes = max(1, min(args.listener_processes, listeners))
    control: bool = args.control
    status_hz: float | None = args.status_hz if control else None
    with tempfile.TemporaryDirectory(prefix="radiocore-bench-") as tmp:
        data_dir = Path(tmp)
        board_id, secret = asyncio.run(seed(data_dir))
        workers: int = args.workers
        if workers > 1:  # listeners who may only listen: those are placed on workers
            asyncio.run(seed_listener(data_dir, board_id))
        config = (
            # the workers from the start: the listeners are spread from the first
            f"workers = {workers}\nworker_spill_listeners = 0\nmedia_latency_sample_every = 1\n"
            f'forwarding_lane = "{args.lane}"\n'
            f'[ice]\nhost_addresses = ["127.0.0.1"]\nudp_port = {args.udp_port}\n'
            # every listener signs in with one account: its connection limit must not cap them
            f"[limits]\nmax_connections_per_user = {min(1000, listeners + 1)}\n"
        )
        env: dict[str, str] = {}
        coturn: Coturn | None = None
        if relay:
            coturn = Coturn(data_dir)
            coturn.start()
            config += f"[turn]\nurls = [{json.dumps(coturn.url('udp'))}]\n"
            env["RADIOCORE_TURN__SECRET"] = coturn.secret  # never on a command line
        ctx = multiprocessing.get_context("spawn")
        children: list[Any] = []
        server = None
        try:
            url, server = start_server(data_dir, config, env)
            token = login(url, LISTENER_EMAIL if workers > 1 else BENCH_EMAIL)
            if workers > 1:
                wait_workers(url, workers - 1)
            pub_pipe, pub_child = ctx.Pipe()
            publisher = ctx.Process(
                target=_publisher, args=(url, board_id, secret, status_hz, pub_child)
            )
            publisher.start()
            children.append(publisher)
            _wait_ready(pub_pipe, publisher, 60, "the publisher")
            # before any listener: what each listener adds to it is the figure
            base_rss_mb = ServerTree(server.pid).memory_info().rss / 2**20
            pipes = []
            base, extra = divmod(listeners, processes)
            shares = [base + (i < extra) for i in range(processes)]
            for share in shares:
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_listeners,
                    args=(url, token, board_id, share, relay, control, child),
                )
                proc.start()
                children.append(proc)
                pipes.append((parent, proc))
            for pipe, proc in pipes:
                _wait_ready(pipe, proc, 120 + listeners + FIRST_AUDIO_WAIT_S, "a listener process")
            time.sleep(SETTLE_S)
            server_proc = ServerTree(server.pid)  # with its workers
            idle_cpu_pct = idle_no_status_cpu_pct = None
            idle_window = (0.0, 0.0)  # wall clock, to count the statuses delivered in it
            if args.idle_seconds > 0:
                # every listener connected, no audio: RTCP, consent checks, the station's
                # status fan-out (with --control) and timers — what the server costs before
                # it forwards
                pub_pipe.send("pause")
                pub_pipe.recv()
                time.sleep(IDLE_DRAIN_S)
                idle_wall_start = time.time()
                idle_cpu_pct = _cpu_pct(server_proc, args.idle_seconds)
                idle_window = (idle_wall_start, time.time())
                if control:
                    # the same without the status fan-out (heartbeats go on): its cost
                    pub_pipe.send("pause_status")
                    pub_pipe.recv()
                    time.sleep(IDLE_DRAIN_S)
                    idle_no_status_cpu_pct = _cpu_pct(server_proc, args.idle_seconds)
                    pub_pipe.send("resume_status")
                    pub_pipe.recv()
                pub_pipe.send("resume")
                pub_pipe.recv()
                time.sleep(SETTLE_S)
            coturn_proc = psutil.Process(coturn.pid) if coturn is not None else None
            _sfu_stats(url, reset=True)
            stats_before = _sfu_stats(url)
            cpu_before = server_proc.cpu_times()
            coturn_before = coturn_proc.cpu_times() if coturn_proc is not None else None
            window_start = time.time()
            time.sleep(args.seconds)
            window_end = time.time()
            cpu_after = server_proc.cpu_times()
            coturn_after = coturn_proc.cpu_times() if coturn_proc is not None else None
            # before the stats request: sorting its latency samples (hundreds of thousands of
            # them, a bench-only setting) takes memory the allocator may keep for a while
            rss_mb = server_proc.memory_info().rss / 2**20
            coturn_rss_mb = coturn_proc.memory_info().rss / 2**20 if coturn_proc else None
            stats_after = _sfu_stats(url)
            # a packet heard after this may have been sent after the publisher's record of
            # what it sent (it answers "stop" with it): such packets are not judged
            stopped_at = time.time()
            for pipe in [pub_pipe, *(p for p, _ in pipes)]:
                pipe.send("stop")
            sent: list[tuple[float, bytes]] = pub_pipe.recv()
            received: list[ListenerLog] = []
            for pipe, _ in pipes:
                received.extend(pipe.recv())
        finally:
            for child_proc in children:
                child_proc.join(timeout=20)
                if child_proc.is_alive():
                    child_proc.kill()
            if server is not None:
                stop_process(server)
            if coturn is not None:
                coturn.stop()

    # a packet counts when the publisher sent it inside the window, leaving 0.5 s at the end
    # for it to arrive
    window = collections.Counter(d for t, d in sent if window_start <= t <= window_end - 0.5)
    sent_at = {d: t for t, d in sent}
    expected = sum(window.values())
    worst = 100.0
    identical = True
    delivery: list[float] = []
    for listener in received:
        log = listener.packets
        got = collections.Counter(d for t, d in log if window_start <= t <= window_end + 0.5)
        matched = sum(min(count, got[d]) for d, count in window.items())
        worst = min(worst, 100.0 * matched / expected if expected else 0.0)
        identical = identical and all(d in sent_at for t, d in log if t <= stopped_at)
        # delivery: payloads sent once in the window (the tone's Opus payloads all are)
        delivery.extend(t - sent_at[d] for t, d in log if window.get(d) == 1)
    first_audio = [x.packets[0][0] - x.joined_at for x in received if x.packets]
    forwarded = _summed(stats_after, "packets_forwarded") - _summed(
        stats_before, "packets_forwarded"
    )
    seconds = window_end - window_start
    cpu_s = cpu_seconds(cpu_after) - cpu_seconds(cpu_before)
    status_min_per_s = (
        min(sum(1 for t in x.statuses if window_start <= t <= window_end) for x in received)
        / seconds
        if control and received
        else None
    )
    # the status fan-out's cost: the idle window's CPU less the same window's without status,
    # per status the listeners' logs show delivered in the first (counted, not estimated)
    idle_statuses = sum(
        1 for x in received for t in x.statuses if idle_window[0] <= t <= idle_window[1]
    )
    us_per_status = (
        round(
            (idle_cpu_pct - idle_no_status_cpu_pct)
            / 100.0
            * (idle_window[1] - idle_window[0])
            / idle_statuses
            * 1e6,
            2,
        )
        if idle_cpu_pct is not None and idle_no_status_cpu_pct is not None and idle_statuses
        else None
    )
    result: dict[str, Any] = {
        "listeners": listeners,
        "seconds": args.seconds,
        "packets_sent": expected,
        "packets_received_min_pct": round(worst, 2),
        "payload_identical": identical and bool(received),
        "packets_forwarded": forwarded,
        "server_cpu_us_per_forwarded_packet": round(cpu_s / forwarded * 1e6, 2)
        if forwarded
        else None,
        "server_cpu_pct": round(100.0 * cpu_s / seconds, 1),
        # the kernel's part of it: sendto and, on loopback, delivering each datagram to (and
        # waking) the listener's process, which a real network interface does not cost
        "server_kernel_cpu_share": round((cpu_after.system - cpu_before.system) / cpu_s, 3)
        if cpu_s > 0
        else None,
        "server_idle_cpu_pct": _round(idle_cpu_pct),
        # what forwarding itself costs: the window's CPU less the idle rate over it
        "server_marginal_cpu_us_per_forwarded_packet": (
            round((cpu_s - idle_cpu_pct / 100.0 * seconds) / forwarded * 1e6, 2)
            if forwarded and idle_cpu_pct is not None
            else None
        ),
        "added_latency_ms_p50": _round(stats_after["latency_ms_p50"]),
        "added_latency_ms_p99": _round(stats_after["latency_ms_p99"]),
        "latency_samples": stats_after["latency_samples"],
        "server_rss_mb": round(rss_mb, 1),
        "server_rss_kb_per_listener": round((rss_mb - base_rss_mb) * 1024 / listeners, 1)
        if listeners
        else None,
        "packets_dropped": _summed(stats_after, "packets_dropped"),
        "workers": workers,
        "lane": args.lane,
        "udp_port": args.udp_port,
        "worker_added_latency_ms_p99": [
            _round(w["latency_ms_p99"]) for w in stats_after.get("workers", [])
        ],
        # the main process's: its participants but the station and the workers' relays
        "listeners_per_process": [
            stats_after["participants"]
            - 1
            - sum(1 for w in stats_after.get("workers", []) if w["participants"])
        ]
        + [w["participants"] for w in stats_after.get("workers", [])],
        "join_to_first_audio_ms_p50": percentile_ms(first_audio, 50),
        "join_to_first_audio_ms_p99": percentile_ms(first_audio, 99),
        "join_to_first_audio_ms_max": round(max(first_audio) * 1000, 2) if first_audio else None,
        "join_to_first_audio_count": len(first_audio),
        "relayed_listeners": sum(1 for x in received if x.candidate == "relay"),
        "delivery_ms_p50": percentile_ms(delivery, 50),
        "delivery_ms_p99": percentile_ms(delivery, 99),
        "control_channels": control,
        "status_hz": status_hz,
        "status_received_min_per_s": _round(status_min_per_s),
        "server_idle_no_status_cpu_pct": _round(idle_no_status_cpu_pct),
        "server_cpu_us_per_status_delivered": us_per_status,
    }
    if coturn_before is not None and coturn_after is not None:
        coturn_s = cpu_seconds(coturn_after) - cpu_seconds(coturn_before)
        result["coturn_cpu_pct"] = round(100.0 * coturn_s / seconds, 1)
        result["coturn_cpu_us_per_relayed_packet"] = (
            round(coturn_s / forwarded * 1e6, 2) if forwarded else None
        )
        result["coturn_rss_mb"] = round(coturn_rss_mb, 1) if coturn_rss_mb is not None else None
    return result


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator is not None and denominator else None


def _difference(minuend: float | None, subtrahend: float | None) -> float | None:
    return (
        round(minuend - subtrahend, 2) if minuend is not None and subtrahend is not None else None
    )
