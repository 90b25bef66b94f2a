"""A real Redis for tests: `redis-server` on 127.0.0.1 and a random port, no persistence
(`--save '' --appendonly no`), its working dir and log in a temp dir; `stop()` removes it all.

A missing or unstartable server fails the test (`tests.support.components.missing`; skipped
only with TESTS_REQUIRE_COMPONENTS=0).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bench.tools import free_port, stop_process
from tests.support.components import missing

__all__ = ["REDIS_SERVER", "RedisServer", "require_redis", "start_redis"]

REDIS_SERVER: Final = "/usr/bin/redis-server"
MISSING_REASON: Final = f"Redis is not installed at {REDIS_SERVER} (Debian: redis-server)"
#: Ready in < 0.1 s on the lab machines (LAB_NOTES.md); this is the most a start may take.
_START_TIMEOUT_S: Final = 10.0


def require_redis() -> None:
    """Fail (or, opted out, skip) the test unless redis-server is installed."""
    if not os.access(REDIS_SERVER, os.X_OK):
        missing(MISSING_REASON)


def _ping(port: int) -> bool:
    """Whether a Redis on `port` answers PING (RESP inline command)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` in a temp dir, listening on 127.0.0.1:`port`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="radiocore-redis-"))
        self.log = self.root / "redis.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        last = "redis-server did not start"
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            last = self._run()
            if not last:
                return
        raise RuntimeError(last)

    def restart(self) -> None:
        """Start it again on the same port (after `kill()`): clients told its URL come back."""
        self.root.mkdir(parents=True, exist_ok=True)
        failed = self._run()
        if failed:
            raise RuntimeError(failed)

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to its clients; `restart()` brings it back."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def _run(self) -> str:
        """Start `redis-server` on `self.port`; "" once it answers PING, else why not."""
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.root),
                "--logfile", str(self.log),
                "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            if _ping(self.port):
                return ""
            time.sleep(0.02)
        stop_process(self.process, timeout_s=5)
        log = self.log.read_text(errors="replace")[-1000:] if self.log.exists() else ""
        return f"redis-server did not answer on port {self.port}: {log}"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                stop_process(self.process, timeout_s=5)
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis() -> RedisServer:
    """A started server, or the test fails (skips, opted out) saying why."""
    require_redis()
    server = RedisServer()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        missing(f"Redis could not start: {exc}")
    return server


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """`start_redis()`, stopped (and its directory removed) afterwards."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
