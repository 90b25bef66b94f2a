"""Per-core media workers (`signaling.workers`): `radiocore serve` with `workers = 2` runs a
media worker beside itself; listen-only operators are placed on the least loaded process, those
on the worker hear the station through its one relay, byte-identical to what the main process's
own operator hears, and may not key the rig; a worker that dies has its listeners told to join
again; the server's stop takes its worker with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from bench.tools import free_ports, start_agent, stop_process, wait_http
from signaling.accounts import create_account
from signaling.store import create_store
from tests.integration.harness import Account, Operator, Rigctld, seed
from tests.integration.test_nodes import (
    in_order_within,
    listening_operator,
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
    """`radiocore serve --workers 2` on SQLite, seeded with the owner's board and three
    operators who may only listen to it."""
    board_id, board_secret, owner, _, _ = await seed(tmp_path)
    listeners = [
        Account(f"listener{i}@example.org", f"listener-password-{i}", f"DL{i}WRK") for i in range(3)
    ]
    async with create_store("", tmp_path) as store:
        for account in listeners:
            user = await create_account(store, account.email, account.password, account.callsign)
            account.user_id = user.id
            await store.set_grant(board_id, user.id, "listen")
    running = start_served(tmp_path, board_id, board_secret, owner, listeners)
    try:
        yield running
    finally:
        stop_process(running.process, timeout_s=10)


def start_served(
    root: Path, board_id: str, board_secret: str, owner: Account, listeners: list[Account]
) -> Served:
    """The server process, once its worker listens."""
    (port,) = free_ports(1)
    log = root / "server.log"
    env = dict(os.environ, RADIOCORE_SECRET="workers-" + "w0rk3rs-s3cr3t" * 4)
    command = [
        sys.executable, "-m", "radiocore", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(root), "--workers", "2", "--log-level", "INFO",
        "--ice-host-address", "127.0.0.1",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    running = Served(url, process, log, board_id, board_secret, owner, listeners)
    try:
        wait_http(url, process)
        assert wait_for_sync(lambda: running.said("media workers:"), 30), log.read_text()[-3000:]
    except BaseException:
        stop_process(process, timeout_s=10)
        raise
    return running


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
