"""What the `radiocore bench` commands share: a seeded server on loopback, logins, ports."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_EMAIL = "bench@radiocore.local"
#: The bench account that may only listen (`seed_listener`).
LISTENER_EMAIL = "listener@radiocore.local"
BENCH_PASSWORD = "bench-password"
BENCH_CALLSIGN = "DL0BCH"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 now (`free_port` is TCP's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: the sockets are held open together while they are
    chosen (two `free_port()` calls in a row can return the same port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


async def seed(data_dir: Path) -> tuple[str, str]:
    """The bench account and its board in `data_dir`'s SQLite store: (board id, board secret)."""
    from signaling.accounts import create_account, register_board
    from signaling.store import SQLITE_FILE_NAME, SqliteStore

    async with SqliteStore(data_dir / SQLITE_FILE_NAME) as store:
        user = await create_account(store, BENCH_EMAIL, BENCH_PASSWORD, BENCH_CALLSIGN)
        registered = await register_board(store, user.id, "Bench station")
    return registered.board.id, registered.secret


def start_agent(
    url: str,
    board_id: str,
    secret: str,
    rig_port: int,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`python -m board_agent` for the board on loopback, driving the rigctld on `rig_port`
    (its PTT guard included); the secret in the environment; output to `log` if given;
    `extra_args`: more of its flags."""
    command = [
        sys.executable, "-m", "board_agent", "--server", url, "--board-id", board_id,
        "--ice-host-address", "127.0.0.1", "--log-level", "WARNING",
        "--rig", "rigctld", "--rigctld-port", str(rig_port), *extra_args,
    ]  # fmt: skip
    environment = dict(os.environ, RADIOCORE_AGENT_SECRET=secret, **(env or {}))
    if log is None:
        return subprocess.Popen(command, env=environment)
    with log.open("ab") as out:
        return subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)


def percentile_ms(values: list[float], quantile: int) -> float | None:
    """The `quantile`th percentile of `values` (seconds) in milliseconds, or None if empty."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[quantile - 1] * 1000, 2)


def use_loopback_ice() -> None:
    from radiocore.aiortc_hooks import set_host_addresses

    set_host_addresses(["127.0.0.1"])


async def seed_listener(data_dir: Path, board_id: str) -> None:
    """An account that may only listen to the bench board (`LISTENER_EMAIL`)."""
    from signaling.accounts import create_account
    from signaling.store import SQLITE_FILE_NAME, SqliteStore

    async with SqliteStore(data_dir / SQLITE_FILE_NAME) as store:
        user = await create_account(store, LISTENER_EMAIL, BENCH_PASSWORD, "BE0LIS")
        await store.set_grant(board_id, user.id, "listen")


def login(url: str, email: str = BENCH_EMAIL) -> str:
    request = urllib.request.Request(
        url + "api/auth/login",
        data=json.dumps({"email": email, "password": BENCH_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["token"])


def wait_workers(url: str, count: int) -> None:
    """Until the server's `count` media workers answer (they start once it listens), as its
    `GET /api/internal/sfu` lists them; bounded: 30 s."""
    for _ in range(300):
        with urllib.request.urlopen(url + "api/internal/sfu", timeout=10) as response:
            if len(json.load(response).get("workers", [])) >= count:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server's {count} media worker(s) did not start within 30 s")


def wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url + "health", timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError("the server did not answer in time")


def start_server(
    data_dir: Path, extra_config: str = "", env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """`radiocore serve` on a free loopback port with a seeded SQLite store; (url, process).
    `env`: variables added to its environment (secrets such as RADIOCORE_TURN__SECRET)."""
    port = free_port()
    config = data_dir / "server.toml"
    config.write_text(
        f'host = "127.0.0.1"\nport = {port}\ndata_dir = "{data_dir}"\n'
        f'secret = "{os.urandom(32).hex()}"\nlog_level = "WARNING"\n' + extra_config
    )
    url = f"http://127.0.0.1:{port}/"
    return url, restart_server(data_dir, url, env)


def restart_server(
    data_dir: Path, url: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`radiocore serve` again with the config `start_server` wrote in `data_dir` (same port,
    secret and store), once it answers at `url`."""
    config = data_dir / "server.toml"
    server = subprocess.Popen(
        [sys.executable, "-m", "radiocore", "serve", "--config", str(config)],
        env=dict(os.environ, **env) if env else None,
    )
    try:
        wait_http(url, server)
    except BaseException:
        stop_process(server)
        raise
    return server


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after `timeout_s`; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)


async def operator_offer(sio: Any, pc: Any, board_id: str) -> dict[str, Any]:
    """An operator's half of the media negotiation, as the console does it: `pc`'s offer to
    the joined board over `/operator` (made here unless `pc` has one already); with an `ok`
    reply, its answer applied (no await after that: ICE has not connected, no packet is
    missed). The reply, for the caller to judge."""
    from aiortc import RTCSessionDescription

    if pc.localDescription is None:
        await pc.setLocalDescription(await pc.createOffer())
    reply: dict[str, Any] = await sio.call(
        "offer",
        {"board_id": board_id, "type": "offer", "sdp": pc.localDescription.sdp},
        namespace="/operator",
        timeout=30,
    )
    if reply.get("ok"):
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    return reply
