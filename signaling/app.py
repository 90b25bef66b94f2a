"""The application factory: aiohttp + python-socketio + the SFU, from one config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from media.config import IceServerSpec, SfuConfig
from media.sfu import Sfu
from signaling import keys
from signaling.audit import TxAudit
from signaling.auth import JwtAuthority
from signaling.config import ServerConfig, resolve_web_root
from signaling.namespaces import AgentNamespace, OperatorNamespace
from signaling.presence import LocalPresence
from signaling.rest import add_routes
from signaling.stations import StationService
from signaling.store import create_store

logger = logging.getLogger(__name__)


def sfu_config(config: ServerConfig) -> SfuConfig:
    return SfuConfig(
        ice_host_addresses=config.ice.host_addresses,
        ice_servers=tuple(IceServerSpec(urls=(url,)) for url in config.ice.servers),
        listener_queue_packets=config.limits.listener_queue_packets,
        max_messages_per_second=config.limits.max_data_messages_per_second,
        latency_sample_every=config.media_latency_sample_every,
        deadman_s=config.floor.deadman_s,
        tx_timeout_s=config.floor.tx_timeout_s,
        tx_warning_s=config.floor.tx_warning_s,
    )


def create_app(config: ServerConfig) -> web.Application:
    app = web.Application(client_max_size=config.limits.max_http_buffer_bytes)
    app[keys.CONFIG] = config
    app[keys.AUTHORITY] = JwtAuthority.from_config(config)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        max_http_buffer_size=config.limits.max_http_buffer_bytes,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    add_routes(app, resolve_web_root(config))

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = create_store(config.database_url, config.data_dir)
        await store.open()
        audit = TxAudit(store)
        audit.start()
        sfu = Sfu(sfu_config(config), observer=audit)
        app[keys.STORE] = store
        app[keys.SFU] = sfu
        stations = StationService(store, sfu, LocalPresence(), sfu.config.ice_servers)
        app[keys.STATIONS] = stations
        rate = config.limits.max_events_per_second
        operators = OperatorNamespace(stations, app[keys.AUTHORITY], rate)
        sio.register_namespace(operators)
        sio.register_namespace(AgentNamespace(stations, operators, rate))
        logger.info("RadioCore server ready: %s", config.summary())
        try:
            yield
        finally:
            await sfu.close()  # ends transmissions: their ends reach the audit log
            await audit.close()
            await store.close()

    app.cleanup_ctx.append(resources)
    return app
