"""A real coturn (`turnserver`) on loopback for benchmarks and tests: a free port, a fresh
secret, use-auth-secret (the credentials RadioCore issues), loopback peers allowed, no CLI, TLS
or DTLS, its log kept to read allocations from.

The secret goes in a 0600 configuration file, never on the command line (`ps` shows that);
every other setting is on the command line. Nothing is read from or written to /etc, /var/run or
/var/lib: its pid file and its (unused) user database live in the work directory too.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

from bench.tools import free_port, stop_process

TURNSERVER: Final = "/usr/bin/turnserver"
REALM: Final = "radiocore"
#: Relay ports in the range (one per allocation): room for a few hundred listeners.
RELAY_PORTS: Final = 400
#: How long coturn may take to listen (it opens TCP and UDP at once).
START_TIMEOUT_S: Final = 5.0


class Coturn:
    """`turnserver` on `address`:`port` (loopback and a free port by default) with a fresh
    `secret`; `url()` for RadioCore's [turn] urls; `pid` for measuring it. Loopback peers are
    allowed only when it listens on loopback."""

    def __init__(
        self,
        workdir: Path,
        executable: str = TURNSERVER,
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.executable = executable
        self.address = address
        self.port = port if port is not None else free_port()
        self.secret = secrets.token_urlsafe(32)
        self.log = workdir / "turnserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("turnserver is not started")
        return self.process.pid

    def url(self, transport: str = "udp") -> str:
        return f"turn:{self.address}:{self.port}?transport={transport}"

    def start(self) -> None:
        """Start it and return once it accepts connections (bounded: `START_TIMEOUT_S`)."""
        config = self.workdir / "turnserver.conf"
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"use-auth-secret\nstatic-auth-secret={self.secret}\n")
        relay_low = min(free_port(), 65535 - RELAY_PORTS)  # relay ports: a range near a free one
        # no -n: that would ignore the file, and the secret with it
        command = [
            self.executable, "-c", str(config), "-L", self.address, "-E", self.address,
            "-p", str(self.port), "--realm", REALM, "--no-cli", "--no-tls", "--no-dtls",
            "--verbose", "--simple-log", "--log-file", str(self.log),
            "--pidfile", str(self.workdir / "turnserver.pid"),
            "--userdb", str(self.workdir / "turndb"),
            "--min-port", str(relay_low), "--max-port", str(relay_low + RELAY_PORTS),
        ]  # fmt: skip
        if self.address.startswith("127."):
            command.append("--allow-loopback-peers")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        for _ in range(int(START_TIMEOUT_S / 0.05)):  # bounded in count and in time
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"turnserver exited at start ({self.process.returncode}): "
                    f"{self.log_text()[-800:]}"
                )
            try:
                with socket.create_connection((self.address, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"turnserver did not listen within {START_TIMEOUT_S:g} s")

    def log_text(self) -> str:
        # --simple-log writes the named file; some builds add a date to the name
        candidates = [self.log, *sorted(self.workdir.glob("turnserver*.log"))]
        return "\n".join(
            p.read_text(errors="replace") for p in dict.fromkeys(candidates) if p.exists()
        )

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
