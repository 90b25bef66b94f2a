"""Presence shared by several nodes through a real Redis (`signaling.cluster.ClusterPresence`),
and the contract every `Presence` keeps (the one-node `LocalPresence` included).

Each "node" here is one `ClusterPresence` in this process, as `radiocore serve` makes it; the
tests with whole server processes are in tests/integration/test_nodes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from signaling.cluster import (
    NODE_PREFIX,
    STATION_PREFIX,
    ClusterPresence,
    NodeLoad,
    Placement,
    choose_node,
    url_key,
)
from signaling.presence import LocalPresence, Presence
from tests.support.redis import RedisServer, running_redis
from tests.support.waiting import wait_for, wait_for_async

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
OTHER_BOARD = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#: Short: expiry is part of what is tested (the heartbeat runs every third of it).
TTL_S = 1.5


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own: presence keys are global, and some tests kill it."""
    with running_redis() as server:
        yield server


class Nodes:
    """Starts `ClusterPresence` nodes on one Redis and closes whichever are left."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started: list[ClusterPresence] = []
        self.heard: dict[str, list[tuple[str, bool]]] = {}

    async def start(
        self, name: str, ttl_s: float = TTL_S, *, load: int = 0, margin: int = -1
    ) -> ClusterPresence:
        """A node at `http://{name}/` serving `load` peer connections."""
        node = ClusterPresence(
            self.url, name, ttl_s, node_url=f"http://{name}/", placement_margin=margin
        )
        node.load_of = lambda: load
        self.heard[name] = []
        node.listen(lambda board_id, online: self.heard[name].append((board_id, online)))
        await node.start()
        self.started.append(node)
        return node

    async def stop(self, node: ClusterPresence, *, forget: bool = True) -> None:
        self.started.remove(node)
        await node.close(forget=forget)


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    running = Nodes(redis_server.url)
    try:
        yield running
    finally:
        for node in list(running.started):
            with contextlib.suppress(Exception):
                await running.stop(node, forget=False)


async def redis_value(url: str, key: str) -> str | None:
    client = redis.asyncio.Redis.from_url(url, socket_timeout=2)
    try:
        value = await client.get(key)
        return None if value is None else value.decode()
    finally:
        await client.aclose()


# -- the contract of every Presence --------------------------------------------------------


@pytest.fixture(params=["local", "cluster"])
async def presence(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Presence]:
    if request.param == "local":
        yield LocalPresence()
        return
    with running_redis() as server:
        node = ClusterPresence(server.url, "node-a", TTL_S)
        await node.start()
        try:
            yield node
        finally:
            await node.close()


async def test_contract_online_offline_and_home(presence: Presence) -> None:
    assert not presence.is_online(BOARD) and presence.home(BOARD) is None
    assert presence.set_online(BOARD, True) is True
    assert presence.set_online(BOARD, True) is False, "no change: nothing to announce"
    assert presence.is_online(BOARD) and presence.home(BOARD) == presence.node
    assert not presence.is_online(OTHER_BOARD)
    assert presence.set_online(BOARD, False) is True
    assert not presence.is_online(BOARD) and presence.home(BOARD) is None


async def test_contract_a_reconnecting_agent_replaces_its_connection(presence: Presence) -> None:
    assert presence.agent_connected(BOARD, "sid-1") is None
    assert presence.agent_connected(BOARD, "sid-2") == "sid-1"
    assert presence.agent_disconnected(BOARD, "sid-1") is False, "the old one is not current"
    assert presence.agent_disconnected(BOARD, "sid-2") is True


# -- several nodes ---------------------------------------------------------------------------


async def test_a_station_online_on_one_node_is_online_on_every_other(nodes: Nodes) -> None:
    a, b, c = [await nodes.start(name) for name in ("node-a", "node-b", "node-c")]
    a.set_online(BOARD, True)
    for other in (b, c):
        assert await wait_for(lambda other=other: other.is_online(BOARD), seconds=5)
        assert other.home(BOARD) == "node-a"
        assert not other.is_online(OTHER_BOARD)
    assert nodes.heard["node-b"] == [(BOARD, True)]
    assert nodes.heard["node-a"] == [], "a node's own changes are the tracker's, not heard"
    assert await redis_value(nodes.url, STATION_PREFIX + BOARD) == "node-a"

    a.set_online(BOARD, False)
    for other in (b, c):
        assert await wait_for(lambda other=other: not other.is_online(BOARD), seconds=5)
        assert other.home(BOARD) is None
    assert nodes.heard["node-c"] == [(BOARD, True), (BOARD, False)]
    assert await redis_value(nodes.url, STATION_PREFIX + BOARD) is None


async def test_a_node_started_later_reads_what_is_online(nodes: Nodes) -> None:
    a = await nodes.start("node-a")
    a.set_online(BOARD, True)
    assert await wait_for(lambda: a.heartbeats >= 2, seconds=5)
    late = await nodes.start("node-late")
    assert late.is_online(BOARD) and late.home(BOARD) == "node-a"


async def test_a_dead_nodes_stations_go_offline_everywhere_within_its_ttl(nodes: Nodes) -> None:
    a, b = await nodes.start("node-a"), await nodes.start("node-b")
    a.set_online(BOARD, True)
    assert await wait_for(lambda: b.is_online(BOARD), seconds=5)
    await nodes.stop(a, forget=False)  # as a SIGKILL: nothing said, nothing deleted
    assert b.is_online(BOARD), "gone before its keys expired?"
    # the key expires TTL_S after the last heartbeat; b's next reread sees it (a third later)
    assert await wait_for(lambda: not b.is_online(BOARD), seconds=TTL_S * 3)
    assert nodes.heard["node-b"] == [(BOARD, True), (BOARD, False)]
    assert await redis_value(nodes.url, NODE_PREFIX + "node-a") is None


async def test_a_node_is_alive_until_its_entry_expires_and_unknown_without_redis(
    nodes: Nodes, redis_server: RedisServer
) -> None:
    a, b = await nodes.start("node-a"), await nodes.start("node-b")
    assert await b.node_alive("node-a") is True
    assert await b.node_alive("node-never") is False
    await nodes.stop(a, forget=False)  # as a SIGKILL

    async def dead() -> bool:
        return await b.node_alive("node-a") is False

    assert await wait_for_async(dead, TTL_S * 3)
    redis_server.stop()
    assert await b.node_alive("node-b") is None, "Redis down: nobody knows, not 'dead'"


async def test_a_clean_stop_takes_its_stations_offline_at_once(nodes: Nodes) -> None:
    a = await nodes.start("node-a", ttl_s=60)  # expiry cannot be what ends it
    b = await nodes.start("node-b", ttl_s=60)
    a.set_online(BOARD, True)
    assert await wait_for(lambda: b.is_online(BOARD), seconds=5)
    a.set_online(BOARD, False)  # the SFU closed at the stop: its stations went offline
    await nodes.stop(a)
    assert await wait_for(lambda: not b.is_online(BOARD), seconds=5)
    assert await redis_value(nodes.url, NODE_PREFIX + "node-a") is None


async def test_the_newest_agent_connection_wins_across_nodes(nodes: Nodes) -> None:
    a, b = await nodes.start("node-a"), await nodes.start("node-b")
    dropped: list[str] = []

    async def drop(board_id: str) -> None:
        dropped.append(board_id)  # the stale connection stays: the worst case

    a.on_taken = drop
    a.set_online(BOARD, True)
    assert await wait_for(lambda: b.is_online(BOARD), seconds=5)
    b.set_online(BOARD, True)  # the agent reconnected to node b (a half-open connection on a)
    assert await wait_for(lambda: dropped == [BOARD], seconds=5)
    heartbeats = a.heartbeats
    assert await wait_for(lambda: a.heartbeats >= heartbeats + 2, seconds=5)
    assert await redis_value(nodes.url, STATION_PREFIX + BOARD) == "node-b", (
        "the old node's heartbeat took the station back"
    )
    c = await nodes.start("node-c")
    assert c.home(BOARD) == "node-b"
    a.set_online(BOARD, False)  # its stale connection went: it must not say offline for b
    await asyncio.sleep(0.5)  # time for a wrong "offline" to arrive
    assert c.is_online(BOARD) and c.home(BOARD) == "node-b"
    assert await redis_value(nodes.url, STATION_PREFIX + BOARD) == "node-b"


async def test_a_malformed_message_is_ignored(nodes: Nodes) -> None:
    a, b = await nodes.start("node-a", ttl_s=60), await nodes.start("node-b", ttl_s=60)
    client = redis.asyncio.Redis.from_url(nodes.url, socket_timeout=2)
    try:
        for garbage in (b"", b"{", b'{"board_id": 1}', b"[]", b'{"board_id":"x","node":2}'):
            await client.publish("radiocore:presence", garbage)
    finally:
        await client.aclose()
    a.set_online(BOARD, True)
    assert await wait_for(lambda: b.is_online(BOARD), seconds=5), "b stopped listening"
    assert not b.is_online("x")


async def test_presence_survives_a_redis_restart(nodes: Nodes, redis_server: RedisServer) -> None:
    a, b = await nodes.start("node-a"), await nodes.start("node-b")
    a.set_online(BOARD, True)
    assert await wait_for(lambda: b.is_online(BOARD), seconds=5)
    redis_server.kill()
    a.set_online(OTHER_BOARD, True)  # written nowhere for now
    assert a.is_online(BOARD) and a.is_online(OTHER_BOARD), "a node serves its own stations"
    assert b.is_online(BOARD), "the others' stay as last known"
    redis_server.restart()  # empty: nothing was persisted

    # a's heartbeat writes its stations again; b hears again, without a restart of its own
    assert await wait_for(lambda: b.is_online(OTHER_BOARD), seconds=TTL_S * 4)
    assert b.is_online(BOARD) and b.home(OTHER_BOARD) == "node-a"
    a.set_online(BOARD, False)
    assert await wait_for(lambda: not b.is_online(BOARD), seconds=5)
    late = await nodes.start("node-late")
    assert late.is_online(OTHER_BOARD) and not late.is_online(BOARD)


async def test_a_message_heard_during_a_reread_is_not_undone(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A station goes online while another node rereads Redis: the reread read the keys before
    it did, the message came after; the node must not announce it offline again."""
    a = await nodes.start("node-a", ttl_s=60)
    b = await nodes.start("node-b", ttl_s=60)
    a.set_online(OTHER_BOARD, True)  # some key to read
    assert await wait_for(lambda: b.is_online(OTHER_BOARD), seconds=5)
    read = b._client.mget

    async def read_then_hear(*args: object, **kwargs: object) -> object:
        values = await read(*args, **kwargs)
        b._heard(json.dumps({"board_id": BOARD, "node": "node-a", "online": True}))
        return values

    monkeypatch.setattr(b._client, "mget", read_then_hear)
    await b._resync()
    assert b.is_online(BOARD), "the reread undid what was heard after it began"
    assert nodes.heard["node-b"] == [(OTHER_BOARD, True), (BOARD, True)]


# -- placing stations by load ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Node2.Example.org/", "https://node2.example.org:443"),
        ("https://node2.example.org:443", "https://node2.example.org:443"),
        ("http://10.0.0.2:8080/radio/", "http://10.0.0.2:8080/radio"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("ftp://node2/", ""),
        ("node2:8080", ""),
        ("http://node2:99999/", ""),
    ],
)
def test_url_key_matches_two_spellings_of_one_server(url: str, key: str) -> None:
    assert url_key(url) == key


NODES = [
    NodeLoad("n2", "https://node2.example.org/", 40),
    NodeLoad("n3", "https://node3.example.org/", 10),
    NodeLoad("n4", "", 0),  # advertises no URL: takes no station placed
]


def test_a_station_goes_to_the_least_loaded_node_its_agent_names() -> None:
    both = ["https://NODE2.example.org", "https://node3.example.org:443/"]
    assert choose_node(100, NODES, both, 20) == Placement(
        "n3", "https://node3.example.org:443/", 10, 100
    )
    # only the nodes the agent can reach count: n3, far less loaded, is not named
    assert choose_node(100, NODES, ["https://node2.example.org/"], 20) == Placement(
        "n2", "https://node2.example.org/", 40, 100
    )


@pytest.mark.parametrize(
    ("here", "others", "margin"),
    [
        (30, ["https://node3.example.org/"], 20),  # 30 - 10 is not more than the margin
        (1000, ["https://node3.example.org/"], -1),  # placement off
        (1000, [], 0),  # the agent names no other node
        (1000, ["https://node9.example.org/"], 0),  # no live node at that URL
        (1000, ["not a url"], 0),
    ],
)
def test_a_station_stays_here(here: int, others: list[str], margin: int) -> None:
    assert choose_node(here, NODES, others, margin) is None


async def test_nodes_place_stations_by_the_loads_their_heartbeats_wrote(nodes: Nodes) -> None:
    busy = await nodes.start("busy", load=50, margin=5)
    idle = await nodes.start("idle", load=3, margin=5)
    assert await wait_for(lambda: busy.node_loads().get("idle") == 3, seconds=5)
    entry = json.loads(await redis_value(nodes.url, NODE_PREFIX + "busy") or "{}")
    assert (entry["load"], entry["public_url"]) == (50, "http://busy/")

    assert busy.place(BOARD, ["http://idle/"]) == Placement("idle", "http://idle/", 3, 50)
    # counted there until its next heartbeat: a crowd reconnecting at once is spread
    assert busy.node_loads()["idle"] == 4
    # the less loaded node keeps what connects to it; a station online here stays here
    assert idle.place(BOARD, ["http://busy/"]) is None
    busy.set_online(OTHER_BOARD, True)
    assert busy.place(OTHER_BOARD, ["http://idle/"]) is None
    # a node that stopped takes no station
    await nodes.stop(idle)
    assert await wait_for(lambda: "idle" not in busy.node_loads(), seconds=5)
    assert busy.place(BOARD, ["http://idle/"]) is None


async def test_nothing_is_placed_while_redis_does_not_answer(
    nodes: Nodes, redis_server: RedisServer
) -> None:
    busy = await nodes.start("busy", load=50, margin=5)
    await nodes.start("idle", load=0, margin=5)
    assert await wait_for(lambda: "idle" in busy.node_loads(), seconds=5)
    redis_server.kill()
    assert await wait_for(lambda: not busy.redis_answers, seconds=TTL_S * 4)
    assert busy.node_loads()["idle"] == 0, "idle's last known load"
    assert busy.place(BOARD, ["http://idle/"]) is None
    redis_server.restart()
    assert await wait_for(lambda: busy.redis_answers, seconds=TTL_S * 4)
    assert await wait_for(lambda: "idle" in busy.node_loads(), seconds=TTL_S * 4)
    assert busy.place(BOARD, ["http://idle/"]) == Placement("idle", "http://idle/", 0, 50)
