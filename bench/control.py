"""`radiocore bench control`: how fast and how safely the station obeys, through the real
server, the real board agent and Hamlib's dummy rig (`rigctld -m 1 -P RIG`), all on loopback.

An operator process keys, releases and tunes through its data channel; the bench reads the
rig's state straight from rigctld (its own TCP connection) and times each change from the
moment the operator sent the command. Then it kills the operator process hard while keyed and
times the dead-man release, and holds PTT (with keep-alives) to time the TX time-out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.rig_reader import RigReader
from bench.tools import (
    free_port,
    login,
    percentile_ms,
    seed,
    start_agent,
    start_server,
    stop_process,
)

TX_TIMEOUT_S = 4.0


# -- the operator process -----------------------------------------------------------------------


def _operator(url: str, token: str, board_id: str, pipe: Connection) -> None:
    asyncio.run(_operate(url, token, board_id, pipe))


async def _operate(url: str, token: str, board_id: str, pipe: Connection) -> None:
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    import radiocore_protocol as protocol
    from bench.tools import use_loopback_ice

    use_loopback_ice()
    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    await sio.connect(
        url, namespaces=["/operator"], auth={"token": token}, transports=["websocket"]
    )
    await sio.call("join", {"board_id": board_id}, namespace="/operator")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    channel = pc.createDataChannel("control")
    station_ready = asyncio.Event()  # the first status proves the station's channel is up
    channel.on("message", lambda m: station_ready.set() if '"type":"status"' in m else None)
    await pc.setLocalDescription(await pc.createOffer())
    for _ in range(300):  # until the station is online: at most a minute
        reply = await sio.call(
            "offer",
            {"board_id": board_id, "type": "offer", "sdp": pc.localDescription.sdp},
            namespace="/operator",
            timeout=30,
        )
        if reply.get("ok"):
            break
        await asyncio.sleep(0.2)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    await asyncio.wait_for(station_ready.wait(), timeout=60)
    keepalive: asyncio.Task[None] | None = None

    async def keep() -> None:
        while True:
            await asyncio.sleep(protocol.KEEPALIVE_INTERVAL_S)
            channel.send(protocol.encode(protocol.Keepalive()).decode())

    pipe.send("ready")
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command[0] == "stop":
            break
        if command[0] == "key":
            sent = time.time()
            channel.send(protocol.encode(protocol.Ptt(state=True)).decode())
            keepalive = asyncio.get_running_loop().create_task(keep())
        elif command[0] == "unkey":
            if keepalive is not None:
                keepalive.cancel()
            sent = time.time()
            channel.send(protocol.encode(protocol.Ptt(state=False)).decode())
        else:  # ("freq", hz)
            sent = time.time()
            channel.send(protocol.encode(protocol.SetFrequency(value=int(command[1]))).decode())
        pipe.send(sent)
    await pc.close()
    await sio.disconnect()


# -- driver -------------------------------------------------------------------------------------


def run_control_bench(args: argparse.Namespace) -> int:
    rigctld = shutil.which("rigctld")
    if rigctld is None:
        print("radiocore bench control: needs Hamlib's rigctld (libhamlib-utils)", file=sys.stderr)
        return 2
    rounds: int = args.rounds
    ctx = multiprocessing.get_context("spawn")
    processes: list[subprocess.Popen[bytes]] = []
    children: list[Any] = []
    key_s: list[float] = []
    release_s: list[float] = []
    freq_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="radiocore-bench-") as tmp:
        data_dir = Path(tmp)
        board_id, secret = asyncio.run(seed(data_dir))
        rig_port = free_port()
        processes.append(
            subprocess.Popen(
                [rigctld, "-m", "1", "-P", "RIG", "-T", "127.0.0.1", "-t", str(rig_port)]
            )
        )
        try:
            url, server = start_server(
                data_dir,
                f'[ice]\nhost_addresses = ["127.0.0.1"]\n[floor]\ntx_timeout_s = {TX_TIMEOUT_S}\n'
                "tx_warning_s = 1.0\n",
            )
            processes.append(server)
            processes.append(start_agent(url, board_id, secret, rig_port))
            rig = RigReader.connect(rig_port)
            token = login(url)
            pipe, child_end = ctx.Pipe()
            operator = ctx.Process(target=_operator, args=(url, token, board_id, child_end))
            operator.start()
            children.append(operator)
            if not _wait_station_ready(pipe, operator):
                raise RuntimeError("the operator could not connect to the station")
            for n in range(rounds):
                pipe.send(("key",))
                sent = pipe.recv()
                keyed = rig.wait_until(lambda r: r.ptt())
                if keyed is None:
                    raise RuntimeError("the rig was never keyed")
                key_s.append(keyed - sent)
                pipe.send(("unkey",))
                sent = pipe.recv()
                released = rig.wait_until(lambda r: not r.ptt())
                if released is None:
                    raise RuntimeError("the rig was never released")
                release_s.append(released - sent)
                target = 14_000_000 + 1000 * (n + 1)
                pipe.send(("freq", target))
                sent = pipe.recv()
                tuned = rig.wait_until(lambda r, t=target: r.freq() == t)
                if tuned is None:
                    raise RuntimeError("the rig was never tuned")
                freq_s.append(tuned - sent)

            pipe.send(("key",))
            pipe.recv()
            keyed_at = rig.wait_until(lambda r: r.ptt())
            timeout_released = rig.wait_until(lambda r: not r.ptt(), seconds=TX_TIMEOUT_S + 10)
            timeout_s = timeout_released - keyed_at if timeout_released and keyed_at else None

            # a frozen operator (its connection stays up, its keep-alives stop): the dead-man
            frozen_release = _release_after(rig, pipe, operator.pid or 0, signal.SIGSTOP)
            os.kill(operator.pid or 0, signal.SIGCONT)
            # a killed operator (its connection drops with it): link loss
            pipe.send(("key",))
            pipe.recv()
            if rig.wait_until(lambda r: r.ptt()) is None:
                raise RuntimeError("the rig was never keyed")
            killed = time.time()
            os.kill(operator.pid or 0, signal.SIGKILL)
            deadman = rig.wait_until(lambda r: not r.ptt(), seconds=10)
            rig.close()
        finally:
            for child in children:
                child.join(timeout=1)
                if child.is_alive():
                    child.kill()
            for process in reversed(processes):
                stop_process(process)
    result = {
        "rounds": rounds,
        "ptt_key_ms_p50": percentile_ms(key_s, 50),
        "ptt_key_ms_p99": percentile_ms(key_s, 99),
        "ptt_release_ms_p50": percentile_ms(release_s, 50),
        "ptt_release_ms_p99": percentile_ms(release_s, 99),
        "set_freq_ms_p50": percentile_ms(freq_s, 50),
        "set_freq_ms_p99": percentile_ms(freq_s, 99),
        "deadman_release_ms": round((deadman - killed) * 1000, 1) if deadman else None,
        "deadman_frozen_release_ms": round(frozen_release * 1000, 1) if frozen_release else None,
        "tx_timeout_setting_s": TX_TIMEOUT_S,
        "tx_timeout_released_after_s": round(timeout_s, 3) if timeout_s else None,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def _release_after(rig: RigReader, pipe: Connection, pid: int, signum: int) -> float | None:
    """Key, then send `signum` to the operator; seconds until the rig is released."""
    pipe.send(("key",))
    pipe.recv()
    if rig.wait_until(lambda r: r.ptt()) is None:
        raise RuntimeError("the rig was never keyed")
    sent = time.time()
    os.kill(pid, signum)
    released = rig.wait_until(lambda r: not r.ptt(), seconds=10)
    return released - sent if released is not None else None


def _wait_station_ready(pipe: Connection, operator: Any) -> bool:
    return bool(pipe.poll(60)) and pipe.recv() == "ready" and operator.is_alive()
