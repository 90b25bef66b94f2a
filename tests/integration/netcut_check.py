"""An operator holding PTT loses the network silently: the rig must be released by the server's
dead-man, must stay released when the network comes back, and must key for the next operator.

Meant to run as root inside a private network namespace ("A") that has only loopback, so no
packet can leave the machine and nothing is changed outside it:

    unshare -n python tests/integration/netcut_check.py

Topology, all built here:

    namespace A (this script)                          namespace B (a nested `unshare -n`)
      rigctld -m 1 -P RIG      127.0.0.1:R               the cut operator (the board's owner):
      radiocore serve          0.0.0.0:S, ICE on           Socket.IO to http://10.88.0.1:S/,
                               127.0.0.1 and 10.88.0.1     ICE on 10.88.0.2 only
      board agent (rigctld)    127.0.0.1
      second operator (guest   127.0.0.1
        with the transmit right, not the owner:
        it cannot override a floor left held)
      rcA 10.88.0.1/30  <============ veth ============>  rcB 10.88.0.2/30

The cut is an nftables `netdev` table whose ingress chain drops every packet, loaded on both
veth ends (rcA in A, rcB in B): what either side sends vanishes on the wire and neither sender
is told (no FIN, RST, ICMP or local send error), as when Wi-Fi drops or a NAT forgets the flow.
Dropping at ingress on each end, rather than in A's output hook, is what keeps it silent: a
packet dropped on output fails the sender's `sendto` with EPERM. Neighbour entries are static,
so ARP plays no part during the cut or after it. Healing deletes both tables.

Steps:
1. A: `lo` up, the veth pair, rigctld, a seeded store (owner DL0BCH and its board, guest DL2NET
   with a transmit grant), the server (config file: `floor.deadman_s`), the agent (its own
   dead-man set longer than the server's, so the release measured is the server's);
2. both operator processes (this file, `operator` role) join and listen; the cut one in B once
   rcB is moved there and configured;
3. the cut operator keys (keep-alives every 250 ms) and holds for longer than the dead-man, so
   the keep-alives demonstrably reach the server over the veth;
4. cut, 50 ms after a keep-alive was sent (it got through: the dead-man then runs its full
   time, the hardest case for the bound); the rig's PTT is read from rigctld on a connection of
   its own until it is off, and the release is timed from the moment A's rule was in place
   (from then on nothing reaches the server; `release_from_cut_start_s` also counts the time
   `nft` took to start);
5. heal after `--cut-s`; the cut operator, still holding and still sending keep-alives, sends a
   marker (an unknown message type the server answers with `error`) behind everything it
   queued during the cut; the rig is watched until at least 3 s after the heal and 1 s after
   that answer came, so the late keep-alives certainly reached the server while watched;
6. the cut operator lets go (a `ptt` false from someone who no longer holds the floor); the
   second operator keys and releases.

It prints one JSON line with what it saw (`ok` false and `failure` say why it stopped early;
log tails then) and exits 0 when every step ran; `test_network_cut.py` judges the figures.
Every process it starts is in its own process group, dies with this script (PDEATHSIG), and is
stopped whatever happens; the whole run is bounded (`RUN_BOUND_S`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

from bench.netlab import (
    RIG_POLL_S,
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
    wait_listening,
    wait_rig,
)
from bench.rig_reader import RigReader
from bench.tools import BENCH_EMAIL, BENCH_PASSWORD, free_port, seed

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
THIS_FILE: Final = Path(__file__).resolve()
RIGCTLD: Final = "/usr/bin/rigctld"

RUN_BOUND_S: Final = 90
SIDE_A: Final = "rcA"
SIDE_B: Final = "rcB"
ADDRESS_A: Final = "10.88.0.1"
ADDRESS_B: Final = "10.88.0.2"
PREFIX: Final = 30
CUT_TABLE: Final = "radiocore_netcut"

GUEST_EMAIL: Final = "guest@radiocore.local"
GUEST_PASSWORD: Final = "guest-password"
GUEST_CALLSIGN: Final = "DL2NET"
MARKER_TYPE: Final = "netcut_marker"

#: The agent's own dead-man, longer than the server's so that the release measured is the
#: server's (with both at 1 s either may win the race).
AGENT_DEADMAN_S: Final = 5.0
READY_WAIT_S: Final = 60.0
KEY_WAIT_S: Final = 5.0
#: The cut operator holds this long before the cut: longer than the dead-man, so keep-alives
#: must have crossed the veth for the rig to be keyed still.
HOLD_BEFORE_CUT_S: Final = 1.5
#: The cut comes this long after a keep-alive was sent: it has crossed the veth by then, and
#: the next one is 200 ms away.
CUT_AFTER_KEEPALIVE_S: Final = 0.05
WATCH_AFTER_HEAL_MIN_S: Final = 3.0
WATCH_AFTER_MARKER_S: Final = 1.0
WATCH_AFTER_HEAL_MAX_S: Final = 20.0
SECOND_WAIT_S: Final = 2.0
SECOND_HOLD_S: Final = 0.5

# The operator role.
GO_WAIT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 15.0
OFFER_ATTEMPTS: Final = 150  # 0.2 s apart, while the station comes online
OPERATOR_BOUND_S: Final = RUN_BOUND_S + 30
COMMAND_QUEUE: Final = 64


# -- the network --------------------------------------------------------------------------------


def _bring_up_loopback() -> None:
    """`ip link set lo up`, after checking that loopback is all this namespace has."""
    links = run_command(["ip", "-o", "link", "show"])
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if line]
    others = [name for name in names if name != "lo"]
    if others:
        raise CheckFailedError(
            f"not in an isolated network namespace (interfaces {others}); run under `unshare -n`"
        )
    run_command(["ip", "link", "set", "lo", "up"])


def _mac(interface: str) -> str:
    (link,) = json.loads(run_command(["ip", "-j", "link", "show", interface]))
    return str(link["address"])


def create_veth() -> tuple[str, str]:
    """The veth pair in A, A's end addressed and up; (MAC of rcA, MAC of rcB)."""
    run_command(["ip", "link", "add", SIDE_A, "type", "veth", "peer", "name", SIDE_B])
    run_command(["ip", "addr", "add", f"{ADDRESS_A}/{PREFIX}", "dev", SIDE_A])
    run_command(["ip", "link", "set", SIDE_A, "up"])
    return _mac(SIDE_A), _mac(SIDE_B)


def move_into_b(pid: int, mac_a: str, mac_b: str) -> None:
    """rcB into the namespace of process `pid` (B), addressed and up; static neighbours."""
    run_command(["ip", "link", "set", SIDE_B, "netns", str(pid)])
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{ADDRESS_B}/{PREFIX}", "dev", SIDE_B],
        ["ip", "link", "set", SIDE_B, "up"],
        ["ip", "neigh", "replace", ADDRESS_A, "lladdr", mac_a, "dev", SIDE_B, "nud", "permanent"],
    ):
        run_command(in_namespace_of(pid, command))
    run_command(
        ["ip", "neigh", "replace", ADDRESS_B, "lladdr", mac_b, "dev", SIDE_A, "nud", "permanent"]
    )


def _drop_table(interface: str) -> str:
    return (
        f"table netdev {CUT_TABLE} {{\n"
        f"  chain ingress {{\n"
        f'    type filter hook ingress device "{interface}" priority 0; policy drop;\n'
        f"  }}\n"
        f"}}\n"
    )


def cut(pid_b: int) -> float:
    """Drop everything arriving on either veth end: A's first (the keep-alives stop there).

    Returns when A's rule was in place: keep-alives sent before it still reached the server
    (on a loaded machine starting `nft` alone can take a good part of a second)."""
    run_command(["nft", "-f", "-"], stdin=_drop_table(SIDE_A))
    silent = time.monotonic()
    run_command(in_namespace_of(pid_b, ["nft", "-f", "-"]), stdin=_drop_table(SIDE_B))
    return silent


def heal(pid_b: int) -> None:
    run_command(["nft", "delete", "table", "netdev", CUT_TABLE])
    run_command(in_namespace_of(pid_b, ["nft", "delete", "table", "netdev", CUT_TABLE]))


# -- the station side ---------------------------------------------------------------------------


# -- the driver ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, result: dict[str, Any], children: list[Child]) -> None:
    _bring_up_loopback()
    mac_a, mac_b = create_veth()
    data_dir = Path(args.data_dir)
    python = args.python

    rig_port = free_port()
    rigctld = Child(
        "rigctld",
        [RIGCTLD, "-m", "1", "-P", "RIG", "-T", "127.0.0.1", "-t", str(rig_port)],
        data_dir / "rigctld.log",
    )
    children.append(rigctld)
    board_id, secret = asyncio.run(_seed(data_dir))

    port = free_port()
    config = data_dir / "server.toml"
    config.write_text(
        f'host = "0.0.0.0"\nport = {port}\ndata_dir = "{data_dir}"\n'
        f'secret = "{os.urandom(32).hex()}"\nlog_level = "INFO"\n'
        f'[ice]\nhost_addresses = ["127.0.0.1", "{ADDRESS_A}"]\n'
        f"[floor]\ndeadman_s = {args.deadman_s}\n"
    )
    server = Child(
        "server",
        [python, "-m", "radiocore", "serve", "--config", str(config)],
        data_dir / "server.log",
    )
    children.append(server)
    url_a = f"http://127.0.0.1:{port}/"
    url_b = f"http://{ADDRESS_A}:{port}/"
    wait_listening(rig_port, rigctld, 5)
    wait_health(url_a, server, 30)
    agent_command = [python, "-m", "board_agent", "--server", url_a, "--board-id", board_id,
                     "--ice-host-address", "127.0.0.1", "--rig", "rigctld", "--rigctld-port",
                     str(rig_port), "--deadman", str(AGENT_DEADMAN_S)]  # fmt: skip
    agent = Child(
        "agent",
        agent_command,
        data_dir / "agent.log",
        env=dict(os.environ, RADIOCORE_AGENT_SECRET=secret),
    )
    children.append(agent)
    owner_token = login(url_a, BENCH_EMAIL, BENCH_PASSWORD)
    guest_token = login(url_a, GUEST_EMAIL, GUEST_PASSWORD)

    def operator_command(url: str, ice_host: str) -> list[str]:
        return [python, str(THIS_FILE), "operator", "--url", url, "--board-id", board_id,
                "--ice-host", ice_host]  # fmt: skip

    cut_op = OperatorChild(
        "cut operator",
        ["unshare", "-n", *operator_command(url_b, ADDRESS_B)],
        data_dir / "cut-operator.log",
    )
    children.append(cut_op)
    second = OperatorChild(
        "second operator",
        operator_command(url_a, "127.0.0.1"),
        data_dir / "second-operator.log",
    )
    children.append(second)
    cut_op.start_reading()  # the first thread: every child is started
    second.start_reading()

    started = cut_op.wait("started", 30)
    pid_b = int(started["pid"])
    if pid_b != cut_op.process.pid:
        raise CheckFailedError(f"the cut operator runs as {pid_b}, not {cut_op.process.pid}")
    move_into_b(pid_b, mac_a, mac_b)
    cut_op.send("go", token=owner_token)  # a credential: never on a command line
    second.send("go", token=guest_token)
    began = time.monotonic()
    cut_op.wait("ready", READY_WAIT_S)
    second.wait("ready", READY_WAIT_S)
    result["operators_ready_s"] = round(time.monotonic() - began, 2)

    rig = RigReader(rig_port)
    try:
        drive(rig, cut_op, second, pid_b, args, result)
    finally:
        rig.close()


async def _seed(data_dir: Path) -> tuple[str, str]:
    """The bench owner and its board, and a guest with the transmit right: (board id, secret)."""
    from signaling.accounts import create_account
    from signaling.store import SQLITE_FILE_NAME, SqliteStore

    board_id, secret = await seed(data_dir)
    async with SqliteStore(data_dir / SQLITE_FILE_NAME) as store:
        guest = await create_account(store, GUEST_EMAIL, GUEST_PASSWORD, GUEST_CALLSIGN)
        await store.set_grant(board_id, guest.id, "transmit")
    return board_id, secret


def drive(
    rig: RigReader,
    cut_op: OperatorChild,
    second: OperatorChild,
    pid_b: int,
    args: argparse.Namespace,
    result: dict[str, Any],
) -> None:
    """Steps 3 to 6 of the module docstring; fills `result`."""
    if rig.ptt():
        raise CheckFailedError("the rig is keyed before anyone pressed PTT")
    pressed = cut_op.send("key")
    keyed = wait_rig(rig, True, KEY_WAIT_S)
    if keyed is None:
        raise CheckFailedError(f"the cut operator's key did not reach the rig in {KEY_WAIT_S} s")
    result["cut_operator_key_s"] = round(keyed - pressed, 3)
    time.sleep(HOLD_BEFORE_CUT_S)
    result["keyed_before_cut"] = rig.ptt()
    if not result["keyed_before_cut"]:
        raise CheckFailedError(
            f"the rig was released within {HOLD_BEFORE_CUT_S} s of holding, before any cut: "
            "the keep-alives did not reach the server over the veth"
        )

    # The hardest case for the bound: the last keep-alive reaches the server just before the
    # cut, so the dead-man runs its full time from then.
    sent_before = len(cut_op.keepalive_times())
    for _ in range(int(1.0 / 0.005)):  # the next one comes within 250 ms
        if len(cut_op.keepalive_times()) > sent_before:
            break
        time.sleep(0.005)
    else:
        raise CheckFailedError("the cut operator stopped sending keep-alives before the cut")
    time.sleep(max(0.0, cut_op.keepalive_times()[-1] + CUT_AFTER_KEEPALIVE_S - time.monotonic()))
    cut_started = time.monotonic()
    silent = cut(pid_b)
    cut_done = time.monotonic()
    result["cut_apply_s"] = round(cut_done - cut_started, 3)
    result["cut_silent_after_s"] = round(silent - cut_started, 3)
    released = wait_rig(rig, False, max(0.0, args.cut_s - (time.monotonic() - cut_started)))
    # From the moment nothing more could reach the server: a keep-alive sent while `nft` was
    # starting got through and restarted the dead-man, as it should.
    result["release_s"] = None if released is None else round(released - silent, 3)
    result["release_from_cut_start_s"] = (
        None if released is None else round(released - cut_started, 3)
    )
    last_through = max((t for t in cut_op.keepalive_times() if t < silent), default=None)
    if released is not None and last_through is not None:
        result["release_after_last_keepalive_s"] = round(released - last_through, 3)
    time.sleep(max(0.0, args.cut_s - (time.monotonic() - cut_started)))

    result["keyed_at_heal"] = rig.ptt()
    heal_began = time.monotonic()  # the first side's rule goes first: traffic may flow then
    heal(pid_b)
    healed = time.monotonic()
    result["cut_s"] = round(healed - cut_started, 3)
    result["keepalives_sent_during_cut"] = sum(
        1 for t in cut_op.keepalive_times() if cut_started <= t < healed
    )
    cut_op.send("marker")
    watch_after_heal(rig, cut_op, healed, result)

    cut_op.send("unkey")  # from someone who no longer holds the floor: ignored
    time.sleep(0.3)
    result["keyed_after_stale_release"] = rig.ptt()
    pressed = second.send("key")
    keyed_at = wait_rig(rig, True, SECOND_WAIT_S)
    result["second_key_s"] = None if keyed_at is None else round(keyed_at - pressed, 3)
    if keyed_at is not None:
        time.sleep(SECOND_HOLD_S)
        result["second_keyed_after_hold"] = rig.ptt()
    let_go = second.send("unkey")
    unkeyed = wait_rig(rig, False, SECOND_WAIT_S)
    result["second_release_s"] = None if unkeyed is None else round(unkeyed - let_go, 3)
    result["second_operator_errors"] = second.messages("error")
    result["cut_operator"] = cut_operator_view(cut_op, heal_began)


def watch_after_heal(
    rig: RigReader, cut_op: OperatorChild, healed: float, result: dict[str, Any]
) -> None:
    """Reads the rig until `WATCH_AFTER_HEAL_MIN_S` after the heal and `WATCH_AFTER_MARKER_S`
    after the marker's answer (at most `WATCH_AFTER_HEAL_MAX_S`); notes any PTT on."""
    keyed_again: float | None = None
    answered: float | None = None
    now = healed
    for _ in range(int(WATCH_AFTER_HEAL_MAX_S / RIG_POLL_S) + 1):
        now = time.monotonic()
        if keyed_again is None and rig.ptt():
            keyed_again = now
        if answered is None:
            reply = _marker_reply(cut_op)
            if reply is not None:
                answered = float(reply["t"])
        enough = now - healed >= WATCH_AFTER_HEAL_MIN_S and (
            answered is not None and now - answered >= WATCH_AFTER_MARKER_S
        )
        if enough or now - healed >= WATCH_AFTER_HEAL_MAX_S:
            break
        time.sleep(RIG_POLL_S)
    result["watched_after_heal_s"] = round(now - healed, 3)
    result["marker_answered_after_heal_s"] = (
        None if answered is None else round(answered - healed, 3)
    )
    result["rekeyed_after_heal_s"] = None if keyed_again is None else round(keyed_again - healed, 3)


def _marker_reply(cut_op: OperatorChild) -> dict[str, Any] | None:
    for event in list(cut_op.events):
        data = event.get("data") if event.get("event") == "message" else None
        if isinstance(data, dict) and (data.get("type"), data.get("ref")) == ("error", MARKER_TYPE):
            return event
    return None


def cut_operator_view(cut_op: OperatorChild, heal_began: float) -> dict[str, Any]:
    """What the cut operator was told, and when relative to the start of the heal (the two
    sides' rules go one after the other: a message may pass between the two)."""
    view: dict[str, Any] = {"ptt_released": None}
    for event in list(cut_op.events):
        if event.get("event") == "message" and event["data"].get("type") == "ptt_released":
            view["ptt_released"] = {
                **event["data"],
                "after_heal_s": round(float(event["t"]) - heal_began, 3),
            }
            break
    view["floor"] = [m.get("holder") for m in cut_op.messages("floor")]
    view["errors"] = cut_op.messages("error")
    view["link_events"] = [
        {"event": e["event"], **({"state": e["state"]} if "state" in e else {})}
        for e in list(cut_op.events)
        if e.get("event") in ("pc_state", "channel_closed", "sio_disconnect")
    ]
    return view


def main_driver(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {"deadman_s": args.deadman_s, "agent_deadman_s": AGENT_DEADMAN_S}

    def body(result: dict[str, Any], children: list[Child], data_dir: Path) -> None:
        args.data_dir = str(data_dir)
        run(args, result, children)

    return run_driver("netcut", body, result, RUN_BOUND_S, args.keep_data)


# -- the operator role --------------------------------------------------------------------------


async def operate(args: argparse.Namespace) -> None:
    """An operator as the console behaves: joins, listens, keys with keep-alives every 250 ms
    until told to let go; reports what the server says to it."""
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection

    from radiocore.aiortc_hooks import set_host_addresses

    commands, first = await start_role(GO_WAIT_S, COMMAND_QUEUE)
    if first.get("cmd") != "go":
        return
    token = str(first.get("token"))
    set_host_addresses([args.ice_host])

    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)

    async def on_disconnect(*_: Any) -> None:
        emit("sio_disconnect")

    sio.on("disconnect", on_disconnect, namespace="/operator")
    await asyncio.wait_for(
        sio.connect(
            args.url,
            namespaces=["/operator"],
            auth={"token": token},
            transports=["websocket"],
        ),
        CONNECT_TIMEOUT_S,
    )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        joined = await sio.call(
            "join", {"board_id": args.board_id}, namespace="/operator", timeout=10
        )
        if not joined.get("ok"):
            emit("failed", why=f"join: {joined}")
            return
        pc.addTransceiver("audio", direction="recvonly")
        channel = pc.createDataChannel("control")
        station_ready = asyncio.Event()  # the first status: the station's channel is up

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

        channel.on("message", on_message)
        report_link(pc, channel)
        await offer_until_online(sio, pc, args.board_id, OFFER_ATTEMPTS)
        await asyncio.wait_for(station_ready.wait(), READY_WAIT_S)
        emit("ready")

        def marker(command: str) -> None:
            if command == "marker":
                channel.send(json.dumps({"type": MARKER_TYPE}))

        await serve_ptt_commands(commands, channel, OPERATOR_BOUND_S, marker)
    finally:
        await close_operator(pc, sio)


def main_operator(args: argparse.Namespace) -> int:
    return run_role(operate(args), OPERATOR_BOUND_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role")
    operator = roles.add_parser("operator", help="(internal) one operator process")
    operator.add_argument("--url", required=True)
    operator.add_argument("--board-id", required=True)
    operator.add_argument("--ice-host", required=True)
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children")
    parser.add_argument("--deadman-s", type=float, default=1.0, help="the server's floor.deadman_s")
    parser.add_argument("--cut-s", type=float, default=3.0, help="how long the network is cut")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the store and the logs; report where"
    )
    args = parser.parse_args()
    if args.role == "operator":
        return main_operator(args)
    return main_driver(args)


if __name__ == "__main__":
    sys.exit(main())
