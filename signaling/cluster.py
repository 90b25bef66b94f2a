"""Presence across nodes: several `radiocore serve` processes sharing one Redis know which node
each online station is connected to (issue 11, scale-out; the in-process `LocalPresence` is the
one-node default and passes the same contract tests).

Keys, all under `radiocore:` and each written by the node it names:

- `node:{node}`: the node is alive (JSON: its name, its URLs for the other nodes and for board
  agents, when it started, its load: the peer connections it serves); expires `ttl` after its
  last heartbeat;
- `station:{board_id}`: the node the station's agent is online on; the same expiry.

A node writes a change at once and publishes it on the channel `radiocore:presence`
(`{"board_id", "node", "online"}`), so the other nodes hear of it without waiting; its heartbeat,
every third of the ttl, writes its keys again and rereads every `station:*` key, which catches
what a message cannot say (a node that died: its keys expire, its stations go offline
everywhere within about `ttl`) and anything missed while a subscription was down.

An agent that reconnects to another node while its old node still holds it (a half-open
connection) is the station's agent there from then on: the newest connection wins, as on one
node. The old node hears it and drops its stale connection (`on_taken`); its heartbeat never
writes over another node's claim.

Placement by load: an agent that names other nodes it can reach (`AgentAuth.other_servers`) is
sent, when it connects, to the least loaded of them that is alive and advertises that URL
(`public_url`), if this node serves more peer connections than that one by more than
`placement_margin` (`place`; logged by the agent namespace). The loads are those of the last
heartbeat (every third of the ttl); a node counts each agent it sent to another node as one
more connection there until its next heartbeat, so that a crowd of agents reconnecting at once is
spread rather than all sent to the same node. While Redis does not answer nothing is placed.

Every node keeps the whole map in memory: `is_online` and `home` never wait for Redis. During a
Redis outage each node serves what it has (its own stations stay online; the others' stay as
last known) and writes its keys again once Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio
import redis.exceptions

from signaling.presence import LocalPresence, Presence, PresenceListener
from signaling.ratelimit import redis_client

logger = logging.getLogger(__name__)

PREFIX: Final = "radiocore:"
CHANNEL: Final = PREFIX + "presence"
#: Events for one node's operators from the node their station is on (`signaling.nodelink`).
EVENTS_PREFIX: Final = PREFIX + "to:"
STATION_PREFIX: Final = PREFIX + "station:"
NODE_PREFIX: Final = PREFIX + "node:"

#: Claim `KEYS[1]` for node `ARGV[1]` for `ARGV[2]` ms unless another node holds it; returns the
#: holder afterwards (ARGV[1] when the claim held). The heartbeat's refresh: never takes a
#: station from the node its agent moved to.
_REFRESH: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
"""

#: Delete `KEYS[1]` if node `ARGV[1]` holds it; 1 when it did.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: At a clean stop, how long the changes not yet written may take.
CLOSE_WRITES_S: Final = 1.0

#: At a stop, how long the node's tasks may take to end once cancelled.
CLOSE_TASKS_S: Final = 2.0

#: The longest wait for a message on the channel before checking whether the node stops.
_LISTEN_S: Final = 0.5

#: Bound on the changes waiting to be written (one per station going on- or offline): beyond
#: it the heartbeat's full rewrite catches up.
_MAX_PENDING_WRITES: Final = 10_000


@dataclass(frozen=True)
class NodeLoad:
    """What a node's presence entry says of it, for placing stations."""

    node: str
    #: Where board agents reach it, as it advertises it (compared through `url_key`; empty:
    #: it takes no station placed).
    public_url: str
    #: Peer connections it serves (agents, operators, relays; its workers' included).
    load: int


@dataclass(frozen=True)
class Placement:
    """A station sent to another node: `server` is the agent's own spelling of its URL."""

    node: str
    server: str
    load: int
    here: int


def url_key(url: str) -> str:
    """`url` in the form two spellings of one server share: scheme and host in lower case, the
    scheme's default port written out, no trailing slash, query or fragment; "" if not an
    http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def choose_node(
    here: int, nodes: Iterable[NodeLoad], other_servers: Iterable[str], margin: int
) -> Placement | None:
    """Where a station goes whose agent can reach `other_servers`: the least loaded of `nodes`
    that advertises one of them, when this node's `here` connections exceed its load by more
    than `margin`; None: it stays here (`margin` < 0: always here)."""
    if margin < 0:
        return None
    by_url = {key: n for n in nodes if (key := url_key(n.public_url))}
    offered = [(by_url[key], url) for url in other_servers if (key := url_key(url)) in by_url]
    if not offered:
        return None
    best, server = min(offered, key=lambda pair: (pair[0].load, pair[0].node))
    if here - best.load <= margin:
        return None
    return Placement(best.node, server, best.load, here)


def default_node_name() -> str:
    """The host's name and a random suffix: unique per process, readable in logs."""
    return f"{socket.gethostname()[:40]}-{secrets.token_hex(3)}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ClusterPresence(Presence):
    """`Presence` shared by every node through Redis (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        node: str,
        ttl_s: float,
        *,
        node_url: str = "",
        public_url: str = "",
        placement_margin: int = -1,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        """`public_url`: where board agents reach this node (empty: `node_url`);
        `placement_margin`: see `choose_node` (negative: no agent is placed elsewhere)."""
        self.node = node
        #: Where the other nodes reach this one (`signaling.nodelink`); empty: they cannot.
        self.node_url = node_url
        self.public_url = public_url or node_url
        self.placement_margin = placement_margin
        #: This node's load now (set by the app: its peer connections, its workers' included).
        self.load_of: Callable[[], int] = lambda: 0
        #: The other live nodes as their last heartbeat said, by name.
        self._nodes: dict[str, NodeLoad] = {}
        self.ttl_s = ttl_s
        self._url = url
        # commands: short timeouts (a Redis that does not answer must not hold anything up)
        self._client = client if client is not None else redis_client(url)
        self._owns_client = client is None
        self._local = LocalPresence()
        #: Stations online on other nodes: board id -> node.
        self._remote: dict[str, str] = {}
        #: When a message about a station last came (loop time): a reread that began before
        #: it must not undo what it said.
        self._heard_at: dict[str, float] = {}
        self._listeners: list[PresenceListener] = []
        #: Called with a board id when another node took this node's station (its agent
        #: reconnected there): the stale connection here is to be dropped (run as a task).
        self.on_taken: Callable[[str], Awaitable[object]] | None = None
        self._dropping: set[asyncio.Task[None]] = set()
        #: Told each event another node sent to this one (`send_to`).
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self._writes: asyncio.Queue[tuple[str, bool]] = asyncio.Queue(_MAX_PENDING_WRITES)
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = time.time()
        self._failing: str | None = None  # the Redis error last logged (logged once)
        self._closing = False
        #: Heartbeats (with their reread) that completed.
        self.heartbeats = 0

    # -- Presence ----------------------------------------------------------------------------

    def agent_connected(self, board_id: str, connection_id: str) -> str | None:
        return self._local.agent_connected(board_id, connection_id)

    def agent_disconnected(self, board_id: str, connection_id: str) -> bool:
        return self._local.agent_disconnected(board_id, connection_id)

    def set_online(self, board_id: str, online: bool) -> bool:
        was = self.is_online(board_id)
        if not self._local.set_online(board_id, online):
            return False
        if online:
            self._remote.pop(board_id, None)  # here now, whatever the others last said
        try:
            self._writes.put_nowait((board_id, online))
        except asyncio.QueueFull:
            logger.warning("presence writes are behind; the heartbeat will catch up")
        return self.is_online(board_id) != was

    def is_online(self, board_id: str) -> bool:
        return self._local.is_online(board_id) or board_id in self._remote

    def home(self, board_id: str) -> str | None:
        if self._local.is_online(board_id):
            return self.node
        return self._remote.get(board_id)

    def listen(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Announce this node, read every station's presence, then keep both up to date."""
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self._heartbeat_once()  # Redis down at start: the heartbeat keeps trying
        self._tasks = [
            asyncio.create_task(self._write_changes(), name="radiocore-presence-writes"),
            asyncio.create_task(self._heartbeat(), name="radiocore-presence-heartbeat"),
            asyncio.create_task(self._subscribe(), name="radiocore-presence-subscription"),
        ]
        logger.info("node %s: presence shared through Redis (ttl %.1f s)", self.node, self.ttl_s)

    async def close(self, *, forget: bool = True) -> None:
        """Stop; `forget`: delete this node's keys (a clean stop), so its stations are offline
        everywhere at once rather than after the ttl."""
        if forget and self._tasks:  # the stations that went offline in the stop: said first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writes.join(), CLOSE_WRITES_S)
        self._closing = True  # redis-py's reads can swallow a cancellation: the loops check this
        tasks = [*self._tasks, *self._dropping]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TASKS_S)
        self._tasks = []
        if forget:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                await self._forget_all()
        if self._owns_client:
            await self._client.aclose()

    # -- writing -----------------------------------------------------------------------------

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl_s * 1000))

    async def _write_changes(self) -> None:
        while not self._closing:
            board_id, online = await self._writes.get()
            try:
                await self._write(board_id, online)
            except (redis.exceptions.RedisError, OSError) as exc:
                self._redis_failed(exc)
            finally:
                self._writes.task_done()

    async def _write(self, board_id: str, online: bool) -> None:
        key = STATION_PREFIX + board_id
        if online:
            previous = await self._client.set(key, self.node, px=self._ttl_ms, get=True)
            if previous is not None and _text(previous) != self.node:
                logger.info(
                    "station %s moved here from node %s (its agent reconnected)",
                    board_id,
                    _text(previous),
                )
        elif not await self._client.eval(_RELEASE, 1, key, self.node):
            return  # another node holds it now: nothing to say
        await self._client.publish(CHANNEL, self._said(board_id, online))
        self._redis_ok()

    async def _forget_all(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.delete(NODE_PREFIX + self.node)
            for board_id in self._local.online_boards():
                pipe.eval(_RELEASE, 1, STATION_PREFIX + board_id, self.node)
            await pipe.execute()
        for board_id in self._local.online_boards():
            await self._client.publish(CHANNEL, self._said(board_id, False))

    def _said(self, board_id: str, online: bool) -> str:
        """The message on `CHANNEL` that this node's station went on- or offline."""
        return json.dumps({"board_id": board_id, "node": self.node, "online": online})

    # -- placement ---------------------------------------------------------------------------

    def place(self, board_id: str, other_servers: Iterable[str]) -> Placement | None:
        """Where the station `board_id`, whose agent is connecting here and can reach
        `other_servers`, goes instead of here (`choose_node`); None: here. A station online
        here already stays; nothing is placed while Redis does not answer (the loads are
        stale, and the node named may be the one that is gone)."""
        if self._local.is_online(board_id) or not self.redis_answers:
            return None
        placement = choose_node(
            self.load_of(), self._nodes.values(), other_servers, self.placement_margin
        )
        if placement is not None:  # counted there until its next heartbeat says
            seen = self._nodes[placement.node]
            self._nodes[placement.node] = dataclasses.replace(seen, load=seen.load + 1)
        return placement

    @property
    def redis_answers(self) -> bool:
        """False from a failed Redis command until one succeeds again."""
        return self._failing is None

    def node_loads(self) -> dict[str, int]:
        """Each live node's load as last read, this one's as it is now."""
        loads = {name: seen.load for name, seen in self._nodes.items()}
        loads[self.node] = self.load_of()
        return loads

    # -- between nodes -----------------------------------------------------------------------

    async def node_url_of(self, node: str) -> str | None:
        """Where node `node` is reached; None when it is not alive or has no URL."""
        try:
            value = await self._client.get(NODE_PREFIX + node)
        except (redis.exceptions.RedisError, OSError) as exc:
            self._redis_failed(exc)
            return None
        if value is None:
            return None
        try:
            url = json.loads(_text(value)).get("url")
        except (ValueError, AttributeError):
            return None
        return url if isinstance(url, str) and url else None

    async def node_alive(self, node: str) -> bool | None:
        """Whether node `node`'s presence entry is there (it heartbeats); None when Redis does
        not answer (nobody knows)."""
        try:
            return bool(await self._client.exists(NODE_PREFIX + node))
        except (redis.exceptions.RedisError, OSError) as exc:
            self._redis_failed(exc)
            return None

    async def send_to(self, node: str, event: dict[str, Any]) -> None:
        """Publish `event` to node `node` (lost when it is not listening: events are advice,
        what they report also ends the operator's media)."""
        try:
            await self._client.publish(EVENTS_PREFIX + node, json.dumps(event))
        except (redis.exceptions.RedisError, OSError) as exc:
            self._redis_failed(exc)

    # -- the heartbeat -----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self._heartbeat_once()
            except (redis.exceptions.RedisError, OSError) as exc:
                self._redis_failed(exc)

    async def _heartbeat_once(self) -> None:
        """Refresh this node's keys, then reread every station's."""
        mine = self._local.online_boards()
        node = json.dumps(
            {
                "node": self.node,
                "url": self.node_url,
                "public_url": self.public_url,
                "started_at": self._started_at,
                "load": self.load_of(),
            }
        )
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(NODE_PREFIX + self.node, node, px=self._ttl_ms)
            for board_id in mine:
                pipe.eval(_REFRESH, 1, STATION_PREFIX + board_id, self.node, self._ttl_ms)
            holders = (await pipe.execute())[1:]
        for board_id, holder in zip(mine, holders, strict=True):
            if _text(holder) != self.node:
                self._taken(board_id, _text(holder))
        await self._resync()
        await self._read_nodes()
        self.heartbeats += 1
        self._redis_ok()

    async def _resync(self) -> None:
        """Every station's node, from Redis; what changed is told to the listeners."""
        began = asyncio.get_running_loop().time()
        remote: dict[str, str] = {}
        for board_id, node in await self._scan(STATION_PREFIX):
            if node == self.node:
                continue
            if self._local.is_online(board_id):
                self._taken(board_id, node)
            remote[board_id] = node
        self._replace_remote(remote, began)

    async def _read_nodes(self) -> None:
        """The other live nodes' entries (their URLs and loads), from Redis."""
        nodes: dict[str, NodeLoad] = {}
        for name, value in await self._scan(NODE_PREFIX):
            if name == self.node:
                continue
            try:
                entry = json.loads(value)
                public_url = entry.get("public_url") or entry.get("url") or ""
                load = entry.get("load", 0)
            except (ValueError, AttributeError):
                continue  # not a node entry this version wrote
            if isinstance(public_url, str) and isinstance(load, int):
                nodes[name] = NodeLoad(name, public_url, load)
        self._nodes = nodes

    async def _scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every key under `prefix` with its value: (the key without the prefix, the value)."""
        keys = [key async for key in self._client.scan_iter(prefix + "*", count=1000)]
        values = await self._client.mget(keys) if keys else []
        return [
            (_text(key)[len(prefix) :], _text(value))
            for key, value in zip(keys, values, strict=True)
            if value is not None  # expired between the scan and the read
        ]

    def _replace_remote(self, remote: dict[str, str], began: float) -> None:
        # what was heard while the reread ran is newer than what it read
        for board_id, at in list(self._heard_at.items()):
            if at < began:
                del self._heard_at[board_id]
            elif board_id in self._remote:
                remote[board_id] = self._remote[board_id]
            else:
                remote.pop(board_id, None)
        before = {board_id for board_id in self._remote if not self._local.is_online(board_id)}
        self._remote = remote
        after = {board_id for board_id in remote if not self._local.is_online(board_id)}
        self._tell(before ^ after)

    # -- hearing the others ------------------------------------------------------------------

    async def _subscribe(self) -> None:
        """Listen on the channel for as long as the node runs; after a lost subscription,
        subscribe again and reread everything (what was said meanwhile is lost)."""
        delay = 0.5
        while not self._closing:
            client = redis_client(self._url, socket_timeout=None)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL, EVENTS_PREFIX + self.node)
                await self._resync()
                delay = 0.5
                while not self._closing:
                    message = await pubsub.get_message(timeout=_LISTEN_S)
                    if message is None:
                        continue
                    if _text(message.get("channel")) == CHANNEL:
                        self._heard(message.get("data"))
                    else:
                        self._event(message.get("data"))
            except (redis.exceptions.RedisError, OSError) as exc:
                self._redis_failed(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.ttl_s)

    def _heard(self, data: Any) -> None:
        try:
            message = json.loads(_text(data))
            board_id, node, online = message["board_id"], message["node"], message["online"]
            if not (isinstance(board_id, str) and isinstance(node, str)):
                raise TypeError("board_id and node must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignored a malformed presence message: %s", exc)
            return
        if node == self.node:
            return
        self._heard_at[board_id] = asyncio.get_running_loop().time()
        was = self.is_online(board_id)
        if online:
            if self._local.is_online(board_id):
                self._taken(board_id, node)
            self._remote[board_id] = node
        elif self._remote.get(board_id) == node:
            del self._remote[board_id]
        if self.is_online(board_id) != was:
            self._tell([board_id])

    def _event(self, data: Any) -> None:
        try:
            event = json.loads(_text(data))
            if not isinstance(event, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as exc:
            logger.warning("ignored a malformed event from another node: %s", exc)
            return
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("handling an event from another node failed")

    def _taken(self, board_id: str, node: str) -> None:
        logger.info(
            "station %s is online on node %s now: dropping its stale connection here",
            board_id,
            node,
        )
        if self.on_taken is not None:
            task = asyncio.get_running_loop().create_task(self._drop(self.on_taken, board_id))
            self._dropping.add(task)
            task.add_done_callback(self._dropping.discard)

    @staticmethod
    async def _drop(drop: Callable[[str], Awaitable[object]], board_id: str) -> None:
        try:
            await drop(board_id)
        except Exception:
            logger.exception("dropping the stale connection of station %s failed", board_id)

    def _tell(self, board_ids: Iterable[str]) -> None:
        for board_id in board_ids:
            online = self.is_online(board_id)
            for listener in self._listeners:
                listener(board_id, online)

    # -- Redis's health ----------------------------------------------------------------------

    def _redis_failed(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if self._failing is None:
            logger.warning(
                "node %s: Redis is not answering (%s); serving its own stations, the others "
                "as last known",
                self.node,
                text,
            )
        self._failing = text

    def _redis_ok(self) -> None:
        if self._failing is not None:
            logger.info("node %s: Redis answers again; presence shared again", self.node)
            self._failing = None
