"""`RigReader`: a rig's state read straight from rigctld, on a connection of its own.

Benchmarks and tests judge the station by what the rig itself says, never by the server's or
the agent's report: this reader uses rigctld's default protocol (one line per answer).
"""

from __future__ import annotations

import socket
import time
from typing import Any

#: How often `wait_until` asks rigctld.
POLL_S = 0.002


class RigReader:
    """Reads the dummy rig's state directly from rigctld (default protocol, one line each)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._connect()

    @classmethod
    def connect(cls, port: int, seconds: float = 5.0) -> RigReader:
        """A reader of the rigctld on `port`, waiting up to `seconds` for it to listen."""
        for _ in range(max(1, int(seconds / 0.05))):
            try:
                return cls(port)
            except OSError:
                time.sleep(0.05)
        return cls(port)  # the last try raises what is wrong

    def _connect(self) -> None:
        self._sock = socket.create_connection(("127.0.0.1", self._port), timeout=2)
        self._file = self._sock.makefile("rw", newline="\n")

    def _ask(self, command: str) -> str:
        for attempt in range(2):
            try:
                self._file.write(command + "\n")
                self._file.flush()
                line = self._file.readline()
            except OSError:
                line = ""
            if line:
                return line.strip()
            # rigctld 4.5 sometimes closes a connection it has just accepted: once more, anew
            self._sock.close()
            if attempt == 0:
                self._connect()
        raise ConnectionError(f"rigctld on port {self._port} closed the connection")

    def ptt(self) -> bool:
        return self._ask("t") == "1"

    def freq(self) -> int:
        return int(float(self._ask("f")))

    def set_freq(self, hz: int) -> None:
        """Tune the rig as its own front panel would (someone turning the VFO knob)."""
        answer = self._ask(f"F {hz}")
        if answer != "RPRT 0":
            raise ConnectionError(f"rigctld refused F {hz}: {answer}")

    def mode(self) -> str:
        mode = self._ask("m")
        self._file.readline()  # the passband
        return mode

    def wait_until(self, predicate: Any, seconds: float = 10.0) -> float | None:
        """time.time() when `predicate(self)` first held, or None after `seconds`."""
        for _ in range(int(seconds / POLL_S)):
            if predicate(self):
                return time.time()
            time.sleep(POLL_S)
        return None

    def close(self) -> None:
        self._sock.close()
