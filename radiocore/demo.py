"""`radiocore demo`: the server on its embedded defaults plus a simulated station.

Seeds a demo account and board (once per data directory), starts the server, starts a board
agent process with a simulated receiver (a tone) and a rig — Hamlib's dummy rig through a real
`rigctld` when Hamlib is installed, else an in-process simulation with the same interface —
waits until the station is online and prints where to open the console. Stops both on Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from signaling import keys
from signaling.accounts import create_account, register_board
from signaling.config import ServerConfig
from signaling.server import serve
from signaling.store import Store

logger = logging.getLogger(__name__)

DEMO_EMAIL = "demo@radiocore.local"
DEMO_PASSWORD = "radiocore-demo"
DEMO_CALLSIGN = "DL0DEMO"
DEMO_BOARD_NAME = "Demo station"
AGENT_START_TIMEOUT_S = 60.0
READY_PREFIX = "RADIOCORE_DEMO_READY"


@dataclass(frozen=True)
class DemoBoard:
    board_id: str
    secret: str


async def seed(store: Store, data_dir: Path) -> DemoBoard:
    """The demo account and board, created on first use; the board secret kept in a 0600 file."""
    user = await store.get_user_by_email(DEMO_EMAIL)
    if user is None:
        user = await create_account(store, DEMO_EMAIL, DEMO_PASSWORD, DEMO_CALLSIGN)
    secret_file = data_dir / "demo-board.json"
    if secret_file.exists():
        saved = json.loads(secret_file.read_text())
        if await store.get_board(saved["board_id"]) is not None:
            return DemoBoard(saved["board_id"], saved["secret"])
    registered = await register_board(store, user.id, DEMO_BOARD_NAME)
    board_id, secret = registered.board.id, registered.secret
    descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"board_id": board_id, "secret": secret}, handle)
    return DemoBoard(board_id, secret)


def _free_tcp_port() -> int:
    """A loopback TCP port free right now (for the station's rigctld, so the demo can say it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _agent_command(
    config: ServerConfig,
    url: str,
    board: DemoBoard,
    source: str,
    rigctld_port: int | None,
    sink: str = "null",
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "board_agent",
        "--server",
        url,
        "--board-id",
        board.board_id,
        "--audio-source",
        source,
        "--audio-sink",
        sink,
        "--log-level",
        config.log_level,
    ]
    for address in config.ice.host_addresses:
        command += ["--ice-host-address", address]
    if rigctld_port is not None:
        # Hamlib's dummy rig behind a real rigctld, which the agent's PTT guard runs; the dummy
        # needs "-P RIG" on Hamlib 4.5 or it refuses PTT
        command += ["--rig", "hamlib", "--rig-model", "1", "--rig-ptt-type", "RIG"]
        command += ["--rigctld-port", str(rigctld_port)]
    return command


def _agent_trust(cert_file: Path, data_dir: Path) -> Path:
    """What the demo's station trusts over the demo's own HTTPS: its certificate (typically
    self-signed; it must name the address the agent connects to, 127.0.0.1 for --host 0.0.0.0)
    and whatever it would trust anyway (`SSL_CERT_FILE` or the system's bundle)."""
    parts = [cert_file.read_text()]
    default = ssl.get_default_verify_paths().cafile
    if default is not None and os.path.isfile(default):
        parts.append(Path(default).read_text())
    bundle = data_dir / "demo-trust.pem"
    bundle.write_text("\n".join(parts))
    return bundle


async def _demo(args: argparse.Namespace, config: ServerConfig) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    outcome: list[int] = []

    async def start_station(app: web.Application, url: str) -> None:
        # the server's store is open: the demo seeds it through the server, opening it once
        board = await seed(app[keys.STORE], config.data_dir)
        station = asyncio.create_task(_run_station(args, config, app, url, board, stop))
        station.add_done_callback(lambda done: _station_ended(done, outcome, stop))
        tasks.add(station)

    tasks: set[asyncio.Task[int]] = set()
    try:
        await serve(config, on_ready=start_station, stop=stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcome[0] if outcome else 0


def _station_ended(task: asyncio.Task[int], outcome: list[int], stop: asyncio.Event) -> None:
    """The simulated station's run ended: its result is the demo's; the server stops too."""
    if not task.cancelled():
        exc = task.exception()
        outcome.append(1 if exc is not None else task.result())
        if exc is not None:
            logger.error("the simulated station failed", exc_info=exc)
    stop.set()


async def _run_station(
    args: argparse.Namespace,
    config: ServerConfig,
    app: web.Application,
    url: str,
    board: DemoBoard,
    stop: asyncio.Event,
) -> int:
    """Start the simulated station's agent, wait for it, tell the user, run until stopped."""
    env = dict(os.environ, RADIOCORE_AGENT_SECRET=board.secret)
    if config.tls_cert_file is not None:
        env["SSL_CERT_FILE"] = str(_agent_trust(config.tls_cert_file, config.data_dir))
    # the rig's own rigctld port goes in the ready line: tests and benchmarks read the rig's
    # PTT and frequency there on their own connection, as a station's owner could
    rigctld_port = _free_tcp_port() if shutil.which("rigctld") is not None else None
    agent = await asyncio.create_subprocess_exec(
        *_agent_command(config, url, board, args.audio_source, rigctld_port, args.audio_sink),
        env=env,
    )
    try:
        sfu = app[keys.SFU]
        for _ in range(int(AGENT_START_TIMEOUT_S / 0.1)):
            if sfu.station_online(board.board_id) or agent.returncode is not None or stop.is_set():
                break
            await asyncio.sleep(0.1)
        if not sfu.station_online(board.board_id):
            print("radiocore demo: the simulated station did not come online", file=sys.stderr)
            return 1
        print(
            f"\nRadioCore demo is running. Open {url} and log in as {DEMO_EMAIL} / "
            f"{DEMO_PASSWORD}.\nThe simulated station '{DEMO_BOARD_NAME}' is online. "
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        if config.tls_cert_file is None:
            print(
                "From another device: a browser lends its microphone only to https:// pages "
                "(and to http://127.0.0.1 on this machine). Listen on the network over HTTPS "
                "with --host 0.0.0.0 --tls-cert-file CERT.pem --tls-key-file KEY.pem (a "
                "certificate for this machine's address and 127.0.0.1), or put "
                "deploy/nginx/radiocore.conf in front (README.md, HTTPS).\n",
                flush=True,
            )
        ready = {
            "url": url,
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "board_id": board.board_id,
            "board_name": DEMO_BOARD_NAME,
            "rigctld_port": rigctld_port,  # null: no Hamlib here, the rig is simulated in-process
        }
        print(f"{READY_PREFIX} {json.dumps(ready)}", flush=True)
        while not stop.is_set() and agent.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        if agent.returncode is not None and not stop.is_set():
            print("radiocore demo: the station agent exited", file=sys.stderr)
            return 1
        return 0
    finally:
        if agent.returncode is None:
            agent.terminate()
            try:
                await asyncio.wait_for(agent.wait(), 10)
            except TimeoutError:
                agent.kill()
                await agent.wait()


def run_demo(args: argparse.Namespace, config: ServerConfig) -> int:
    from radiocore.logs import configure_logging

    configure_logging(config.log_level)
    return asyncio.run(_demo(args, config))
