"""A GStreamer webrtcbin operator (as on a Raspberry Pi or a robot) joins a station and uses it.

Meant to run as root inside a private network namespace ("A") that has only loopback, so no
packet can leave the machine and nothing is changed outside it:

    unshare -n .venv/bin/python -m tests.integration.webrtcbin_check --case ok --data-dir D

libnice (webrtcbin's ICE) gathers nothing on loopback, so the peer sits in a nested namespace
("B") behind a veth pair, and the server gathers on the veth address as well:

    namespace A (this script)                           namespace B (nested `unshare -n`)
      rigctld -m 1 -P RIG    127.0.0.1:R                  webrtcbin_peer.py (/usr/bin/python3,
      the server (in this    127.0.0.1:S, ICE on            GStreamer 1.22 webrtcbin): ICE on
        process)             127.0.0.1 and 10.89.0.1        10.89.0.2 only
      board agent (tone      127.0.0.1
        1000 Hz, rigctld)
      rcA 10.89.0.1/30  <============ veth ============>  rcB 10.89.0.2/30

This script speaks the operator protocol for the peer (REST login, Socket.IO `/operator`:
`join`, `offer`, `ice_candidate`) and passes SDP and candidates to and from the GStreamer
process over its stdin/stdout: webrtcbin does all of the WebRTC, with its own RSA certificate.

Cases (`--case`):
- `ok`: webrtcbin's default `bundle-policy=none` (no BUNDLE group in its offer: audio and the
  data channel on separate transports); it hears the station's tone, its data channel opens, a
  `ptt` keys the rig, its own tone reaches the station while keyed, and a release unkeys;
- `bundle`: the same with `bundle-policy=max-bundle` (a BUNDLE group offered), audio only;
- `one_port`: `ok` with the server's peer connections all on one UDP port (`ice.udp_port`):
  webrtcbin's two transports meet the server's two, which share an ICE username fragment;
- `dtls_failure`: the server's DTLS is put back to aiortc's own ECDSA-only cipher list (what
  made webrtcbin fail before), so the handshake with webrtcbin's RSA certificate fails: the
  operator must be told, with the reason.

It prints one JSON line with what it saw (`ok` false and `failure` say why it stopped early);
`test_webrtcbin.py` judges it. The whole run is bounded (`RUN_BOUND_S`); the processes it starts
are stopped whatever happens (the peer also quits when its stdin closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import socketio

import radiocore_protocol as protocol
from bench.tools import free_port
from radiocore import aiortc_hooks
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    band_energy,
    sfu_of,
    start_server,
    stop_server,
)
from tests.support.rigctld import RigctldServer, rig_ptt

PEER_SCRIPT: Final = Path(__file__).resolve().parent / "webrtcbin_peer.py"
SYSTEM_PYTHON: Final = "/usr/bin/python3"
PR_SET_PDEATHSIG: Final = 1

RUN_BOUND_S: Final = 100
SIDE_A: Final = "rcA"
SIDE_B: Final = "rcB"
ADDRESS_A: Final = "10.89.0.1"
ADDRESS_B: Final = "10.89.0.2"
PREFIX: Final = 30

STATION_TONE_HZ: Final = 1000
#: Case one_port: the server's one UDP port (this check runs in a private network namespace).
ONE_PORT: Final = 40600
HOST_PORT: Final = re.compile(r"a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host")
PEER_TONE_HZ: Final = 600

ONLINE_WAIT_S: Final = 30.0
PEER_START_S: Final = 20.0
CONNECT_WAIT_S: Final = 30.0
AUDIO_WAIT_S: Final = 10.0
#: Enough audio to judge: ~2 s of 20 ms packets, and a full second decoded.
MIN_RTP_PACKETS: Final = 100
KEY_WAIT_S: Final = 5.0
HOLD_S: Final = 1.5
FAILURE_WAIT_S: Final = 30.0


class CheckFailedError(Exception):
    """A step did not complete in its time bound; the message says which."""


def run_command(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise CheckFailedError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def isolate() -> None:
    """`lo` up, after checking that loopback is all this namespace has; the veth pair."""
    links = json.loads(run_command(["ip", "-j", "link", "show"]))
    others = [link["ifname"] for link in links if link["ifname"] != "lo"]
    if others:
        raise CheckFailedError(
            f"not in an isolated network namespace (interfaces {others}); run under `unshare -n`"
        )
    run_command(["ip", "link", "set", "lo", "up"])
    run_command(["ip", "link", "add", SIDE_A, "type", "veth", "peer", "name", SIDE_B])
    run_command(["ip", "addr", "add", f"{ADDRESS_A}/{PREFIX}", "dev", SIDE_A])
    run_command(["ip", "link", "set", SIDE_A, "up"])


def move_into_b(pid: int) -> None:
    """rcB into the namespace of process `pid` (B), addressed and up."""
    run_command(["ip", "link", "set", SIDE_B, "netns", str(pid)])
    inside = ["nsenter", f"--net=/proc/{pid}/ns/net"]
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{ADDRESS_B}/{PREFIX}", "dev", SIDE_B],
        ["ip", "link", "set", SIDE_B, "up"],
    ):
        run_command([*inside, *command])


def _die_with_parent() -> None:
    """In a child: SIGTERM when this script dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class GstPeer:
    """The webrtcbin process: JSON commands in, JSON events out (kept, and waited for)."""

    def __init__(self, bundle_policy: str, log: Path) -> None:
        self.log = log
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            ["unshare", "-n", SYSTEM_PYTHON, str(PEER_SCRIPT), "--bundle-policy", bundle_policy,
             "--tone-hz", str(PEER_TONE_HZ), "--expect-hz", str(STATION_TONE_HZ)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=dict(os.environ, GST_DEBUG=os.environ.get("GST_DEBUG", "dtls*:2,webrtc*:2")),
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        for _ in range(1_000_000):  # bounded: far more lines than a run prints
            line = await loop.run_in_executor(None, self.process.stdout.readline)
            if not line:
                return
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                event["at"] = time.monotonic()
                self.events.append(event)
                self._log_file.write(line)
                self._arrived.set()

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.process.stdin.flush()

    def find(self, event: str, **fields: Any) -> dict[str, Any] | None:
        for item in self.events:
            if item["event"] == event and all(item.get(k) == v for k, v in fields.items()):
                return item
        return None

    def all(self, event: str) -> list[dict[str, Any]]:
        return [item for item in self.events if item["event"] == event]

    async def wait(self, event: str, within: float, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + within
        for _ in range(100_000):  # bounded in count as well as in time
            found = self.find(event, **fields)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))
        raise CheckFailedError(f"the webrtcbin peer did not report {event} {fields} in {within} s")

    async def report(self) -> dict[str, Any]:
        before = len(self.all("report"))
        self.send("report")
        for _ in range(100):
            reports = self.all("report")
            if len(reports) > before:
                return reports[-1]
            await asyncio.sleep(0.05)
        raise CheckFailedError("the webrtcbin peer did not report its audio")

    def states(self) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for item in self.all("state"):
            values = seen.setdefault(item["name"], [])
            if not values or values[-1] != item["value"]:
                values.append(item["value"])
        return seen

    async def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send("quit")
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._log_file.close()


class Warnings(logging.Handler):
    """The server's WARNING (and worse) log lines, as an operator of the server reads them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class Operator:
    """The Socket.IO side of the webrtcbin operator."""

    def __init__(self, server: LiveServer, peer: GstPeer) -> None:
        self.server = server
        self.peer = peer
        self.sio = socketio.AsyncClient(reconnection=False)
        self.errors: list[dict[str, Any]] = []
        self.offer_sdp = ""
        self.answer: dict[str, Any] = {}
        self.candidates_sent = 0
        self._forward: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        async def on_error(data: Any) -> None:
            self.errors.append(data)

        self.sio.on("error", on_error, namespace=protocol.OPERATOR_NAMESPACE)
        token = await self.server.token(self.server.owner)
        await self.sio.connect(
            self.server.url,
            namespaces=[protocol.OPERATOR_NAMESPACE],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(
            event, data, namespace=protocol.OPERATOR_NAMESPACE, timeout=30
        )
        return reply

    async def negotiate(self) -> None:
        joined = await self.call("join", {"board_id": self.server.board_id})
        if not joined.get("ok"):
            raise CheckFailedError(f"join refused: {joined}")
        self.peer.send("offer")
        offer = await self.peer.wait("offer", 10)
        self.offer_sdp = offer["sdp"]
        self.answer = await self.call(
            "offer", {"board_id": self.server.board_id, "type": "offer", "sdp": self.offer_sdp}
        )
        if not self.answer.get("ok"):
            raise CheckFailedError(f"the offer was refused: {self.answer}")
        self.peer.send("answer", sdp=self.answer["sdp"])
        self._forward = asyncio.get_running_loop().create_task(self._forward_candidates())

    async def _forward_candidates(self) -> None:
        """The peer's trickled candidates, to the server (those gathered before the answer
        too: they wait until the server has the connection)."""
        for _ in range(10_000):  # bounded: a peer has a handful
            candidates = self.peer.all("candidate")
            for candidate in candidates[self.candidates_sent :]:
                await self.call(
                    "ice_candidate",
                    {
                        "board_id": self.server.board_id,
                        "candidate": candidate["candidate"],
                        "sdpMLineIndex": candidate["sdpMLineIndex"],
                    },
                )
                self.candidates_sent += 1
            await asyncio.sleep(0.05)

    def send(self, message: protocol.OperatorMessage) -> None:
        self.peer.send("send", text=protocol.encode(message).decode())

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for item in self.peer.all("message"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(item["text"]))
        return found

    async def close(self) -> None:
        if self._forward is not None:
            self._forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forward
        if self.sio.connected:
            await self.sio.disconnect()


def has_bundle(sdp: str) -> bool:
    return any(line.startswith("a=group:BUNDLE") for line in sdp.splitlines())


async def hear_the_station(peer: GstPeer, result: dict[str, Any]) -> None:
    """Poll the peer's audio report until enough of the station's tone has arrived."""
    report: dict[str, Any] = {}
    for _ in range(int(AUDIO_WAIT_S / 0.25)):
        report = await peer.report()
        if report["rtp_packets"] >= MIN_RTP_PACKETS and report["samples"] >= 48000:
            break
        await asyncio.sleep(0.25)
    result["audio"] = {k: v for k, v in report.items() if k not in ("event", "at")}


async def key_the_rig(
    operator: Operator, agent: AgentProcess, rig_port: int, result: dict[str, Any]
) -> None:
    """PTT through webrtcbin's data channel: the rig keys, the peer's tone reaches the
    station while keyed, a release unkeys."""
    operator.send(protocol.Ptt(state=True))
    sink_before = len(agent.tx_pcm())

    async def keepalives() -> None:
        for _ in range(4 * 60):  # bounded: a minute
            await asyncio.sleep(protocol.KEEPALIVE_INTERVAL_S)
            operator.send(protocol.Keepalive())

    holding = asyncio.get_running_loop().create_task(keepalives())
    try:
        result["rig_keyed"] = await _wait_rig(rig_port, True, KEY_WAIT_S)
        await asyncio.sleep(HOLD_S)
        result["rig_keyed_after_hold"] = await rig_ptt(rig_port)
        tx = agent.tx_pcm()[sink_before:]
        result["tx_samples"] = len(tx)
        result["tx_tone_share"] = round(band_energy(tx, PEER_TONE_HZ), 3) if len(tx) else 0.0
    finally:
        holding.cancel()
    operator.send(protocol.Ptt(state=False))
    result["rig_released"] = await _wait_rig(rig_port, False, KEY_WAIT_S)


async def _wait_rig(port: int, keyed: bool, within: float) -> bool:
    for _ in range(int(within / 0.02)):
        with contextlib.suppress(OSError, ConnectionError, TimeoutError):
            if await rig_ptt(port) is keyed:
                return True
        await asyncio.sleep(0.02)
    return False


async def run(args: argparse.Namespace, result: dict[str, Any]) -> None:
    isolate()
    data_dir = Path(args.data_dir)
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    logging.getLogger().setLevel(logging.INFO)
    rig = RigctldServer(free_port(), data_dir / "rigctld.log")
    rig.start()
    config: dict[str, Any] = {"ice.host_addresses": ("127.0.0.1", ADDRESS_A)}
    if args.case == "one_port":
        config["ice.udp_port"] = ONE_PORT
    server = await start_server(data_dir, config=config)
    agent = AgentProcess(
        server,
        sink=data_dir / "tx.raw",
        tone_hz=STATION_TONE_HZ,
        extra_args=["--rig", "rigctld", "--rigctld-port", str(rig.port)],
    )
    peer: GstPeer | None = None
    operator: Operator | None = None
    try:
        if args.case == "dtls_failure":
            # aiortc's own ECDSA-only cipher list: what webrtcbin's RSA certificate met before
            aiortc_hooks.setup_dtls(accept_rsa_certificates=False)
        agent.start()
        for _ in range(int(ONLINE_WAIT_S / 0.1)):
            if sfu_of(server).station_online(server.board_id):
                break
            await asyncio.sleep(0.1)
        else:
            raise CheckFailedError("the board agent did not come online")
        peer = GstPeer("max-bundle" if args.case == "bundle" else "none", data_dir / "peer.log")
        started = await peer.wait("started", PEER_START_S)
        result["gstreamer"] = started["gstreamer"]
        move_into_b(int(started["pid"]))
        operator = Operator(server, peer)
        await operator.connect()
        await operator.negotiate()
        result["offer_has_bundle"] = has_bundle(operator.offer_sdp)
        result["offer_m_lines"] = operator.offer_sdp.count("\nm=")
        result["answer_ok"] = operator.answer.get("ok")
        result["answer_type"] = operator.answer.get("type")
        result["answer_has_bundle"] = has_bundle(operator.answer["sdp"])
        result["answer_host_ports"] = sorted(
            {int(m[1]) for m in HOST_PORT.finditer(operator.answer["sdp"])}
        )
        if args.case == "dtls_failure":
            await _wait_for_error(operator, result)
            # the operator is told as soon as the server's handshake fails (~0.1 s); webrtcbin
            # reaches `failed` on its own a moment later, on a loaded machine after the report
            with contextlib.suppress(CheckFailedError):  # the test judges the state it reached
                await peer.wait("state", CONNECT_WAIT_S, name="connection-state", value="failed")
        else:
            await peer.wait("state", CONNECT_WAIT_S, name="connection-state", value="connected")
            await peer.wait("channel_open", CONNECT_WAIT_S)
            await hear_the_station(peer, result)
            await key_the_rig(operator, agent, rig.port, result)
            await asyncio.sleep(0.5)  # the last status messages
            result["message_types"] = sorted({m.get("type") for m in operator.messages()})
            result["floor_you"] = any(
                m.get("type") == "floor" and m.get("you") for m in operator.messages()
            )
    finally:
        if peer is not None:
            result["peer_states"] = peer.states()
            result["peer_bus_errors"] = [e["message"] for e in peer.all("bus_error")][:10]
        if operator is not None:
            result["socketio_errors"] = operator.errors
            result["candidates_sent"] = operator.candidates_sent
            await operator.close()
        if peer is not None:
            await peer.stop()
        await asyncio.to_thread(agent.stop)
        await stop_server(server)
        rig.stop()
        result["server_warnings"] = warnings.lines[-20:]


async def _wait_for_error(operator: Operator, result: dict[str, Any]) -> None:
    began = time.monotonic()
    for _ in range(int(FAILURE_WAIT_S / 0.05)):
        if any(e.get("code") == "media_failed" for e in operator.errors):
            result["told_after_answer_s"] = round(time.monotonic() - began, 2)
            return
        await asyncio.sleep(0.05)
    raise CheckFailedError(f"the operator was not told of the failure in {FAILURE_WAIT_S} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", choices=("ok", "bundle", "one_port", "dtls_failure"), required=True
    )
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    result: dict[str, Any] = {"case": args.case, "ok": False}
    began = time.monotonic()

    async def bounded() -> None:
        async with asyncio.timeout(RUN_BOUND_S):
            await run(args, result)

    try:
        asyncio.run(bounded())
        result["ok"] = True
    except (CheckFailedError, TimeoutError) as exc:
        result["failure"] = str(exc) or f"the check took over {RUN_BOUND_S} s"
    except Exception as exc:
        result["failure"] = f"{type(exc).__name__}: {exc}"
    result["run_s"] = round(time.monotonic() - began, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
