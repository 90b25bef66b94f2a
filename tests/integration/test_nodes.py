"""Three `radiocore serve` processes sharing one real PostgreSQL and one real Redis (issue 11,
nodes): a station whose agent is connected to node 1 is online for the operators of every node;
a guest connected to node 3 hears it and keys the rig (node 3 passes its offer to node 1), its
leaving and the withdrawal of its grant end its session on node 1 and reach it through node 3;
node 1 killed (SIGKILL) while the owner transmits through it: the rig unkeys, the agent moves to
node 2 by itself (`other_server_urls`), where the owner hears it and transmits again. A node
stopped cleanly takes its stations offline at once and leaves no key behind; requests between
nodes without the servers' secret are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio
import socketio

from bench.postgres import PostgresServer
from bench.rig_reader import RigReader
from bench.tools import free_ports, start_agent, stop_process, wait_http
from signaling.accounts import create_account, register_board
from signaling.nodelink import NodeKey
from signaling.store import create_store
from tests.integration.harness import Account, Operator, Rigctld, seed
from tests.support.postgres import start_postgres
from tests.support.redis import RedisServer, start_redis
from tests.support.waiting import wait_for, wait_for_async

pytestmark = pytest.mark.timeout(240)

#: Short, so a dead node's stations go offline within seconds (default 9 s).
PRESENCE_TTL_S = 3.0
#: The rig unkeyed this soon after the node its operator transmits through died (the agent
#: sees its server connection drop and releases PTT; the kill matrix's bound).
RELEASE_BOUND_S = 1.5


@dataclass
class Node:
    name: str
    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Cluster:
    postgres: PostgresServer
    redis: RedisServer
    root: Path
    board_id: str = ""
    board_secret: str = ""
    owner: Account | None = None
    guest: Account | None = None  # may transmit on the owner's board
    secret: str = field(default_factory=lambda: os.urandom(32).hex())
    nodes: dict[str, Node] = field(default_factory=dict)

    def start_node(self, name: str, secret: str = "", cluster_config: str = "") -> Node:
        """`secret`: another signing secret than the other nodes' (a misconfigured node);
        `cluster_config`: more lines of its `[cluster]` table."""
        (port,) = free_ports(1)
        data_dir = self.root / name
        data_dir.mkdir()
        config = data_dir / "server.toml"
        config.write_text(
            f'host = "127.0.0.1"\nport = {port}\ndata_dir = "{data_dir}"\n'
            'log_level = "INFO"\n'
            '[ice]\nhost_addresses = ["127.0.0.1"]\n'
            f'[cluster]\nnode_name = "{name}"\npresence_ttl_s = {PRESENCE_TTL_S}\n' + cluster_config
        )
        env = dict(
            os.environ,
            RADIOCORE_SECRET=secret or self.secret,  # one key: a token works on every node
            RADIOCORE_DATABASE_URL=self.postgres.url(),
            RADIOCORE_REDIS_URL=self.redis.url,
        )
        with (data_dir / "server.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "radiocore", "serve", "--config", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_http(url, process)
        except BaseException:
            stop_process(process)
            raise
        node = Node(name, url, process)
        self.nodes[name] = node
        return node

    def log(self, name: str) -> str:
        return (self.root / name / "server.log").read_text(errors="replace")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    postgres = start_postgres()
    redis = start_redis()
    running = Cluster(postgres, redis, tmp_path)
    try:
        yield running
    finally:
        for node in running.nodes.values():
            stop_process(node.process, timeout_s=5)
        redis.stop()
        postgres.stop()


@pytest.fixture
async def seeded(cluster: Cluster) -> Cluster:
    cluster.board_id, cluster.board_secret, cluster.owner, cluster.guest, _ = await seed(
        cluster.root, cluster.postgres.url()
    )
    return cluster


async def sign_in(node: Node, account: Account) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{node.url}api/auth/login",
            json={"email": account.email, "password": account.password},
        ) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return str((await reply.json())["token"])


async def online_on(node: Node, token: str, board_id: str) -> bool:
    """What `GET /api/boards` on `node` says of the board."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{node.url}api/boards", headers={"Authorization": f"Bearer {token}"}) as reply,
    ):
        assert reply.status == 200, await reply.text()
        boards = (await reply.json())["boards"]
    return bool(next(b for b in boards if b["id"] == board_id)["online"])


@dataclass
class Watcher:
    """An operator's Socket.IO connection to one node, keeping the `presence` events."""

    sio: socketio.AsyncClient
    presence: list[tuple[str, bool]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def watching(node: Node, token: str) -> AsyncIterator[Watcher]:
    watcher = Watcher(socketio.AsyncClient(reconnection=False))

    async def on_presence(data: Any) -> None:
        watcher.presence.append((data["board_id"], data["online"]))

    watcher.sio.on("presence", on_presence, namespace="/operator")
    await watcher.sio.connect(
        node.url, namespaces=["/operator"], auth={"token": token}, transports=["websocket"]
    )
    try:
        yield watcher
    finally:
        await watcher.sio.disconnect()


async def withdraw_grant(url: str, owner_token: str, board_id: str, user_id: str) -> None:
    """The owner takes `user_id`'s grant on the board away (`DELETE …/grants/{user}`)."""
    async with (
        aiohttp.ClientSession() as http,
        http.delete(
            f"{url}api/boards/{board_id}/grants/{user_id}",
            headers={"Authorization": f"Bearer {owner_token}"},
        ) as reply,
    ):
        assert reply.status == 204, await reply.text()


async def participants(node: Node) -> int:
    """Participants in the SFU of `node` (its loopback-only counters)."""
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}api/internal/sfu") as reply:
        assert reply.status == 200, await reply.text()
        return int((await reply.json())["participants"])


async def equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def call_operator(operator: Operator, event: str, data: dict[str, Any]) -> Any:
    return await operator.sio.call(event, data, namespace="/operator", timeout=10)


async def listening_operator(node: Node, token: str, board: str, seconds: float) -> Operator:
    """An operator on `node` hearing the station (50 packets), joined as soon as the node
    accepts the offer: retried while it is refused because the station is on another node."""
    last: dict[str, Any] = {}
    for _ in range(int(seconds / 0.5)):  # bounded
        operator = Operator(node, token, tap=True)
        await operator.connect()
        last = await operator.join_and_listen(board)
        if last.get("ok"):
            heard = operator.packets
            assert await wait_for(lambda heard=heard: len(heard) >= 50, seconds=15), "no audio"
            return operator
        await operator.close()
        await asyncio.sleep(0.5)
    raise AssertionError(f"{node.name} refused the station for {seconds} s: {last}")


async def test_three_nodes_share_presence_and_a_dead_nodes_station_moves(
    seeded: Cluster, rig: Rigctld, tmp_path: Path
) -> None:
    cluster = seeded
    assert cluster.owner is not None
    one, two, three = (cluster.start_node(f"node-{n}") for n in (1, 2, 3))
    token = await sign_in(two, cluster.owner)
    assert cluster.guest is not None
    guest_token = await sign_in(three, cluster.guest)
    board = cluster.board_id
    agent_log = tmp_path / "agent.log"
    agent = start_agent(
        one.url, board, cluster.board_secret, rig.port, log=agent_log,
        env={"RADIOCORE_AGENT_RECONNECT_MIN_S": "0.2", "RADIOCORE_AGENT_RECONNECT_MAX_S": "1"},
        extra_args=("--other-server", two.url, "--other-server", three.url),
    )  # fmt: skip
    reader = rig.reader()
    operators: list[Operator] = []
    try:
        async with watching(three, token) as on_three:
            # online on node 1, and so for the operators of every node
            assert await wait_for(lambda: (board, True) in on_three.presence, seconds=30), (
                agent_log.read_text()[-2000:]
            )
            for node in (one, two, three):
                assert await online_on(node, token, board), f"offline on {node.name}"

            # the guest, connected to node 3, reaches the station on node 1: it hears it and
            # transmits (node 3 passed its offer on; its media and control go to node 1)
            before = await participants(one)
            guest = await listening_operator(three, guest_token, board, seconds=10)
            operators.append(guest)
            assert await participants(one) == before + 1, "not a participant on node 1"
            guest.key()
            assert await wait_for(lambda: reader.ptt(), seconds=5), "the guest did not key"
            assert await wait_for(lambda: '"holder":"DL2OTH"' in "".join(guest.inbox), 5)
            guest.unkey()
            assert await wait_for(lambda: not reader.ptt(), seconds=5), "still keyed"
            assert (await call_operator(guest, "leave", {"board_id": board})) == {"ok": True}
            assert await wait_for_async(lambda: equals(participants(one), before), seconds=5), (
                "node 1 kept the guest's peer connection after it left through node 3"
            )

            # the owner withdraws the guest's grant: node 1 ends its session, node 3 tells it
            guest = await listening_operator(three, guest_token, board, seconds=10)
            operators.append(guest)
            assert cluster.guest.user_id
            await withdraw_grant(two.url, token, board, cluster.guest.user_id)

            def told_access_ended() -> bool:
                return any(
                    kind == "error" and data.get("code") == "forbidden" and "board_id" in data
                    for kind, data in guest.events
                )

            assert await wait_for(told_access_ended, seconds=10), guest.events
            assert await wait_for_async(lambda: equals(participants(one), before), seconds=10), (
                "node 1 kept the peer connection of a guest whose grant was withdrawn"
            )

            # the owner transmits through node 1, which then dies without a word
            keyed = await listening_operator(one, token, board, seconds=10)
            operators.append(keyed)
            keyed.key()
            assert await wait_for(lambda: reader.ptt(), seconds=5), "the rig did not key"
            killed = time.time()
            one.process.send_signal(signal.SIGKILL)
            unkeyed_at = await asyncio.to_thread(reader.wait_until, lambda r: not r.ptt(), 10)
            assert unkeyed_at is not None, "the rig stayed keyed after node 1 died"
            print(f"rig unkeyed {(unkeyed_at - killed) * 1000:.0f} ms after node 1 died")
            assert unkeyed_at - killed <= RELEASE_BOUND_S

            # the agent finds node 2 by itself; its operators hear it and transmit there
            moved = await listening_operator(two, token, board, seconds=30)
            operators.append(moved)
            print(f"heard through node 2 {time.time() - killed:.1f} s after node 1 died")
            moved.key()
            assert await wait_for(lambda: reader.ptt(), seconds=5), "node 2 did not key the rig"
            moved.unkey()
            assert await wait_for(lambda: not reader.ptt(), seconds=5), "still keyed"
            assert await online_on(three, token, board)
            assert (board, False) not in on_three.presence[-1:], on_three.presence
    finally:
        reader.close()
        for operator in operators:
            with contextlib.suppress(Exception):
                await operator.close()
        stop_process(agent, timeout_s=5)
    for name in ("node-2", "node-3"):
        log = cluster.log(name)
        assert "Traceback" not in log, log[-3000:]
    assert f"station {board} is online on node node-1" in cluster.log("node-3")
    assert "moved here from node node-1" in cluster.log("node-2")


async def metric(node: Node, name: str) -> float:
    """One unlabelled sample of `node`'s `GET /metrics` (open on loopback)."""
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}metrics") as reply:
        assert reply.status == 200, await reply.text()
        text = await reply.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.split()[:1] == [name])


async def test_a_connecting_agent_is_placed_on_the_least_loaded_node(
    seeded: Cluster, rig: Rigctld, tmp_path: Path
) -> None:
    """Placement by load: two nodes that place an agent elsewhere when they serve more than one
    peer connection beyond the other. The first station's agent connects to idle node 1 and
    stays; with it and a listener there, the second station's agent, also pointed at node 1
    (node 2 as its other server), is sent to node 2 — logged by both, counted in node 1's
    metrics — where an operator connected to node 2 hears it."""
    cluster = seeded
    assert cluster.owner is not None
    margin = "placement_margin = 1\n"
    one = cluster.start_node("node-1", cluster_config=margin)
    two = cluster.start_node("node-2", cluster_config=margin)
    async with create_store(cluster.postgres.url(), cluster.root) as store:
        second = await register_board(store, cluster.owner.user_id, "Second station")
    fast = {"RADIOCORE_AGENT_RECONNECT_MIN_S": "0.2", "RADIOCORE_AGENT_RECONNECT_MAX_S": "1"}
    first_log, second_log = tmp_path / "first-agent.log", tmp_path / "second-agent.log"
    agents = [
        start_agent(
            one.url, cluster.board_id, cluster.board_secret, rig.port, log=first_log, env=fast,
            extra_args=("--other-server", two.url),
        )
    ]  # fmt: skip
    operators: list[Operator] = []
    try:
        token = await sign_in(one, cluster.owner)
        operators.append(await listening_operator(one, token, cluster.board_id, 30))
        assert await participants(one) == 2, "the first station and its listener on node 1"
        assert await participants(two) == 0
        assert "placed on node" not in cluster.log("node-1"), "an idle node placed elsewhere"

        agents.append(
            start_agent(
                one.url, second.board.id, second.secret, rig.port, log=second_log, env=fast,
                extra_args=("--other-server", two.url, "--rig", "simulated",
                            "--log-level", "INFO"),
            )
        )  # fmt: skip
        token_two = await sign_in(two, cluster.owner)
        heard = await listening_operator(two, token_two, second.board.id, 30)
        operators.append(heard)
        assert await participants(two) == 2, "the second station and its listener on node 2"
        assert await participants(one) == 2, "node 1 took the second station after all"
        assert f"board {second.board.id} placed on node node-2" in cluster.log("node-1")
        assert await metric(one, "radiocore_agents_placed_elsewhere_total") == 1
        assert "placed on the less loaded node node-2" in second_log.read_text()
    finally:
        for operator in operators:
            with contextlib.suppress(Exception):
                await operator.close()
        for agent in agents:
            stop_process(agent, timeout_s=5)
    for name in ("node-1", "node-2"):
        log = cluster.log(name)
        assert "Traceback" not in log, log[-3000:]


async def presence_keys(cluster: Cluster) -> list[str]:
    """Every presence key the nodes keep in Redis (nodes and stations)."""
    client = redis.asyncio.Redis.from_url(cluster.redis.url, socket_timeout=2)
    try:
        keys = [key.decode() async for key in client.scan_iter("radiocore:*")]
        return sorted(k for k in keys if k.startswith(("radiocore:node:", "radiocore:station:")))
    finally:
        await client.aclose()


async def test_a_clean_stop_leaves_no_presence_behind(seeded: Cluster, rig: Rigctld) -> None:
    cluster = seeded
    assert cluster.owner is not None
    one, two = cluster.start_node("node-1"), cluster.start_node("node-2")
    agent = start_agent(one.url, cluster.board_id, cluster.board_secret, rig.port)
    try:
        # a request between nodes needs the servers' shared secret: anyone else is refused
        body = json.dumps({"board_id": cluster.board_id, "connection_id": "x", "sdp": "v=0"})
        forged = NodeKey("not-the-servers-secret-" + "x" * 32)
        for headers in ({}, forged.headers("node-2", "/api/internal/node/offer", body.encode())):
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{one.url}api/internal/node/offer", data=body, headers=headers) as reply,
            ):
                assert reply.status == 403, await reply.text()
        # signed but malformed: a clear 400, never a 500
        ours = NodeKey(cluster.secret)
        for path, bad in (("offer", b"[]"), ("offer", b"{"), ("leave", b'{"board_id": "x"}')):
            url_path = f"/api/internal/node/{path}"
            signed = ours.headers("node-2", url_path, bad)
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{one.url}{url_path[1:]}", data=bad, headers=signed) as reply,
            ):
                assert reply.status == 400, (path, bad, reply.status, await reply.text())
        token = await sign_in(two, cluster.owner)
        assert await wait_for_async(lambda: online_on(two, token, cluster.board_id), 30)
        # a signed offer whose SDP is bad gets the error an operator of node 1 would get
        bad_offer = json.dumps(
            {"board_id": cluster.board_id, "connection_id": "x", "sdp": "v=0\r\nnot sdp",
             "user_id": "u", "callsign": "DL0BAD", "can_transmit": False, "is_owner": False}
        ).encode()  # fmt: skip
        signed = ours.headers("node-2", "/api/internal/node/offer", bad_offer)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{one.url}api/internal/node/offer", data=bad_offer, headers=signed) as reply,
        ):
            assert reply.status == 200, await reply.text()
            assert (await reply.json())["error"]["code"] == "bad_sdp"
        keys = await presence_keys(cluster)
        assert f"radiocore:station:{cluster.board_id}" in keys and "radiocore:node:node-1" in keys
        stop_process(one.process, timeout_s=10)  # SIGTERM: the clean stop
        assert one.process.returncode == 0

        # at once, not after the ttl: the stop said so
        async def offline() -> bool:
            return not await online_on(two, token, cluster.board_id)

        assert await wait_for_async(offline, PRESENCE_TTL_S / 2)
        keys = await presence_keys(cluster)
        assert keys == ["radiocore:node:node-2"], json.dumps(keys)
    finally:
        stop_process(agent, timeout_s=5)


async def test_a_node_with_another_secret_is_refused_plainly(seeded: Cluster, rig: Rigctld) -> None:
    """A node configured with another `secret` sees the station (presence is in Redis) but the
    station's node refuses what it passes on: its operator is told why, in words."""
    cluster = seeded
    assert cluster.owner is not None
    one = cluster.start_node("node-1")
    odd = cluster.start_node("node-odd", secret="another-secret-" + "y" * 40)
    agent = start_agent(one.url, cluster.board_id, cluster.board_secret, rig.port)
    operator: Operator | None = None
    try:
        token = await sign_in(odd, cluster.owner)
        assert await wait_for_async(lambda: online_on(odd, token, cluster.board_id), 30)
        operator = Operator(odd, token, tap=True)
        await operator.connect()
        reply = await operator.join_and_listen(cluster.board_id)
        assert reply["ok"] is False, reply
        assert reply["error"]["code"] == "station_offline", reply
        assert "share the same secret" in reply["error"]["message"], reply
    finally:
        if operator is not None:
            await operator.close()
        stop_process(agent, timeout_s=5)


async def listen_only_accounts(cluster: Cluster, count: int) -> list[Account]:
    """`count` operators who may listen to the owner's board, not transmit."""
    accounts = [
        Account(f"listener{i}@example.org", f"listener-password-{i}", f"DL{i}LIS")
        for i in range(count)
    ]
    async with create_store(cluster.postgres.url(), cluster.root) as store:
        for account in accounts:
            user = await create_account(store, account.email, account.password, account.callsign)
            account.user_id = user.id
            await store.set_grant(cluster.board_id, user.id, "listen")
    return accounts


def told_to_join_again(operator: Operator) -> bool:
    """Whether the operator was told its media failed and it should join again."""
    return any(
        kind == "error"
        and data.get("code") == "media_failed"
        and "join again" in data.get("message", "")
        for kind, data in operator.events
    )


async def refused_to_key(operator: Operator, reader: RigReader) -> None:
    """The operator presses PTT: refused (`forbidden`), and the rig never keys."""
    operator.key()
    assert await wait_for(lambda: any('"forbidden"' in m for m in operator.inbox), seconds=5), (
        operator.inbox[-5:]
    )
    assert not reader.ptt()
    operator.unkey()


def in_order_within(heard: list[bytes], reference: list[bytes]) -> int:
    """How many of `heard`'s payloads, from its first, follow each other in `reference` exactly
    (0 when its first is not there at all)."""
    if not heard or heard[0] not in reference:
        return 0
    start = reference.index(heard[0])
    count = 0
    for mine, theirs in zip(heard, reference[start:], strict=False):
        if mine != theirs:
            break
        count += 1
    return count


async def test_listeners_on_another_node_hear_the_station_through_one_relay(
    seeded: Cluster, rig: Rigctld, tmp_path: Path
) -> None:
    """A cascaded room: the listen-only operators of node 2 hear the station on node 1 through
    node 2's one relay of it — the same packets as node 1's own operator — and may not key it;
    when the station moves to node 2 they are told to join again, and hear it there."""
    cluster = seeded
    assert cluster.owner is not None
    one, two = cluster.start_node("node-1"), cluster.start_node("node-2")
    accounts = await listen_only_accounts(cluster, 2)
    board = cluster.board_id
    agent = start_agent(
        one.url, board, cluster.board_secret, rig.port, log=tmp_path / "agent.log",
        env={"RADIOCORE_AGENT_RECONNECT_MIN_S": "0.2", "RADIOCORE_AGENT_RECONNECT_MAX_S": "1"},
        extra_args=("--other-server", two.url),
    )  # fmt: skip
    reader = rig.reader()
    operators: list[Operator] = []
    try:
        owner = await listening_operator(one, await sign_in(one, cluster.owner), board, 30)
        operators.append(owner)
        before = await participants(one)
        tokens = [await sign_in(two, account) for account in accounts]
        relayed = [await listening_operator(two, token, board, seconds=10) for token in tokens]
        operators.extend(relayed)
        assert await participants(one) == before + 1, "node 1 should serve node 2 one relay"
        assert await participants(two) == 2, "node 2 should serve its listeners itself"
        assert "node node-2 relays board" in cluster.log("node-1")

        # payload-identical, in the order node 1's own operator heard them
        reference = [p.payload for p in owner.packets]
        for listener in relayed:
            heard = [p.payload for p in listener.packets]
            assert in_order_within(heard[:40], reference) == 40, "a relayed payload differs"

        # a relayed listener's PTT is refused; the rig never keys
        await refused_to_key(relayed[0], reader)

        # node 1 dies: the agent moves to node 2, whose relayed listeners are told to join again
        one.process.send_signal(signal.SIGKILL)
        for listener in relayed:
            assert await wait_for(lambda listener=listener: told_to_join_again(listener), 30), (
                listener.events
            )
        again = await listening_operator(two, tokens[0], board, seconds=30)
        operators.append(again)
        assert await participants(two) >= 2, "the station and its listener on node 2"
    finally:
        reader.close()
        for operator in operators:
            with contextlib.suppress(Exception):
                await operator.close()
        stop_process(agent, timeout_s=5)
    log = cluster.log("node-2")
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("station_gone_first", [False, True])
async def test_a_dead_nodes_relays_end_within_about_its_presence_ttl(
    seeded: Cluster, rig: Rigctld, station_gone_first: bool
) -> None:
    """Node 1 dies and its station has nowhere to go: node 2's listener of it, served by node
    2's relay, is told to join again once node 1's presence expires — not only when the relay's
    own connection times out (~30 s). Also when the station's agent had stopped first (the
    relay stays then: the station may come back), though no presence change reports the node's
    death then: node 2 checks its relays' nodes every TTL."""
    cluster = seeded
    one, two = cluster.start_node("node-1"), cluster.start_node("node-2")
    (account,) = await listen_only_accounts(cluster, 1)
    agent = start_agent(one.url, cluster.board_id, cluster.board_secret, rig.port)
    listener: Operator | None = None
    try:
        token = await sign_in(two, account)
        listener = await listening_operator(two, token, cluster.board_id, seconds=30)
        if station_gone_first:
            stop_process(agent, timeout_s=5)
            board = cluster.board_id
            assert await wait_for_async(lambda: equals(online_on(two, token, board), False))
            await asyncio.sleep(PRESENCE_TTL_S)
            assert not told_to_join_again(listener), "the relay ended while its node lived"
        one.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert await wait_for(lambda: told_to_join_again(listener), PRESENCE_TTL_S * 4), (
            listener.events
        )
        print(f"told to join again {time.monotonic() - killed:.1f} s after node 1 died")
        assert "node node-1 is gone" in cluster.log("node-2")
    finally:
        if listener is not None:
            await listener.close()
        stop_process(agent, timeout_s=5)
