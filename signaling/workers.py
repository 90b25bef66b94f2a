"""Per-core media workers (issue 11): one server process uses one core; `workers = N` (flag
`--workers N`, 0: one per core) makes `radiocore serve` start N - 1 worker processes beside it
on this machine, each an SFU of its own on its own core.

With `worker_spill_listeners` (100 by default) the workers start only once the main process
serves that many listeners: until then it serves them all itself (a small station spends no
memory on workers: each is a Python process of ~100 MB); from then on the least loaded rule
below spreads the new ones. 0: the workers start with the server.

The main process stays the one authority of its stations: their agents, their floor, PTT,
control and every operator who may transmit are there. A listen-only operator of one of its
stations is placed, when it joins, on the least loaded of the main process and the workers
(listeners each serves; ties stay in the main process; each placement logged). A worker serves
its listeners exactly as a node serves the listeners of another node's station (`media.relay`):
one relay connection per station to the main process, the station's packets forwarded to each
listener unchanged; the station's status, floor and roster passed on.

Between the main process and its workers: the requests between nodes (`signaling.nodelink`,
signed with the same key, on loopback). The main process passes a placed listener's offer,
candidates and leaving to the worker (`POST /api/internal/node/{offer,candidate,leave}`); the
worker asks the main process for its relay (`/relay`) and tells it what it must tell a listener
(media failed, access ended: `/event`). A worker rechecks its listeners' access in the store
like the main process (`signaling.access`).

A worker is started with `radiocore worker` (not for people), its configuration pickled on its
standard input, and says on standard output the loopback port it took. It stops with its main
process: on SIGTERM, and by itself when its parent is gone. A worker that dies is started again
(unless it died within `_MIN_LIFE_S` of its start); its listeners are told to join again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from aiohttp import web

from media.errors import MediaError
from media.participant import MediaFailure
from media.sfu import Sfu
from radiocore import small_waiters
from radiocore_protocol import ErrorCode, ProtocolError
from signaling.access import AccessWatch
from signaling.config import ServerConfig
from signaling.ice import IcePlan
from signaling.nodelink import (
    ForwardedOperator,
    NodeKey,
    NodeLink,
    access_ended_event,
    checked,
    forwarded_identity,
    media_failed_event,
    participant_routes,
    read_signed,
    refusal,
    split_key,
)
from signaling.store import create_store

logger = logging.getLogger(__name__)

#: The line a worker prints once it listens: `RADIOCORE_WORKER_PORT=PORT`.
PORT_LINE: Final = "RADIOCORE_WORKER_PORT="
#: A worker that does not say its port within this is given up.
START_BOUND_S: Final = 30.0
#: A worker that dies sooner than this after its start is not started again (it would only die
#: again: a broken installation or configuration).
_MIN_LIFE_S: Final = 5.0
#: After the media workers failed to start at the spill point, the next attempt waits this long
#: (and for the next listener): a taken media port, say, may be freed meanwhile.
LATE_RETRY_S: Final = 10.0
#: How often a worker checks that its main process is still there.
_PARENT_CHECK_S: Final = 1.0
#: What a listener served by a worker that died is told (`media_failed`).
WORKER_LOST: Final = "the media worker process that served you stopped: join again"

#: Told of a placed listener whose worker died: (board id, connection id, failure).
ListenerLost = Callable[[str, str, MediaFailure], None]


def worker_count(configured: int) -> int:
    """Processes to serve with, the main one included (`workers`; 0: one per core)."""
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


@dataclass
class Worker:
    name: str
    url: str
    process: asyncio.subprocess.Process
    started_at: float


class WorkerPool:
    """The main process's side: its workers, where listeners are placed, their requests."""

    def __init__(self, config: ServerConfig, node: str, main_url: str) -> None:
        self._config = config
        self._node = node
        self._main_url = main_url
        self.workers: dict[str, Worker] = {}
        self.link = NodeLink(node, NodeKey(config.secret), self._url_of)
        #: Told of each listener whose worker died (set by signaling: its operator is told).
        self.on_listener_lost: ListenerLost | None = None
        self._watches: set[asyncio.Task[None]] = set()
        self._closing = False
        #: The worker of each listener whose offer is being answered.
        self._joining: list[str] = []
        #: Workers to start once this process serves `_spill` listeners (`spill_at`).
        self._pending = 0
        self._spill = 0
        self._starting: asyncio.Task[None] | None = None
        #: No late start before this (monotonic), after one failed.
        self._retry_at = 0.0

    async def _url_of(self, name: str) -> str | None:
        worker = self.workers.get(name)
        return worker.url if worker is not None else None

    async def start(self, count: int) -> None:
        """Start the workers `{node}-w1` … `{node}-w{count}` not running yet and wait until each
        listens (or failed: the first failure is raised once every start is over)."""
        names = [f"{self._node}-w{i}" for i in range(1, count + 1)]
        results = await asyncio.gather(
            *(self._start(name) for name in names if name not in self.workers),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        logger.info(
            "media workers: %s beside this process (listeners who may only listen are placed "
            "on the least loaded)",
            ", ".join(f"{w.name} (pid {w.process.pid})" for w in self.workers.values()),
        )

    def spill_at(self, listeners: int, count: int) -> None:
        """Start `count` workers only once this process serves `listeners` listeners
        (`worker_spill_listeners`): until then it serves every listener itself."""
        self._spill, self._pending = listeners, count

    def _start_pending(self, here: int) -> None:
        """This process serves `here` listeners: start the pending workers (in the background,
        once), when that reaches the spill point."""
        if not self._pending or here < self._spill or self._starting is not None:
            return
        if time.monotonic() < self._retry_at:
            return
        logger.info(
            "this process serves %d listeners (worker_spill_listeners = %d): starting %d media "
            "worker(s)",
            here,
            self._spill,
            self._pending,
        )
        count, self._pending = self._pending, 0
        self._starting = asyncio.get_running_loop().create_task(self._start_late(count))

    async def _start_late(self, count: int) -> None:
        try:
            await self.start(count)
        except (OSError, RuntimeError) as exc:  # listeners stay in this process meanwhile
            logger.error(
                "media workers could not be started: %s; this process serves every listener "
                "meanwhile (tried again in %g s at the earliest, when a listener joins)",
                exc,
                LATE_RETRY_S,
            )
            self._pending = count
            self._retry_at = time.monotonic() + LATE_RETRY_S
        finally:
            self._starting = None

    async def _start(self, name: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "radiocore",
            "worker",
            "--name",
            name,
            "--main-node",
            self._node,
            "--main-url",
            self._main_url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(pickle.dumps(worker_config(self._config, name)))
        await process.stdin.drain()
        process.stdin.close()
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_BOUND_S)
        except TimeoutError:
            line = b""
        text = line.decode(errors="replace").strip()
        if not text.startswith(PORT_LINE):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RuntimeError(f"media worker {name} did not start (it said {text[:200]!r})")
        port = int(text.removeprefix(PORT_LINE))
        # anything it prints later is read (and dropped): a full pipe would block it
        drain = asyncio.get_running_loop().create_task(_drain(process.stdout))
        self._watches.add(drain)
        drain.add_done_callback(self._watches.discard)
        worker = Worker(name, f"http://127.0.0.1:{port}/", process, time.monotonic())
        self.workers[name] = worker
        task = asyncio.get_running_loop().create_task(self._watch(worker))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _watch(self, worker: Worker) -> None:
        code = await worker.process.wait()
        if self._closing:
            return
        if self.workers.get(worker.name) is worker:
            del self.workers[worker.name]
        lost = [key for key, name in self.link.forwarded.items() if name == worker.name]
        logger.error(
            "media worker %s (pid %s) died (exit status %s); its %d listener(s) are told to join "
            "again",
            worker.name,
            worker.process.pid,
            code,
            len(lost),
        )
        for connection_id, board_id in lost:
            self.link.forwarded.pop((connection_id, board_id), None)
            if self.on_listener_lost is not None:
                self.on_listener_lost(board_id, connection_id, MediaFailure("ice", WORKER_LOST))
        if time.monotonic() - worker.started_at < _MIN_LIFE_S:
            logger.error(
                "media worker %s died soon after its start: not started again", worker.name
            )
            return
        try:
            await self._start(worker.name)
        except (OSError, RuntimeError) as exc:
            logger.error("media worker %s could not be started again: %s", worker.name, exc)

    def load(self) -> dict[str, int]:
        """Listeners the main process placed on each worker now, those joining included."""
        counts = dict.fromkeys(self.workers, 0)
        for name in [*self.link.forwarded.values(), *self._joining]:
            if name in counts:
                counts[name] += 1
        return counts

    def place(self, here: int) -> str | None:
        """The worker for a new listener, None for this process: the least loaded, this
        process when it serves no more than any worker (`here`: its own listeners). Before
        the spill point (`spill_at`) there are no workers: this process."""
        self._start_pending(here)
        load = self.load()
        if not load:
            return None
        name = min(load, key=lambda n: (load[n], n))
        return name if load[name] < here else None

    async def stats(self, *, reset: bool = False) -> list[dict[str, Any]]:
        """Each worker's SFU counters (`GET /api/internal/sfu` of the main process adds them),
        its name added; a worker that does not answer is left out."""
        found: list[dict[str, Any]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for worker in list(self.workers.values()):
                url = f"{worker.url}api/internal/sfu{'?reset=1' if reset else ''}"
                try:
                    async with http.get(url) as reply:
                        found.append({"name": worker.name, **await reply.json()})
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    logger.warning("media worker %s gave no counters: %s", worker.name, exc)
        return found

    async def offer(self, worker: str, operator: ForwardedOperator, sdp: str) -> str:
        self._joining.append(worker)  # counted while its offer is answered: joins at once spread
        try:
            return await self.link.offer(worker, operator, sdp)
        finally:
            self._joining.remove(worker)

    async def close(self) -> None:
        self._closing = True
        if self._starting is not None:  # a start under way: its workers are stopped below
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        for task in list(self._watches):
            task.cancel()
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()
        for worker in self.workers.values():
            try:
                await asyncio.wait_for(worker.process.wait(), 5.0)
            except TimeoutError:
                logger.warning("media worker %s did not stop in 5 s: killed", worker.name)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        self.workers.clear()
        await self.link.close()


async def _drain(stream: asyncio.StreamReader) -> None:
    for _ in range(10**9):  # until the worker's end of the pipe closes
        if not await stream.read(65536):
            return


# -- the worker process -------------------------------------------------------------------------


def worker_routes(key: NodeKey, sfu: Sfu, link: NodeLink, main_node: str) -> list[web.RouteDef]:
    """A worker's endpoints: a placed listener's offer (served through this worker's relay of
    the station), candidates and leaving."""

    async def offer(request: web.Request) -> web.Response:
        sender, data = await read_signed(key, request)
        if sender != main_node:
            return refusal(ErrorCode.FORBIDDEN, f"this worker serves node {main_node} only")
        board_id = str(data["board_id"])
        identity = forwarded_identity(sender, data)

        async def open_upstream(sdp: str) -> str:
            return await link.relay(main_node, board_id, sdp)

        try:
            answer = await sfu.connect_relayed(
                board_id, identity, str(data["sdp"]), open_upstream, source=main_node
            )
        except (MediaError, ProtocolError) as exc:  # a bad offer, the station gone: in words
            return refusal(exc.code, exc.message)
        return web.json_response({"sdp": answer})

    return [
        web.post("/api/internal/node/offer", checked(offer)),
        *participant_routes(key, lambda: sfu),
    ]


def worker_config(config: ServerConfig, name: str) -> ServerConfig:
    """The server's configuration as worker `name` (`{node}-wN`) runs it: with a shared UDP
    port (`ice.udp_port`), worker N shares `udp_port + N` (one socket cannot be read by two
    processes); everything else as the server's."""
    if not config.ice.udp_port:
        return config
    index = int(name.rpartition("-w")[2])
    return dataclasses.replace(
        config, ice=dataclasses.replace(config.ice, udp_port=config.ice.udp_port + index)
    )


async def run_worker(config: ServerConfig, name: str, main_node: str, main_url: str) -> int:
    """A worker process's life (see the module docstring); 0 after a clean stop."""
    from signaling.app import sfu_config  # the server's own SFU settings

    small_waiters.install()  # as the server does (see the module)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()
    key = NodeKey(config.secret)
    link = NodeLink(name, key, _only(main_node, main_url), verify_tls=False)
    ice = IcePlan(config)
    sfu = Sfu(sfu_config(config), ice_servers=ice.for_sfu)
    try:
        await sfu.open()  # its own shared UDP port (`worker_config`)
    except OSError as exc:
        logger.error("media worker %s cannot start: %s", name, exc)
        sys.stdout.write(f"error: {exc}\n")  # what the main process reports
        sys.stdout.flush()
        return 1
    store = create_store(config.database_url, config.data_dir)
    await store.open()
    tasks: set[asyncio.Task[None]] = set()

    def tell(event: dict[str, Any]) -> None:
        async def send() -> None:
            try:
                await link.event(main_node, event)
            except Exception as exc:
                logger.warning("telling %s of %s failed: %s", main_node, event.get("kind"), exc)

        task = loop.create_task(send())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def media_failed(board_id: str, key_: str, failure: MediaFailure) -> None:
        forwarded = split_key(key_)
        if forwarded is not None:
            tell(media_failed_event(board_id, forwarded[1], failure))

    async def access_ended(board_id: str, key_: str, message: str) -> None:
        forwarded = split_key(key_)
        if forwarded is not None:
            tell(access_ended_event(board_id, forwarded[1], message))

    sfu.on_media_failed(media_failed)
    watch = AccessWatch(
        store,
        sfu,
        recheck_s=config.access.recheck_s,
        listen_grace_s=config.access.listen_grace_s,
        on_ended=access_ended,
    )
    app = web.Application(client_max_size=config.limits.max_http_buffer_bytes)
    app.router.add_routes(worker_routes(key, sfu, link, main_node))

    async def counters(request: web.Request) -> web.Response:  # on loopback only, as it listens
        if request.query.get("reset") == "1":
            sfu.reset_latency()
        return web.json_response(dataclasses.asdict(sfu.stats()))

    app.router.add_get("/api/internal/sfu", counters)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    watch.start()
    from signaling.server import freeze_startup_objects  # (signaling.server imports this module)

    freeze_startup_objects()
    logger.info("media worker %s of %s listening on 127.0.0.1:%d", name, main_node, port)
    sys.stdout.write(f"{PORT_LINE}{port}\n")
    sys.stdout.flush()
    try:
        for _ in range(10**9):  # until stopped, or the main process is gone
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _PARENT_CHECK_S)
            if stop.is_set():
                break
            if os.getppid() != parent:
                logger.warning("media worker %s: its main process is gone; stopping", name)
                break
    finally:
        await watch.close()
        await sfu.close()
        await runner.cleanup()
        await link.close()
        await store.close()
        for task in list(tasks):
            task.cancel()
    return 0


def _only(main_node: str, main_url: str) -> Callable[[str], Any]:
    async def url_of(node: str) -> str | None:
        return main_url if node == main_node else None

    return url_of
