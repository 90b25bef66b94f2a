"""`radiocore bench sfu`: one publishing station, N listeners, the real server, all on loopback.

Processes: the server (`radiocore serve`, its CPU measured with psutil), one publisher (the
board agent's own Opus track: a tone encoded once, sent through the `/agent` namespace) and the
listeners spread over `--listener-processes` processes. Listeners never decode: they tap RTP
after SRTP decryption and keep a digest of every payload, so the result says whether payloads
arrived byte-identical. Latency is the server's own ingress -> egress time of every forwarded
packet (after decryption -> handed to the socket), sampled in the server.

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
import tempfile
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.tools import (
    login,
    seed,
    start_server,
    stop_process,
    use_loopback_ice,
)

SETTLE_S = 2.0


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=8).digest()


# -- publisher process --------------------------------------------------------------------------


def _publisher(url: str, board_id: str, secret: str, pipe: Connection) -> None:
    asyncio.run(_publish(url, board_id, secret, pipe))


async def _publish(url: str, board_id: str, secret: str, pipe: Connection) -> None:
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from board_agent.audio_source import ToneSource
    from board_agent.opus_track import OpusPacketTrack

    use_loopback_ice()
    sent: list[tuple[float, bytes]] = []

    class RecordingTrack(OpusPacketTrack):
        async def recv(self) -> Any:
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
    pipe.send("ready")
    await asyncio.to_thread(pipe.recv)  # "stop"
    pipe.send(sent)
    await pc.close()
    await sio.disconnect()


# -- listener processes -------------------------------------------------------------------------


def _listeners(url: str, token: str, board_id: str, count: int, pipe: Connection) -> None:
    asyncio.run(_listen(url, token, board_id, count, pipe))


async def _listen(url: str, token: str, board_id: str, count: int, pipe: Connection) -> None:
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtp import RtpPacket

    from radiocore.aiortc_hooks import tap_receiver

    use_loopback_ice()
    received: list[list[tuple[float, bytes]]] = []
    peers: list[tuple[Any, Any]] = []

    async def one() -> None:
        log: list[tuple[float, bytes]] = []
        received.append(log)
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(
            url, namespaces=["/operator"], auth={"token": token}, transports=["websocket"]
        )
        joined = await sio.call("join", {"board_id": board_id}, namespace="/operator")
        if not joined.get("ok"):
            raise RuntimeError(f"join refused: {joined}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        reply = await sio.call(
            "offer",
            {"board_id": board_id, "type": "offer", "sdp": pc.localDescription.sdp},
            namespace="/operator",
            timeout=30,
        )
        if not reply.get("ok"):
            raise RuntimeError(f"offer refused: {reply}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

        def record(packet: RtpPacket) -> None:
            log.append((time.time(), _digest(packet.payload)))

        tap_receiver(pc.getTransceivers()[0].receiver, record)
        peers.append((pc, sio))

    for start in range(0, count, 10):
        await asyncio.gather(*(one() for _ in range(min(10, count - start))))
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


def run_sfu_bench(args: argparse.Namespace) -> int:
    import psutil

    listeners: int = args.listeners
    processes = max(1, min(args.listener_processes, listeners))
    with tempfile.TemporaryDirectory(prefix="radiocore-bench-") as tmp:
        data_dir = Path(tmp)
        board_id, secret = asyncio.run(seed(data_dir))
        url, server = start_server(
            data_dir, 'media_latency_sample_every = 1\n[ice]\nhost_addresses = ["127.0.0.1"]\n'
        )
        ctx = multiprocessing.get_context("spawn")
        children: list[Any] = []
        try:
            token = login(url)
            pub_pipe, pub_child = ctx.Pipe()
            publisher = ctx.Process(target=_publisher, args=(url, board_id, secret, pub_child))
            publisher.start()
            children.append(publisher)
            if not pub_pipe.poll(60):
                raise RuntimeError("the publisher did not connect")
            pub_pipe.recv()
            pipes = []
            base, extra = divmod(listeners, processes)
            shares = [base + (i < extra) for i in range(processes)]
            for share in shares:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_listeners, args=(url, token, board_id, share, child))
                proc.start()
                children.append(proc)
                pipes.append(parent)
            for pipe in pipes:
                if not pipe.poll(120 + listeners):
                    raise RuntimeError("listeners did not connect in time")
                pipe.recv()
            time.sleep(SETTLE_S)
            server_proc = psutil.Process(server.pid)
            _sfu_stats(url, reset=True)
            stats_before = _sfu_stats(url)
            cpu_before = server_proc.cpu_times()
            window_start = time.time()
            time.sleep(args.seconds)
            window_end = time.time()
            cpu_after = server_proc.cpu_times()
            stats_after = _sfu_stats(url)
            rss_mb = server_proc.memory_info().rss / 2**20
            for pipe in [pub_pipe, *pipes]:
                pipe.send("stop")
            sent: list[tuple[float, bytes]] = pub_pipe.recv()
            received: list[list[tuple[float, bytes]]] = []
            for pipe in pipes:
                received.extend(pipe.recv())
        finally:
            for child_proc in children:
                child_proc.join(timeout=20)
                if child_proc.is_alive():
                    child_proc.kill()
            stop_process(server)

    # a packet counts when the publisher sent it inside the window, leaving 0.5 s at the end
    # for it to arrive
    window = collections.Counter(d for t, d in sent if window_start <= t <= window_end - 0.5)
    all_sent = {d for _, d in sent}
    expected = sum(window.values())
    worst = 100.0
    identical = True
    for log in received:
        got = collections.Counter(d for t, d in log if window_start <= t <= window_end + 0.5)
        matched = sum(min(count, got[d]) for d, count in window.items())
        worst = min(worst, 100.0 * matched / expected if expected else 0.0)
        identical = identical and all(d in all_sent for _, d in log)
    forwarded = stats_after["packets_forwarded"] - stats_before["packets_forwarded"]
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    result = {
        "listeners": listeners,
        "seconds": args.seconds,
        "packets_sent": expected,
        "packets_received_min_pct": round(worst, 2),
        "payload_identical": identical and bool(received),
        "packets_forwarded": forwarded,
        "server_cpu_us_per_forwarded_packet": round(cpu_s / forwarded * 1e6, 2)
        if forwarded
        else None,
        "server_cpu_pct": round(100.0 * cpu_s / (window_end - window_start), 1),
        "added_latency_ms_p50": _round(stats_after["latency_ms_p50"]),
        "added_latency_ms_p99": _round(stats_after["latency_ms_p99"]),
        "latency_samples": stats_after["latency_samples"],
        "server_rss_mb": round(rss_mb, 1),
        "packets_dropped": stats_after["packets_dropped"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
