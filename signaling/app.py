"""The application factory: aiohttp + python-socketio + the SFU, from one config.

Each resource has its own cleanup context (opened in order, closed in reverse), so a failure
while starting closes exactly what was opened before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final

import socketio
from aiohttp import web

from media.config import SfuConfig
from media.participant import MediaFailure
from media.sfu import Sfu
from signaling import keys
from signaling.access import AccessWatch
from signaling.audit import TxAudit
from signaling.auth import JwtAuthority
from signaling.cluster import ClusterPresence, default_node_name
from signaling.config import ServerConfig, resolve_web_root
from signaling.ice import IcePlan
from signaling.metrics import ServerMetrics, loop_lag_watch
from signaling.namespaces import AgentNamespace, OperatorNamespace
from signaling.nodelink import (
    NodeKey,
    NodeLink,
    access_ended_event,
    media_failed_event,
    node_routes,
    split_key,
)
from signaling.presence import LocalPresence, Presence, PresenceTracker
from signaling.ratelimit import (
    ApiLimits,
    CountedRateLimiter,
    Limit,
    MemoryRateLimiter,
    redis_client,
    shared_limiter,
)
from signaling.rest import add_routes
from signaling.stations import StationService
from signaling.store import create_store
from signaling.tls import same_origin
from signaling.workers import WorkerPool, worker_count
from turn.credentials import TurnCredentialIssuer
from turn.probe import TurnHealth

logger = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def sfu_config(config: ServerConfig) -> SfuConfig:
    limits = config.limits
    return SfuConfig(
        ice_host_addresses=config.ice.host_addresses,
        ice_port_range=(config.ice.udp_port_min, config.ice.udp_port_max),
        ice_announced_address=config.ice.announced_address,
        ice_udp_port=config.ice.udp_port,
        ice_connect_timeout_s=config.ice.connect_timeout_s,
        listener_queue_packets=limits.listener_queue_packets,
        max_buffered_data_bytes=limits.max_buffered_data_bytes,
        max_messages_per_second=limits.max_data_messages_per_second,
        max_data_message_bytes=limits.max_data_message_bytes,
        max_early_candidates=limits.max_early_candidates,
        latency_sample_every=config.media_latency_sample_every,
        lane=config.forwarding_lane,
        deadman_s=config.floor.deadman_s,
        tx_timeout_s=config.floor.tx_timeout_s,
        tx_warning_s=config.floor.tx_warning_s,
    )


def create_app(config: ServerConfig) -> web.Application:
    app = web.Application(client_max_size=config.limits.max_http_buffer_bytes)
    app[keys.CONFIG] = config
    app[keys.AUTHORITY] = JwtAuthority.from_config(config)
    app[keys.METRICS] = ServerMetrics()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        max_http_buffer_size=config.limits.max_http_buffer_bytes,
        # Engine.IO's own same-origin rule, with the scheme the request really came in on (its
        # aiohttp driver takes every request for http: the page's own https:// origin, served
        # by the server's own TLS, would be refused)
        cors_allowed_origins=same_origin,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    app[keys.SOCKETIO] = sio
    add_routes(app, resolve_web_root(config))
    if config.redis_url or worker_count(config.workers) > 1:
        # operators of other nodes reach this one's stations; workers ask for their relays
        app.router.add_routes(
            node_routes(
                NodeKey(config.secret),
                lambda: app[keys.PRESENCE].presence,
                lambda: app[keys.SFU],
                lambda: app[keys.NODE_EVENTS],
            )
        )
    app[keys.TURN_HEALTH] = TurnHealth(config.turn.urls)
    app.cleanup_ctx.extend(
        [
            _metrics,
            _store,
            _limits,
            _housekeeping,
            _audit,
            _presence,
            _sfu,
            _signaling(sio),
            _turn_check,
        ]
    )
    return app


async def _metrics(app: web.Application) -> AsyncIterator[None]:
    """The event-loop lag probe of `GET /metrics`, while the server runs."""
    async with loop_lag_watch(app[keys.METRICS]):
        yield


async def _store(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    store = create_store(config.database_url, config.data_dir)
    await store.open()
    app[keys.STORE] = store
    app[keys.METRICS].sources.store = store
    try:
        yield
    finally:
        await store.close()


#: How often stored things that only expire are deleted (refresh tokens past their expiry).
HOUSEKEEPING_INTERVAL_S: Final = 3600.0


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Deletes what has expired (refresh tokens) at start and then every hour, so a console
    left open for months does not grow the table without bound."""

    async def run() -> None:
        store = app[keys.STORE]
        while True:
            try:
                purged = await store.purge_refresh_tokens(datetime.now(UTC))
                if purged:
                    logger.info("housekeeping: deleted %d expired refresh token(s)", purged)
            except Exception:  # a failed pass is retried at the next one
                logger.exception("housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)

    task = asyncio.create_task(run(), name="radiocore-housekeeping")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _limits(app: web.Application) -> AsyncIterator[None]:
    """The API's rate limits: in this process, or shared through Redis by every node; sign-ins
    per address as `limits.login_per_minute` says (the seed's 5 by default)."""
    config = app[keys.CONFIG]
    url = config.redis_url
    login = Limit(config.limits.login_per_minute, 60.0)
    if not url:
        limits = ApiLimits.in_process()
        app[keys.LIMITS] = _counted(dataclasses.replace(limits, login=MemoryRateLimiter(login)))
        app[keys.METRICS].sources.limits = app[keys.LIMITS]
        yield
        return
    client = redis_client(url)
    app[keys.REDIS] = client  # `GET /ready` pings it
    app[keys.LIMITS] = _counted(
        dataclasses.replace(
            ApiLimits.on_redis(client), login=shared_limiter(client, login, "login")
        )
    )
    app[keys.METRICS].sources.limits = app[keys.LIMITS]
    try:
        yield
    finally:
        await client.aclose()


def _counted(limits: ApiLimits) -> ApiLimits:
    """`limits` with each refusal counted (`radiocore_rate_limited_total`)."""
    return ApiLimits(
        login=CountedRateLimiter(limits.login),
        registration=CountedRateLimiter(limits.registration),
        pairing=CountedRateLimiter(limits.pairing),
    )


async def _audit(app: web.Application) -> AsyncIterator[None]:
    audit = TxAudit(app[keys.STORE])
    await audit.start()
    app[keys.AUDIT] = audit
    app[keys.METRICS].sources.audit = audit
    try:
        yield
    finally:
        await audit.close()  # after the SFU closed: the ends of its transmissions are written


async def _presence(app: web.Application) -> AsyncIterator[None]:
    """Which stations are online: in this process, or shared by every node through Redis."""
    config = app[keys.CONFIG]
    presence: Presence = LocalPresence()
    if config.redis_url:
        node = config.cluster.node_name or default_node_name()
        presence = ClusterPresence(
            config.redis_url,
            node,
            config.cluster.presence_ttl_s,
            node_url=_node_url(config),
            public_url=config.cluster.public_url,
            placement_margin=config.cluster.placement_margin,
        )
    tracker = PresenceTracker(presence)
    app[keys.PRESENCE] = tracker
    app[keys.METRICS].sources.presence = presence
    await presence.start()
    try:
        yield
    finally:
        await tracker.close()
        await presence.close()  # after the SFU closed: its stations' ends are told first


def _node_url(config: ServerConfig) -> str:
    """Where the other nodes reach this one: `cluster.node_url`, else from host and port when
    they name one address and a fixed port; empty when they cannot (logged)."""
    if config.cluster.node_url:
        return config.cluster.node_url
    if config.host in ("", "0.0.0.0", "::") or not config.port:
        logger.warning(
            "cluster.node_url is not set and host/port (%s:%s) do not name this node: operators "
            "connected to other nodes cannot reach its stations",
            config.host,
            config.port,
        )
        return ""
    scheme = "https" if config.tls_cert_file else "http"
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{scheme}://{host}:{config.port}/"


async def _sfu(app: web.Application) -> AsyncIterator[None]:
    ice = IcePlan(app[keys.CONFIG])
    app[keys.ICE] = ice
    sfu = Sfu(
        sfu_config(app[keys.CONFIG]),
        observer=app[keys.AUDIT],
        station_observer=app[keys.PRESENCE],
        ice_servers=ice.for_sfu,
    )
    await sfu.open()  # OSError: the shared UDP port is taken (the server does not start)
    app[keys.SFU] = sfu
    app[keys.METRICS].sources.sfu = sfu
    try:
        yield
    finally:
        await sfu.close()  # ends transmissions: their ends reach the audit log


def _signaling(sio: socketio.AsyncServer) -> CleanupContext:
    async def signaling(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        sfu = app[keys.SFU]
        tracker = app[keys.PRESENCE]
        presence = tracker.presence
        link = (
            NodeLink(presence.node, NodeKey(config.secret), presence.node_url_of)
            if isinstance(presence, ClusterPresence)
            else None
        )
        stations = StationService(
            app[keys.STORE],
            sfu,
            presence,
            app[keys.AUTHORITY],
            app[keys.ICE],
            max_sdp_chars=config.limits.max_sdp_chars,
            node_link=link,
            relay_listeners=config.cluster.relay_listeners,
        )
        app[keys.STATIONS] = stations
        rate = config.limits.max_events_per_second
        operators = OperatorNamespace(
            stations,
            rate,
            max_connections_per_user=config.limits.max_connections_per_user,
            max_boards_per_connection=config.limits.max_boards_per_connection,
        )
        agents = AgentNamespace(stations, rate)
        sio.register_namespace(operators)
        sio.register_namespace(agents)
        sources = app[keys.METRICS].sources
        sources.operators, sources.agents = operators, agents
        tracker.connect(operators.announce)
        on_access_ended = operators.access_ended
        between = _BetweenNodes(presence, stations.links, operators)
        app[keys.NODE_EVENTS] = between.event
        if isinstance(presence, ClusterPresence) and link is not None:
            presence.load_of = lambda: sfu.participant_count() + stations.worker_listeners()
            # a station whose agent reconnected to another node: its stale connection here goes
            presence.on_taken = lambda board_id: agents.disconnect_boards({board_id})
            presence.on_event = between.event
            presence.listen(between.relay_follows(sfu))
            sfu.on_media_failed(between.media_failed)
            on_access_ended = between.access_ended
        sfu.on_media_failed(operators.media_failed)  # a client is told why its media failed
        sfu.on_media_failed(agents.media_failed)
        # rights live in the store: connected guests are re-checked (signaling.access)
        watch = AccessWatch(
            app[keys.STORE],
            sfu,
            recheck_s=config.access.recheck_s,
            listen_grace_s=config.access.listen_grace_s,
            on_ended=on_access_ended,
        )
        watch.start()
        sweeping = asyncio.get_running_loop().create_task(between.sweep_relays(sfu))
        logger.info("RadioCore server ready: %s", config.summary())
        try:
            yield
        finally:
            await watch.close()
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            if link is not None:
                await link.close()

    return signaling


class _BetweenNodes:
    """What one node tells another about the operators it forwarded (`signaling.nodelink`):
    as the home node, the failures and ends of forwarded operators go to their node; as the
    edge node, those events reach the operator's connection."""

    def __init__(
        self,
        presence: Presence,
        links: Callable[[], list[NodeLink]],
        operators: OperatorNamespace,
    ) -> None:
        """`links`: where operators are passed on now (other nodes, this node's workers)."""
        self._presence = presence
        self._links = links
        self._operators = operators
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # the home node's side

    def media_failed(self, board_id: str, key: str, failure: MediaFailure) -> None:
        forwarded = split_key(key)
        if forwarded is not None and isinstance(self._presence, ClusterPresence):
            node, connection_id = forwarded
            event = media_failed_event(board_id, connection_id, failure)
            self._spawn(self._presence.send_to(node, event))

    async def access_ended(self, board_id: str, key: str, message: str) -> None:
        forwarded = split_key(key)
        if forwarded is None or not isinstance(self._presence, ClusterPresence):
            await self._operators.access_ended(board_id, key, message)
            return
        node, connection_id = forwarded
        await self._presence.send_to(node, access_ended_event(board_id, connection_id, message))

    def relay_follows(self, sfu: Sfu) -> Callable[[str, bool], None]:
        """A presence listener ending this node's relays (`media.relay`) that lead nowhere: of
        a station that moved to another node, or whose node died (its relay's connection would
        only time out ~30 s later)."""

        def changed(board_id: str, online: bool) -> None:
            sfu.station_moved(board_id, self._presence.home(board_id))
            source = sfu.relay_source(board_id)
            if not online and source is not None and isinstance(self._presence, ClusterPresence):
                self._spawn(self._relay_source_check(sfu, source, [board_id]))

        return changed

    async def _relay_source_check(self, sfu: Sfu, source: str, board_ids: list[str]) -> None:
        """End this node's relays of `board_ids` from node `source` if that node is gone."""
        assert isinstance(self._presence, ClusterPresence)
        if await self._presence.node_alive(source) is False:
            for board_id in board_ids:
                logger.warning(
                    "node %s is gone: this node's relay of station %s ends", source, board_id
                )
                sfu.relay_source_gone(board_id, source)

    async def sweep_relays(self, sfu: Sfu) -> None:
        """Every presence TTL, end the relays whose station's node is gone — also those of a
        station that went offline before its node died, which no presence change reports."""
        if not isinstance(self._presence, ClusterPresence):
            return
        for _ in range(10**9):  # until cancelled with the server
            await asyncio.sleep(self._presence.ttl_s)
            by_source: dict[str, list[str]] = {}
            for room in sfu.relay_rooms():
                by_source.setdefault(room.source, []).append(room.board_id)
            for source, board_ids in by_source.items():  # one look per node
                await self._relay_source_check(sfu, source, board_ids)

    # the edge node's side

    def event(self, event: dict[str, Any]) -> None:
        board_id, connection_id = event.get("board_id"), event.get("connection_id")
        if not (isinstance(board_id, str) and isinstance(connection_id, str)):
            return
        for link in self._links():  # that peer connection ends
            link.forwarded.pop((connection_id, board_id), None)
        if event.get("kind") == "media_failed":
            message = str(event.get("message", ""))
            failure = MediaFailure(
                reason="dtls" if event.get("reason") == "dtls" else "ice", message=message
            )
            self._operators.media_failed(board_id, connection_id, failure)
        elif event.get("kind") == "access_ended":
            message = str(event.get("message", ""))
            self._spawn(self._operators.access_ended(board_id, connection_id, message))


async def start_workers(app: web.Application, main_url: str) -> WorkerPool | None:
    """Start this node's media workers (`workers` > 1; `signaling.workers`) once the server
    listens at `main_url` — or once it serves `worker_spill_listeners` listeners — and have
    listen-only operators placed on them; None without."""
    config = app[keys.CONFIG]
    count = worker_count(config.workers)
    if count <= 1:
        return None
    pool = WorkerPool(config, app[keys.PRESENCE].presence.node, main_url)
    operators = app[keys.METRICS].sources.operators
    if operators is not None:
        pool.on_listener_lost = operators.media_failed
    if config.worker_spill_listeners:
        pool.spill_at(config.worker_spill_listeners, count - 1)
        logger.info(
            "up to %d media worker(s), started once this process serves %d listeners "
            "(worker_spill_listeners)",
            count - 1,
            config.worker_spill_listeners,
        )
    else:
        try:
            await pool.start(count - 1)
        except BaseException:
            await pool.close()
            raise
    app[keys.STATIONS].workers = pool  # its link is one of the stations' links from now on
    return pool


async def _turn_check(app: web.Application) -> AsyncIterator[None]:
    """The TURN allocation check (`turn.probe`), in the background at start and then every
    `turn.check_interval_s`: it delays nothing, and its failure stops nothing (a direct path
    may still work); `/health` and `/ready` show its last outcome."""
    turn = app[keys.CONFIG].turn
    task: asyncio.Task[None] | None = None
    if turn.urls:
        issuer = TurnCredentialIssuer(turn.secret, turn.ttl_s)
        health = app[keys.TURN_HEALTH]

        async def checks() -> None:
            while True:
                await health.check(turn.urls, issuer)
                if not turn.check_interval_s:
                    return
                await asyncio.sleep(turn.check_interval_s)

        task = asyncio.create_task(checks(), name="radiocore-turn-check")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
