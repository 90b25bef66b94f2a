"""Per-core media workers (`signaling.workers`): `radiocore serve` with `workers = 2` runs a
media worker beside itself; listen-only operators are placed on the least loaded process, those
on the worker hear the station through its one relay, byte-identical to what the main process's
own operator hears, and may not key the rig; a worker that dies has its listeners told to join
again; the server's stop takes its worker with it; with `worker_spill_listeners` the worker
starts only once the main process serves that many listeners."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from bench.tools import free_ports, start_agent, stop_process, wait_http
from radiocore import aiortc_hooks
from signaling.accounts import create_account
from signaling.store import create_store
from signaling.workers import LATE_RETRY_S
from tests.integration.harness import Account, Operator, Rigctld, seed
from tests.integration.test_nodes import (
    in_order_within,
    listening_operator,
    metric,
    refused_to_key,
    sign_in,
    told_to_join_again,
    withdraw_grant,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    board_id: str
    board_secret: str
    owner: Account
    listeners: list[Account]

    def said(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def workers(self) -> list[psutil.Process]:
        """The server's `radiocore worker` children."""
        children = psutil.Process(self.process.pid).children()
        return [c for c in children if "worker" in " ".join(c.cmdline())]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """`radiocore serve --workers 2` on SQLite, its worker started with it, seeded with the
    owner's board and three operators who may only listen to it."""
    async with serving(tmp_path, spill=0) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, spill: int, udp_port: int = 0) -> AsyncIterator[Served]:
    """`served`, with `worker_spill_listeners = spill` (and `ice.udp_port`)."""
    board_id, board_secret, owner, _, _ = await seed(tmp_path)
    listeners = [
        Account(f"listener{i}@example.org", f"listener-password-{i}", f"DL{i}WRK") for i in range(3)
    ]
    async with create_store("", tmp_path) as store:
        for account in listeners:
            user = await create_account(store, account.email, account.password, account.callsign)
            account.user_id = user.id
            await store.set_grant(board_id, user.id, "listen")
    running = start_served(tmp_path, board_id, board_secret, owner, listeners, spill, udp_port)
    try:
        yield running
    finally:
        stop_process(running.process, timeout_s=10)


def start_served(
    root: Path,
    board_id: str,
    board_secret: str,
    owner: Account,
    listeners: list[Account],
    spill: int,
    udp_port: int = 0,
) -> Served:
    """The server process, once it listens and (`spill` 0) its worker too."""
    (port,) = free_ports(1)
    log = root / "server.log"
    env = dict(os.environ, RADIOCORE_SECRET="workers-" + "w0rk3rs-s3cr3t" * 4)
    command = [
        sys.executable, "-m", "radiocore", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(root), "--workers", "2", "--worker-spill-listeners", str(spill),
        "--log-level", "INFO",
        "--ice-host-address", "127.0.0.1", "--ice-udp-port", str(udp_port),
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    running = Served(url, process, log, board_id, board_secret, owner, listeners)
    try:
        wait_http(url, process)
        started = "media workers:" if spill == 0 else "up to 1 media worker(s)"
        assert wait_for_sync(lambda: running.said(started), 30), log.read_text()[-3000:]
    except BaseException:
        stop_process(process, timeout_s=10)
        raise
    return running


def station_agent(served: Served, rig: Rigctld, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The board agent of the served station, on `rig`."""
    return start_agent(
        served.url, served.board_id, served.board_secret, rig.port, log=tmp_path / "agent.log"
    )


async def join_as(served: Served, account: Account, seconds: float = 10) -> Operator:
    """`account` signed in on the served main process, hearing its station (bounded)."""
    main = Node(served.url)
    return await listening_operator(main, await sign_in(main, account), served.board_id, seconds)


async def wait_for_metric(node: Node, name: str, at_least: float, seconds: float) -> bool:
    for _ in range(int(seconds / 0.2)):  # bounded
        if await metric(node, name) >= at_least:
            return True
        await asyncio.sleep(0.2)
    return await metric(node, name) >= at_least


def free_udp_pair() -> int:
    """A UDP port free on 127.0.0.1 whose next port is free too (bounded search)."""
    for _ in range(50):
        first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if port < 65535:
                second.bind(("127.0.0.1", port + 1))
                return port
        except OSError:
            continue
        finally:
            first.close()
            second.close()
    raise AssertionError("no two free consecutive UDP ports")


def server_port(operator: Operator) -> int:
    """The server's port of the operator's nominated ICE pair."""
    assert operator.pc is not None
    pair = aiortc_hooks.nominated_pair(operator.pc.getTransceivers()[0].receiver.transport)
    assert pair is not None
    port: int = pair.remote_addr[1]
    return port


def told_access_ended(operator: Operator) -> bool:
    return any(
        kind == "error" and data.get("code") == "forbidden" and "board_id" in data
        for kind, data in operator.events
    )


def wait_for_sync(check: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds / 0.1)):  # bounded
        if check():
            return True
        time.sleep(0.1)
    return check()


async def test_listeners_are_spread_over_the_worker_and_hear_the_station_unchanged(
    served: Served, rig: Rigctld, tmp_path: Path
) -> None:
    agent = start_agent(
        served.url, served.board_id, served.board_secret, rig.port, log=tmp_path / "agent.log"
    )
    reader = rig.reader()
    operators: list[Operator] = []
    try:
        assert len(served.workers()) == 1, "one worker beside the main process"
        owner_token = await sign_in(Node(served.url), served.owner)
        owner = await listening_operator(Node(served.url), owner_token, served.board_id, 30)
        operators.append(owner)
        placed = []
        for account in served.listeners:
            token = await sign_in(Node(served.url), account)
            placed.append(await listening_operator(Node(served.url), token, served.board_id, 10))
        operators.extend(placed)
        # the owner (who may transmit) is on the main process; listeners go to the least
        # loaded: the worker, the worker again (main: the owner and the worker's relay), main
        log = served.log.read_text()
        assert log.count("placed on local-w1") == 2, log[-3000:]
        assert log.count("placed on this process") == 1, log[-3000:]
        assert "node local-w1 relays board" in log
        reference = [p.payload for p in owner.packets]
        for listener in placed:
            heard = [p.payload for p in listener.packets]
            assert in_order_within(heard[:40], reference) == 40, "a listener's payload differs"

        # a listener on the worker presses PTT: refused, the rig never keys
        await refused_to_key(placed[0], reader)

        # the owner withdraws the grant of a listener on the worker: the worker ends it, the
        # main process tells it
        revoked = served.listeners[1]
        await withdraw_grant(served.url, owner_token, served.board_id, revoked.user_id)
        assert await wait_for(lambda: told_access_ended(placed[1]), 10), placed[1].events

        # the worker dies (once it has lived long enough to be started again): its listener is
        # told to join again, and does, on the new worker
        (worker,) = served.workers()
        await asyncio.sleep(max(0.0, worker.create_time() + 8.0 - time.time()))
        worker.send_signal(signal.SIGKILL)
        assert await wait_for(lambda: told_to_join_again(placed[0]), 15), placed[0].events
        restarted = "media worker local-w1 of local listening"
        assert await wait_for(lambda: served.log.read_text().count(restarted) == 2, 30), (
            served.log.read_text()[-3000:]
        )
        assert [w.pid for w in served.workers()] not in ([], [worker.pid])
        token = await sign_in(Node(served.url), served.listeners[0])
        operators.append(await listening_operator(Node(served.url), token, served.board_id, 10))
        log = served.log.read_text()
        assert "media worker local-w1" in log and "died" in log
        assert log.count("placed on local-w1") == 3, log[-3000:]
    finally:
        reader.close()
        for operator in operators:
            with contextlib.suppress(Exception):
                await operator.close()
        stop_process(agent, timeout_s=5)
    assert "Traceback" not in served.log.read_text(), served.log.read_text()[-3000:]


async def test_workers_start_only_once_the_main_process_serves_the_spill_point(
    tmp_path: Path, rig: Rigctld
) -> None:
    """`worker_spill_listeners = 2`: no worker process until the main process serves two
    listeners (the owner and a first listen-only one); the next listener starts the worker,
    still served by the main process while it starts; the one after is placed on it and hears
    the station unchanged. With one shared UDP port (`ice.udp_port`): the main process's peers
    all use it, the worker's the next one."""
    port = free_udp_pair()
    async with serving(tmp_path, spill=2, udp_port=port) as served:
        agent = station_agent(served, rig, tmp_path)
        operators: list[Operator] = []
        main = Node(served.url)
        try:
            owner = await join_as(served, served.owner, 30)
            operators.append(owner)
            first, second, third = served.listeners
            operators.append(await join_as(served, first))
            assert served.workers() == [], "a worker started below the spill point"
            assert not served.said("starting 1 media worker")
            operators.append(
                await listening_operator(main, await sign_in(main, second), served.board_id, 10)
            )
            assert served.said("serves 2 listeners (worker_spill_listeners = 2): starting 1")
            assert await wait_for(lambda: served.said("media workers: local-w1"), 30), (
                served.log.read_text()[-3000:]
            )
            assert len(served.workers()) == 1
            placed = await listening_operator(main, await sign_in(main, third), served.board_id, 10)
            operators.append(placed)
            log = served.log.read_text()
            assert log.count("placed on this process") == 2, log[-3000:]
            assert log.count("placed on local-w1") == 1, log[-3000:]
            reference = [p.payload for p in owner.packets]
            heard = [p.payload for p in placed.packets]
            assert in_order_within(heard[:40], reference) == 40, "a listener's payload differs"
            assert served.said(f"every peer connection shares UDP 127.0.0.1 port {port}")
            assert served.said(f"every peer connection shares UDP 127.0.0.1 port {port + 1}")
            assert [server_port(o) for o in operators] == [port, port, port, port + 1]
            # a stranger's datagrams to the main process's port are dropped and counted
            before = await metric(main, "radiocore_udp_unclaimed_datagrams_total")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                for _ in range(3):
                    stranger.sendto(b"\x80\x6f" + bytes(30), ("127.0.0.1", port))
            assert await wait_for_metric(
                main, "radiocore_udp_unclaimed_datagrams_total", before + 3, 5
            )
        finally:
            for operator in operators:
                with contextlib.suppress(Exception):
                    await operator.close()
            stop_process(agent, timeout_s=5)
        assert "Traceback" not in served.log.read_text(), served.log.read_text()[-3000:]


async def test_workers_that_cannot_start_at_the_spill_point_are_tried_again(
    tmp_path: Path, rig: Rigctld
) -> None:
    """The worker's media port (`ice.udp_port` + 1) is taken when the spill point is reached:
    the worker cannot start, the log says why, and every listener is served by the main process
    meanwhile; once the port is free, a listener joining after `LATE_RETRY_S` starts it, and a
    listener who joins again is placed on it and hears the station."""
    port = free_udp_pair()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", port + 1))
    try:
        async with serving(tmp_path, spill=2, udp_port=port) as served:
            agent = station_agent(served, rig, tmp_path)
            operators: list[Operator] = []
            main = Node(served.url)
            try:
                owner = await join_as(served, served.owner, 30)
                operators.append(owner)
                first, second, third = served.listeners
                for account in (first, second):  # the second reaches the spill point
                    operators.append(await join_as(served, account))
                assert await wait_for(
                    lambda: served.said("media workers could not be started"), 30
                ), served.log.read_text()[-3000:]
                assert served.said(f"cannot bind UDP 127.0.0.1 port {port + 1}")
                assert served.workers() == []
                squatter.close()
                await asyncio.sleep(LATE_RETRY_S)
                token = await sign_in(main, third)
                late = await listening_operator(main, token, served.board_id, 10)
                operators.append(late)  # served by the main process: the worker is starting
                assert await wait_for(lambda: served.said("media workers: local-w1"), 30), (
                    served.log.read_text()[-3000:]
                )
                await late.close()
                operators.remove(late)
                again = await listening_operator(main, token, served.board_id, 10)
                operators.append(again)
                assert "placed on local-w1" in served.log.read_text()
                assert server_port(again) == port + 1  # its media goes through the worker
                reference = [p.payload for p in owner.packets]
                heard = [p.payload for p in again.packets]
                assert in_order_within(heard[:40], reference) == 40, "the payload differs"
            finally:
                for operator in operators:
                    with contextlib.suppress(Exception):
                        await operator.close()
                stop_process(agent, timeout_s=5)
    finally:
        squatter.close()


async def test_the_servers_stop_takes_its_worker_with_it(served: Served) -> None:
    (worker,) = served.workers()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=15) == 0
    assert wait_for_sync(lambda: not worker.is_running() or worker.status() == "zombie", 10)


@dataclass
class Node:
    """What `listening_operator` and `sign_in` need of a server."""

    url: str
    name: str = "main"
