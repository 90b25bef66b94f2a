"""Reachability through real NAT: a station and an operator on private LANs behind routers that
translate and filter, a server and coturn on the "internet" — every case of issue 13's matrix.

Meant to run as root inside a private network namespace that has only loopback, so no packet
can leave the machine and nothing is changed outside it:

    unshare -n python tests/integration/nat_check.py --case direct

Topology, all built here (each box a network namespace; this script's own is "pub"):

    sta 10.0.1.2 ── rsta (symmetric NAT: masquerade random,fully-random) 203.0.113.2 ─┐
      rigctld (dummy rig), board agent                                               pub
    op  10.0.2.2 ── rop (port-restricted cone NAT: masquerade) 203.0.113.6 ──────────┘
      the operator (this file's `operator` role: aiortc, sends a tone while keyed)
    pub: 198.51.100.10 — radiocore serve (media UDP ports 40000-40199) and coturn (3478)
    srv 172.16.0.2 (case sfu_nat only) — radiocore serve behind pub's 1:1 NAT as
      198.51.100.20, announcing that address (`ice.announced_address`)

Routers filter in their forward chain as the case says: `media_blocked` drops UDP to and from
the SFU's media ports (TURN over UDP is left), `udp_blocked` drops all UDP (TURN over TCP is
left). `cut` drops everything through the operator's router for `--cut-s` and then restores it;
`relay_cut` does the same to an operator whose media goes through TURN (`media_blocked`).
`one_port` runs the server with one media port for every peer connection (`ice.udp_port`) and
drops every other UDP to and from it (TURN over UDP included) — its direct path must connect.
`turn_down` runs without coturn; `operator_no_path` also drops all UDP at the operator's router
(the operator must be told, soon); `station_no_path` drops all UDP at the station's router with
no coturn (the station must not flap online/offline).

In each case that connects, audio energy must arrive both ways (the station's tone at the
operator; the operator's tone in the agent's TX audio file while keyed) and a PTT press must key
the rig (read from rigctld on a connection of its own). The script prints one JSON line with
what it saw; `test_nat_matrix.py` judges it. Every process dies with the script; the run is
bounded (`RUN_BOUND_S`).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

from bench.coturn import Coturn
from bench.netlab import (
    Adopted,
    CheckFailedError,
    Child,
    OperatorChild,
    close_operator,
    emit,
    in_namespace_of,
    login,
    offer_until_online,
    report_link,
    run_command,
    run_driver,
    run_role,
    serve_ptt_commands,
    start_role,
    wait_health,
    wait_rig,
)
from bench.rig_reader import RigReader
from bench.tools import BENCH_EMAIL, BENCH_PASSWORD, free_port, seed

THIS_FILE: Final = Path(__file__).resolve()
if str(THIS_FILE.parents[2]) not in sys.path:  # run as a script: the repository's test helpers
    sys.path.insert(0, str(THIS_FILE.parents[2]))

from tests.support.raw_audio import frame_rms  # noqa: E402

RIGCTLD: Final = "/usr/bin/rigctld"
CLONE_NEWNET: Final = 0x40000000

RUN_BOUND_S: Final = 100
CASES: Final = (
    "direct",
    "media_blocked",
    "udp_blocked",
    "sfu_nat",
    "one_port",
    "cut",
    "relay_cut",
    "turn_down",
    "operator_no_path",
    "station_no_path",
)

SERVER_IP: Final = "198.51.100.10"
SERVER_NAT_IP: Final = "198.51.100.20"
SRV_PRIVATE_IP: Final = "172.16.0.2"
MEDIA_PORTS: Final = (40000, 40199)
#: Case one_port: every peer connection on this one port (`ice.udp_port`).
ONE_MEDIA_PORT: Final = 40500
TURN_PORT: Final = 3478
HTTP_PORT: Final = 8080

READY_WAIT_S: Final = 40.0
KEY_WAIT_S: Final = 5.0
HOLD_S: Final = 1.5
#: Bound on the wait for the station's first failed attempt (its connect_timeout_s is 10 s).
PRESENCE_WATCH_S: Final = 25.0
#: Watched after that failure, while the agent tears down and tries again.
AFTER_FAILURE_WATCH_S: Final = 3.0
NO_PATH_TOLD_WAIT_S: Final = 20.0
RECOVERY_WAIT_S: Final = 15.0
#: A 20 ms frame counts as audio when its RMS is above this (full scale 32768; the tones are
#: at about -10 dBFS, silence and Opus comfort noise far below).
ENERGY_RMS: Final = 300.0

# The operator role.
GO_WAIT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 15.0
OFFER_ATTEMPTS: Final = 150  # 0.2 s apart, while the station comes online
OPERATOR_BOUND_S: Final = RUN_BOUND_S + 30
COMMAND_QUEUE: Final = 64
TONE_HZ: Final = 660.0


# -- the network --------------------------------------------------------------------------------


class Network:
    """The namespaces of the case (holder processes), their links, routes and rules."""

    def __init__(self, case: str, data_dir: Path, children: list[Child]) -> None:
        self.case = case
        self.pids: dict[str, int] = {}
        names = ["rsta", "sta", "rop", "op"] + (["srv"] if case == "sfu_nat" else [])
        for name in names:
            holder = Child(
                f"ns-{name}", ["unshare", "-n", "sleep", str(OPERATOR_BOUND_S)], data_dir / name
            )
            children.append(holder)
            self.pids[name] = holder.process.pid

    def run(self, node: str, command: list[str], stdin: str | None = None) -> str:
        if node == "pub":
            return run_command(command, stdin)
        return run_command(in_namespace_of(self.pids[node], command), stdin)

    def _link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        run_command(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if])
        for node, interface, address in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if node != "pub":
                run_command(["ip", "link", "set", interface, "netns", str(self.pids[node])])
            self.run(node, ["ip", "addr", "add", address, "dev", interface])
            self.run(node, ["ip", "link", "set", interface, "up"])

    def build(self) -> None:
        run_command(["ip", "link", "set", "lo", "up"])
        run_command(["ip", "addr", "add", f"{SERVER_IP}/32", "dev", "lo"])
        for node in self.pids:
            self.run(node, ["ip", "link", "set", "lo", "up"])
        self._link("pub", "pub-sta", "203.0.113.1/30", "rsta", "rsta-wan", "203.0.113.2/30")
        self._link("rsta", "rsta-lan", "10.0.1.1/24", "sta", "sta0", "10.0.1.2/24")
        self._link("pub", "pub-op", "203.0.113.5/30", "rop", "rop-wan", "203.0.113.6/30")
        self._link("rop", "rop-lan", "10.0.2.1/24", "op", "op0", "10.0.2.2/24")
        for node, gateway in (
            ("rsta", "203.0.113.1"),
            ("sta", "10.0.1.1"),
            ("rop", "203.0.113.5"),
            ("op", "10.0.2.1"),
        ):
            self.run(node, ["ip", "route", "add", "default", "via", gateway])
        self._router("rsta", "rsta-wan", "masquerade random,fully-random")  # symmetric
        self._router("rop", "rop-wan", "masquerade")  # port-restricted cone
        if "srv" in self.pids:
            self._link("pub", "pub-srv", "172.16.0.1/30", "srv", "srv0", f"{SRV_PRIVATE_IP}/30")
            self.run("srv", ["ip", "route", "add", "default", "via", "172.16.0.1"])
            # the public address is routed towards the server; pub's NAT rewrites it
            run_command(["ip", "route", "add", f"{SERVER_NAT_IP}/32", "via", SRV_PRIVATE_IP])
            run_command(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            run_command(["nft", "-f", "-"], stdin=ONE_TO_ONE_NAT)
        blocked = {
            "media_blocked": (["rsta", "rop"], MEDIA_BLOCK),
            "relay_cut": (["rsta", "rop"], MEDIA_BLOCK),
            "udp_blocked": (["rsta", "rop"], UDP_BLOCK),
            "one_port": (["rsta", "rop"], ONE_PORT_ONLY),
            "operator_no_path": (["rop"], UDP_BLOCK),
            "station_no_path": (["rsta"], UDP_BLOCK),
        }.get(self.case)
        if blocked is not None:
            routers, rules = blocked
            for router in routers:
                self.run(router, ["nft", "-f", "-"], stdin=_filter_table(rules))

    def _router(self, node: str, wan: str, masquerade: str) -> None:
        self.run(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        table = (
            "table ip rc_nat {\n"
            "  chain post {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "{wan}" {masquerade}\n'
            "  }\n"
            "}\n"
        )
        self.run(node, ["nft", "-f", "-"], stdin=table)

    def cut_operator(self) -> None:
        self.run("rop", ["nft", "-f", "-"], stdin=CUT_TABLE)

    def heal_operator(self) -> None:
        self.run("rop", ["nft", "delete", "table", "inet", "rc_cut"])


#: The SFU's media ports on the server's addresses (a client's own ports may be anything).
_SERVER_ADDRESSES: Final = f"{{ {SERVER_IP}, {SERVER_NAT_IP} }}"
_MEDIA_RANGE: Final = f"{MEDIA_PORTS[0]}-{MEDIA_PORTS[1]}"
MEDIA_BLOCK: Final = (
    f"ip daddr {_SERVER_ADDRESSES} udp dport {_MEDIA_RANGE} drop\n"
    f"    ip saddr {_SERVER_ADDRESSES} udp sport {_MEDIA_RANGE} drop\n"
)
UDP_BLOCK: Final = "meta l4proto udp drop\n"
#: Case one_port: the server's firewall lets through UDP on its one media port only (not even
#: TURN's: TURN over TCP is left, and must not be what connects).
ONE_PORT_ONLY: Final = (
    f"ip daddr {_SERVER_ADDRESSES} udp dport != {ONE_MEDIA_PORT} drop\n"
    f"    ip saddr {_SERVER_ADDRESSES} udp sport != {ONE_MEDIA_PORT} drop\n"
)
CUT_TABLE: Final = (
    "table inet rc_cut {\n"
    "  chain forward_filter {\n"
    "    type filter hook forward priority -10; policy drop;\n"
    "  }\n"
    "}\n"
)
ONE_TO_ONE_NAT: Final = (
    "table ip rc_one_to_one {\n"
    "  chain pre {\n"
    "    type nat hook prerouting priority dstnat; policy accept;\n"
    f"    ip daddr {SERVER_NAT_IP} dnat to {SRV_PRIVATE_IP}\n"
    "  }\n"
    "  chain out {\n"
    "    type nat hook output priority -100; policy accept;\n"
    f"    ip daddr {SERVER_NAT_IP} dnat to {SRV_PRIVATE_IP}\n"
    "  }\n"
    "  chain post {\n"
    "    type nat hook postrouting priority srcnat; policy accept;\n"
    f"    ip saddr {SRV_PRIVATE_IP} snat to {SERVER_NAT_IP}\n"
    "  }\n"
    "}\n"
)


def _filter_table(rules: str) -> str:
    return (
        "table inet rc_block {\n"
        "  chain forward_filter {\n"
        "    type filter hook forward priority 0; policy accept;\n"
        f"    {rules}"
        "  }\n"
        "}\n"
    )


def rig_reader_in(pid: int, port: int) -> RigReader:
    """A `RigReader` whose socket lives in the network namespace of `pid` (the station's):
    this thread enters it to connect, and comes back; the socket stays where it was made."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/ns/net") as home, open(f"/proc/{pid}/ns/net") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise CheckFailedError(
                f"setns into the station's namespace: errno {ctypes.get_errno()}"
            )
        try:
            return RigReader.connect(port)
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise CheckFailedError("could not come back from the station's namespace")


# -- the driver ---------------------------------------------------------------------------------


def raw_energy(path: Path, start: int) -> tuple[int, int]:
    """(20 ms frames, frames above `ENERGY_RMS`) of the agent's TX audio file (s16le mono
    48 kHz, as `raw:` writes) from byte `start`."""
    try:
        data = path.read_bytes()[start:]
    except FileNotFoundError:
        return 0, 0
    levels = frame_rms(data)
    return len(levels), sum(1 for level in levels if level > ENERGY_RMS)


def run(args: argparse.Namespace, result: dict[str, Any], children: list[Child]) -> None:
    case = args.case
    data_dir = Path(args.data_dir)
    python = args.python
    network = Network(case, data_dir, children)
    network.build()

    rig_port = free_port()
    rigctld = Child(
        "rigctld",
        in_namespace_of(
            network.pids["sta"],
            [RIGCTLD, "-m", "1", "-P", "RIG", "-T", "127.0.0.1", "-t", str(rig_port)],
        ),
        data_dir / "rigctld.log",
    )
    children.append(rigctld)
    board_id, secret = asyncio.run(_seed(data_dir))
    turn_secret = os.urandom(24).hex()  # no coturn checks it when there is none
    with_turn = case not in ("turn_down", "operator_no_path", "station_no_path")
    if with_turn:
        coturn, turn_secret = start_coturn(data_dir)
        children.append(coturn)

    behind_nat = case == "sfu_nat"
    public_ip = SERVER_NAT_IP if behind_nat else SERVER_IP
    bind_ip = SRV_PRIVATE_IP if behind_nat else SERVER_IP
    config = data_dir / "server.toml"
    config.write_text(
        f'host = "0.0.0.0"\nport = {HTTP_PORT}\ndata_dir = "{data_dir}"\n'
        f'secret = "{os.urandom(32).hex()}"\nlog_level = "INFO"\n'
        f'[ice]\nhost_addresses = ["{bind_ip}"]\n'
        + (
            f"udp_port = {ONE_MEDIA_PORT}\n"
            if case == "one_port"
            else f"udp_port_min = {MEDIA_PORTS[0]}\nudp_port_max = {MEDIA_PORTS[1]}\n"
        )
        + (f'announced_address = "{SERVER_NAT_IP}"\n' if behind_nat else "")
        + "[turn]\nurls = ["
        f'"turn:{SERVER_IP}:{TURN_PORT}?transport=udp", '
        f'"turn:{SERVER_IP}:{TURN_PORT}?transport=tcp"]\n'
    )
    server_command = [python, "-m", "radiocore", "serve", "--config", str(config)]
    server = Child(
        "server",
        in_namespace_of(network.pids["srv"], server_command) if behind_nat else server_command,
        data_dir / "server.log",
        env=dict(os.environ, RADIOCORE_TURN__SECRET=turn_secret),
    )
    children.append(server)
    url = f"http://{public_ip}:{HTTP_PORT}/"
    wait_health(url, server, 30)
    tx_audio = data_dir / "tx.raw"
    agent = Child(
        "agent",
        in_namespace_of(
            network.pids["sta"],
            [
                python,
                "-m",
                "board_agent",
                "--server",
                url,
                "--board-id",
                board_id,
                "--rig",
                "rigctld",
                "--rigctld-port",
                str(rig_port),
                "--log-level",
                "INFO",
                "--audio-sink",
                f"raw:{tx_audio}",
                "--reconnect-max-s",
                "2",
            ],
        ),
        data_dir / "agent.log",
        env=dict(os.environ, RADIOCORE_AGENT_SECRET=secret),
    )
    children.append(agent)
    token = login(url, BENCH_EMAIL, BENCH_PASSWORD)
    operator = OperatorChild(
        "operator",
        in_namespace_of(
            network.pids["op"],
            [
                python,
                str(THIS_FILE),
                "operator",
                "--url",
                url,
                "--board-id",
                board_id,
                "--turn-transport",
                "tcp" if case == "udp_blocked" else "udp",
            ],
        ),
        data_dir / "operator.log",
    )
    children.append(operator)
    operator.start_reading()  # the first thread: every child is started
    operator.wait("started", 30)
    began = time.monotonic()
    operator.send("go", token=token, watch_only=case == "station_no_path")

    if case == "station_no_path":
        watch_presence(operator, agent, result)
        return
    if case == "operator_no_path":
        told = operator.wait("error", NO_PATH_TOLD_WAIT_S)
        result["operator_told"] = told.get("data")
        result["operator_told_after_answer_s"] = round(float(told["t"]) - _answer_time(operator), 2)
        return

    ready = operator.wait("ready", READY_WAIT_S)
    result["operator_ready_s"] = round(float(ready["t"]) - began, 2)
    result["join_to_first_audio_s"] = ready.get("join_to_first_audio_s")
    result["operator_path"] = ready.get("path")
    result["agent_path"] = _agent_path(agent)
    rig = rig_reader_in(network.pids["sta"], rig_port)
    try:
        if case in ("cut", "relay_cut"):
            cut_and_recover(network, operator, result)
        key_and_listen(rig, operator, tx_audio, result)
    finally:
        rig.close()
    result["coturn_allocations"] = _coturn_allocations(data_dir) if with_turn else None


def start_coturn(data_dir: Path) -> tuple[Child, str]:
    """coturn on the server's public address (the relay ports from a range near a free one);
    (the child, its secret)."""
    relay = Coturn(data_dir, address=SERVER_IP, port=TURN_PORT)
    relay.start()
    assert relay.process is not None  # started
    return Adopted("coturn", relay.process, relay.log, relay.stop), relay.secret


def _coturn_allocations(data_dir: Path) -> int:
    text = "\n".join(
        p.read_text(errors="replace") for p in data_dir.glob("turnserver*.log") if p.is_file()
    )
    return text.count("ALLOCATE processed, success")


def _agent_path(agent: Child) -> str | None:
    for line in reversed(agent.tail(400)):
        if "media path " in line:
            return line.split("media path ", 1)[1].strip()
    return None


def _answer_time(operator: OperatorChild) -> float:
    answered = operator.find("answered")
    if answered is None:
        raise CheckFailedError("the operator never got an answer to its offer")
    return float(answered["t"])


def watch_presence(operator: OperatorChild, agent: Child, result: dict[str, Any]) -> None:
    """The station cannot connect its media: the operator must never see it online while the
    agent tries, fails (its own bound, `connect_timeout_s`) and starts its next attempt."""
    joined = operator.wait("joined", 30)
    result["join_online"] = joined.get("online")
    deadline = time.monotonic() + PRESENCE_WATCH_S
    while time.monotonic() < deadline and _failed_attempts(agent) == 0:
        time.sleep(0.2)
    # a flap would show around the failure: the agent tears its attempt down and retries
    time.sleep(AFTER_FAILURE_WATCH_S)
    result["presence_events"] = [e.get("data") for e in operator.events if e["event"] == "presence"]
    result["agent_attempts_failed"] = _failed_attempts(agent)
    failure = [line for line in agent.tail(400) if "no connection within" in line]
    result["agent_failure_reason"] = (
        failure[-1].split("no connection within", 1)[1] if failure else None
    )


def _failed_attempts(agent: Child) -> int:
    return "\n".join(agent.tail(400)).count("no connection within")


def cut_and_recover(network: Network, operator: OperatorChild, result: dict[str, Any]) -> None:
    """The operator's router drops everything for `--cut-s`; then audio must come back."""
    cut_at = time.monotonic()
    network.cut_operator()
    time.sleep(ARGS_CUT_S[0])
    network.heal_operator()
    healed = time.monotonic()
    result["cut_s"] = round(healed - cut_at, 2)
    frames_at_heal = _last_audio(operator)
    for _ in range(int(RECOVERY_WAIT_S / 0.05)):
        latest = _last_audio(operator)
        if (
            latest is not None
            and frames_at_heal is not None
            and latest["t"] > healed
            and latest["loud"] > frames_at_heal["loud"]
        ):
            result["audio_back_after_heal_s"] = round(float(latest["t"]) - healed, 2)
            break
        if time.monotonic() - healed > RECOVERY_WAIT_S:
            break
        time.sleep(0.05)
    else:
        result["audio_back_after_heal_s"] = None
    result.setdefault("audio_back_after_heal_s", None)
    result["operator_link_events"] = [
        {"event": e["event"], "state": e.get("state")}
        for e in operator.events
        if e["event"] in ("pc_state", "channel_closed", "sio_disconnect", "error")
    ]


ARGS_CUT_S: list[float] = [5.0]


def _last_audio(operator: OperatorChild) -> dict[str, Any] | None:
    audio = [e for e in operator.events if e["event"] == "audio"]
    return audio[-1] if audio else None


def key_and_listen(
    rig: RigReader, operator: OperatorChild, tx_audio: Path, result: dict[str, Any]
) -> None:
    """Audio from the station at the operator; a PTT press keys the rig and carries the
    operator's tone to the agent; the release unkeys."""
    before = _last_audio(operator)
    time.sleep(1.0)
    after = _last_audio(operator)
    result["rx_loud_frames_1s"] = (
        None if before is None or after is None else after["loud"] - before["loud"]
    )
    if rig.ptt():
        raise CheckFailedError("the rig is keyed before anyone pressed PTT")
    start = tx_audio.stat().st_size if tx_audio.exists() else 0
    pressed = operator.send("key")
    keyed = wait_rig(rig, True, KEY_WAIT_S)
    result["key_s"] = None if keyed is None else round(keyed - pressed, 3)
    if keyed is None:
        raise CheckFailedError(f"the operator's key did not reach the rig in {KEY_WAIT_S} s")
    time.sleep(HOLD_S)
    result["keyed_after_hold"] = rig.ptt()
    let_go = operator.send("unkey")
    unkeyed = wait_rig(rig, False, KEY_WAIT_S)
    result["release_s"] = None if unkeyed is None else round(unkeyed - let_go, 3)
    frames, loud = raw_energy(tx_audio, start)
    result["tx_frames_at_agent"] = frames
    result["tx_loud_frames_at_agent"] = loud
    result["operator_errors"] = [e.get("data") for e in operator.events if e["event"] == "error"]


async def _seed(data_dir: Path) -> tuple[str, str]:
    return await seed(data_dir)


def main_driver(args: argparse.Namespace) -> int:
    ARGS_CUT_S[0] = args.cut_s

    def body(result: dict[str, Any], children: list[Child], data_dir: Path) -> None:
        args.data_dir = str(data_dir)
        run(args, result, children)

    return run_driver(f"nat-{args.case}", body, {"case": args.case}, RUN_BOUND_S, args.keep_data)


# -- the operator role --------------------------------------------------------------------------


def _order_turn(servers: list[dict[str, Any]], transport: str) -> list[dict[str, Any]]:
    """The join reply's list with the TURN URL of `transport` first (aioice uses only the first
    TURN URL; a browser would try them all)."""
    ordered = []
    for server in servers:
        urls = list(server.get("urls", []))
        urls.sort(key=lambda u: 0 if u.endswith(f"transport={transport}") else 1)
        ordered.append({**server, "urls": urls})
    return ordered


async def operate(args: argparse.Namespace) -> None:
    """An operator as the console behaves, with a microphone playing a tone: joins with the
    server's ICE servers, listens (reporting audio energy), keys with keep-alives every 250 ms
    until told to let go; reports what the server says to it."""
    import numpy as np
    import socketio
    from aiortc import (
        MediaStreamTrack,
        RTCConfiguration,
        RTCIceServer,
        RTCPeerConnection,
    )
    from av import AudioFrame

    from board_agent.session import describe_media_path

    class ToneTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0
            self._start: float | None = None

        async def recv(self) -> AudioFrame:
            if self._start is None:
                self._start = time.monotonic()
            due = self._start + self._n * 0.02
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            t = (np.arange(960) + self._n * 960) / 48000
            pcm = (np.sin(2 * np.pi * TONE_HZ * t) * 10000).astype(np.int16)
            frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 48000
            frame.pts = self._n * 960
            self._n += 1
            return frame

    commands, first = await start_role(GO_WAIT_S, COMMAND_QUEUE)
    if first.get("cmd") != "go":
        return
    token = str(first.get("token"))

    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)

    async def on_disconnect(*_: Any) -> None:
        emit("sio_disconnect")

    async def on_presence(data: Any) -> None:
        emit("presence", data=data)

    async def on_error(data: Any) -> None:
        emit("error", data=data)

    sio.on("disconnect", on_disconnect, namespace="/operator")
    sio.on("presence", on_presence, namespace="/operator")
    sio.on("error", on_error, namespace="/operator")
    await asyncio.wait_for(
        sio.connect(
            args.url, namespaces=["/operator"], auth={"token": token}, transports=["websocket"]
        ),
        CONNECT_TIMEOUT_S,
    )
    joined_at = time.monotonic()
    joined = await sio.call("join", {"board_id": args.board_id}, namespace="/operator", timeout=10)
    if not joined.get("ok"):
        emit("failed", why=f"join: {joined}")
        return
    emit("joined", online=(joined.get("board") or {}).get("online"))
    if first.get("watch_only"):
        await commands.get()  # until `stop`
        await sio.disconnect()
        return
    servers = _order_turn(joined.get("ice_servers") or [], args.turn_transport)
    pc = RTCPeerConnection(
        RTCConfiguration(
            iceServers=[
                RTCIceServer(
                    urls=s["urls"], username=s.get("username"), credential=s.get("credential")
                )
                for s in servers
            ]
        )
    )
    listening: asyncio.Task[None] | None = None
    try:
        tone = ToneTrack()
        pc.addTransceiver(tone, direction="sendrecv")
        channel = pc.createDataChannel("control")
        station_ready = asyncio.Event()  # the first status: the station's channel is up
        first_audio = asyncio.Event()

        def on_message(message: str | bytes) -> None:
            try:
                data = json.loads(message)
            except ValueError:
                return
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "status":
                station_ready.set()
            elif kind in ("floor", "ptt_released", "error", "tx_warning"):
                emit("message", data=data)

        async def listen(track: MediaStreamTrack) -> None:
            loud = 0
            last_report = 0.0
            for frames in range(1, int(OPERATOR_BOUND_S / 0.02) * 2):
                frame = await track.recv()
                pcm = frame.to_ndarray().astype(np.float64)  # type: ignore[union-attr]
                if float(np.sqrt(np.mean(pcm * pcm))) > ENERGY_RMS:
                    loud += 1
                    first_audio.set()
                now = time.monotonic()
                if now - last_report >= 0.1:
                    emit("audio", frames=frames, loud=loud)
                    last_report = now

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            nonlocal listening
            if track.kind == "audio" and listening is None:
                listening = asyncio.get_running_loop().create_task(listen(track))

        channel.on("message", on_message)
        report_link(pc, channel)
        await offer_until_online(sio, pc, args.board_id, OFFER_ATTEMPTS)
        emit("answered")
        await asyncio.wait_for(station_ready.wait(), READY_WAIT_S)
        await asyncio.wait_for(first_audio.wait(), READY_WAIT_S)
        emit(
            "ready",
            join_to_first_audio_s=round(time.monotonic() - joined_at, 3),
            path=describe_media_path(pc),
        )

        await serve_ptt_commands(commands, channel, OPERATOR_BOUND_S)
    finally:
        if listening is not None:
            listening.cancel()
        await close_operator(pc, sio)


def main_operator(args: argparse.Namespace) -> int:
    return run_role(operate(args), OPERATOR_BOUND_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role")
    operator = roles.add_parser("operator", help="(internal) the operator process")
    operator.add_argument("--url", required=True)
    operator.add_argument("--board-id", required=True)
    operator.add_argument("--turn-transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--case", choices=CASES, default="direct")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children")
    parser.add_argument("--cut-s", type=float, default=5.0, help="how long the cut lasts")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the store and the logs; report where"
    )
    args = parser.parse_args()
    if args.role == "operator":
        return main_operator(args)
    return main_driver(args)


if __name__ == "__main__":
    sys.exit(main())
