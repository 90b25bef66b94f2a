"""A real coturn (`turnserver`) for tests: loopback only, random ports, a random secret,
use-auth-secret (the credentials RadioCore issues), its log kept to assert on allocations."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

from bench.tools import free_port, stop_process
from tests.support.components import require

TURNSERVER: Final = "/usr/bin/turnserver"
MISSING_REASON: Final = f"coturn is not installed at {TURNSERVER} (Debian: coturn)"
REALM: Final = "radiocore"


def require_coturn() -> None:
    require(os.access(TURNSERVER, os.X_OK), MISSING_REASON)


class Coturn:
    """`turnserver` on 127.0.0.1 with a fresh secret; `url()` for RadioCore's [turn] urls."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.log = workdir / "turnserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, transport: str = "udp") -> str:
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def start(self) -> None:
        config = self.workdir / "turnserver.conf"
        config.write_text("")  # every setting on the command line: nothing from /etc
        relay_low = min(free_port(), 64000)  # relayed ports: a range near a free one
        command = [
            TURNSERVER, "-c", str(config), "-n", "-L", "127.0.0.1", "-E", "127.0.0.1",
            "-p", str(self.port), "--use-auth-secret", "--static-auth-secret", self.secret,
            "--realm", REALM, "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
            "--verbose", "--simple-log", "--log-file", str(self.log),
            "--min-port", str(relay_low), "--max-port", str(relay_low + 400),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        for _ in range(100):  # bounded: 5 s; coturn listens on TCP and UDP at once
            if self.process.poll() is not None:
                raise RuntimeError(f"turnserver exited at start: {self.log_text()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("turnserver did not listen within 5 s")

    def log_text(self) -> str:
        # --simple-log writes the named file; some builds add a date to the name
        candidates = [self.log, *sorted(self.workdir.glob("turnserver*.log"))]
        return "\n".join(p.read_text(errors="replace") for p in candidates if p.exists())

    def allocations_of(self, identity: str) -> int:
        """How many allocations coturn granted to credentials issued for `identity`."""
        return sum(
            1
            for line in self.log_text().splitlines()
            if f":{identity}>" in line and "ALLOCATE processed, success" in line
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=5)
