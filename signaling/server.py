"""Running the server process: start, serve until SIGTERM/SIGINT, and stop gracefully.

Stopping a server that may be keying transmitters is an ordered affair, bounded in time
(`STOP_BOUND_S`), so that `systemctl stop` never waits for its kill timer:

1. stop accepting connections;
2. end every transmission (`server_shutdown`): PTT off to each station, ahead of anything it
   still has queued, and the holders and operators told; wait (bounded) until that left;
3. tell every client on both namespaces (`shutdown`, with when to come back), then close every
   Socket.IO connection: the agents unkey on link loss too, and reconnect with their back-off;
4. close the rest in reverse order of opening (SFU peers, the TX audit log, the store).

aiohttp's own shutdown waits for open request handlers, and a Socket.IO WebSocket is one for
as long as its client stays: without step 3 a single connected browser held the process.

With `tls_cert_file` and `tls_key_file` set the server speaks HTTPS itself (`signaling.tls`):
the certificate is reloaded when its files change (polled) and on SIGHUP
(`systemctl reload radiocore-server` where the unit has `ExecReload=kill -HUP $MAINPID`), the
previous one kept if the new pair is invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

import radiocore_protocol as protocol
from radiocore import small_waiters
from signaling import keys
from signaling.app import create_app, start_workers
from signaling.config import ServerConfig
from signaling.tls import TlsCertificates
from signaling.workers import WorkerPool

logger = logging.getLogger(__name__)

#: The longest a graceful stop may take, from the signal to the process exiting.
STOP_BOUND_S: Final = 5.0
#: Of which: waiting for PTT off and the other last messages to leave.
FLUSH_BOUND_S: Final = 1.0
#: Of which: aiohttp's wait for request handlers still running after the clients were closed.
HANDLER_BOUND_S: Final = 1.0
#: What clients are told: a restart usually takes a few seconds.
RETRY_AFTER_S: Final = 5


async def shutdown_gracefully(app: web.Application) -> None:
    """Steps 2 and 3 of the module docstring (the runner does 1 and 4), bounded in time."""
    sfu = app[keys.SFU]
    ended = sfu.end_transmissions("server_shutdown")
    if ended:
        logger.warning("stopping: ended %d transmission(s); PTT off sent to the station(s)", ended)
    if not await sfu.flush(FLUSH_BOUND_S):
        logger.warning("stopping: some data channels still held messages after %g s", FLUSH_BOUND_S)
    sio = app[keys.SOCKETIO]
    notice = protocol.to_builtins(
        protocol.Shutdown(message="the server is stopping", retry_after_s=RETRY_AFTER_S)
    )
    for namespace in (protocol.AGENT_NAMESPACE, protocol.OPERATOR_NAMESPACE):
        with contextlib.suppress(Exception):  # a client that is already gone
            await asyncio.wait_for(sio.emit("shutdown", notice, namespace=namespace), 1.0)
    if sio.eio.sockets:  # engineio's disconnect-all fails on none
        await asyncio.wait_for(sio.eio.disconnect(), 1.0)  # every client, both namespaces
    await sio.shutdown()


def freeze_startup_objects() -> None:
    """Move what exists once the server listens (modules, the app, aiortc's and the store's
    tables: most of the process's objects, and all of them for its whole life) out of the
    garbage collector's sight: its full collections then walk only what came later. One such
    collection took 95 ms in the middle of 50 operators joining at once, the event loop (and
    the audio it forwards) waiting meanwhile."""
    gc.collect()
    gc.freeze()


async def serve(
    config: ServerConfig,
    *,
    on_ready: Callable[[web.Application, str], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the server until SIGTERM or SIGINT (or `stop` is set); 0 after a graceful stop.

    `on_ready(app, url)` runs once the server listens (the demo starts its station there).
    """
    small_waiters.install()  # ≈ 27 KB less per peer connection (see the module)
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    # validated with the config; read again here, where the server commits to them
    tls = (
        TlsCertificates(config.tls_cert_file, config.tls_key_file)
        if config.tls_cert_file is not None and config.tls_key_file is not None
        else None
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(config)
    if tls is not None:
        loop.add_signal_handler(signal.SIGHUP, tls.reload, "SIGHUP")
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HANDLER_BOUND_S)
    watcher: asyncio.Task[None] | None = None
    workers: WorkerPool | None = None
    try:
        await runner.setup()
        site = web.TCPSite(
            runner, config.host, config.port, ssl_context=tls.context if tls else None
        )
        await site.start()
        if tls is not None:
            watcher = asyncio.create_task(tls.watch(stop), name="tls-certificate-watch")
        port = runner.addresses[0][1]
        public_host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
        if ":" in public_host:
            public_host = f"[{public_host}]"  # an IPv6 literal in a URL
        url = f"{'https' if tls else 'http'}://{public_host}:{port}/"
        logger.info("listening on %s", url)
        workers = await start_workers(app, url)
        freeze_startup_objects()
        if on_ready is not None:
            await on_ready(app, url)
        await stop.wait()
        logger.info("stopping")
        for running in list(runner.sites):
            await running.stop()  # no new connections
        try:
            await asyncio.wait_for(shutdown_gracefully(app), STOP_BOUND_S - HANDLER_BOUND_S)
        except TimeoutError:
            logger.error("stopping took over %g s; closing what is left", STOP_BOUND_S)
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if tls is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if workers is not None:
            await workers.close()  # their listeners' connections end with them
        await runner.cleanup()
        logger.info("stopped")
