"""A real Hamlib `rigctld -m 1 -P RIG` (the dummy rig) for tests, and a raw reader for it.

Tests read the rig's state back with `raw_query`, over a connection of their own, never
through the agent's `RigClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

from bench.tools import free_port, stop_process
from tests.support.components import require

__all__ = ["RigctldServer", "free_port", "raw_query", "require_rigctld"]

RIGCTLD: Final = "/usr/bin/rigctld"
MISSING_REASON: Final = f"rigctld (Hamlib) is not installed at {RIGCTLD} (Debian: libhamlib-utils)"


def require_rigctld() -> None:
    """Fail (or, opted out, skip) the test unless Hamlib's rigctld is installed."""
    require(os.access(RIGCTLD, os.X_OK), MISSING_REASON)


class RigctldServer:
    """`rigctld -m 1 -P RIG -T 127.0.0.1 -t PORT`, restartable on the same port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [RIGCTLD, "-m", "1", "-P", "RIG", "-T", "127.0.0.1", "-t", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # ready in ~0.1 s
            if self.process.poll() is not None:
                raise RuntimeError(f"rigctld exited at start: {self.log.read_text()[-500:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.01)
        raise RuntimeError("rigctld did not listen within 5 s")

    def kill(self) -> None:
        """SIGKILL: the rig disappears without a word."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=5)


async def raw_query(port: int, command: str) -> list[str]:
    """Send one extended-protocol command (`+\\get_freq`) on a fresh connection; return the
    reply's value lines (echo and `RPRT 0` removed). Fails on any other RPRT.

    rigctld 4.5 now and then closes a connection it has just accepted, or answers on it out of
    step (a race in its own connection handling): such a query is asked again, up to three
    times."""
    for _ in range(2):
        try:
            return await _raw_query_once(port, command)
        except ConnectionError as exc:
            if "answered nothing" not in str(exc):
                raise
    return await _raw_query_once(port, command)


async def _raw_query_once(port: int, command: str) -> list[str]:
    async with asyncio.timeout(2.0):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"+\\{command}\n".encode())
            await writer.drain()
            lines: list[str] = []
            while True:
                try:
                    line = (await reader.readline()).decode().rstrip("\n")
                except ConnectionResetError:
                    line = ""
                if not line:
                    raise ConnectionError(f"rigctld answered nothing to {command!r}")
                if line.startswith("RPRT "):
                    if not lines or not lines[0].startswith(command.split()[0] + ":"):
                        raise ConnectionError(f"rigctld answered nothing to {command!r}")
                    if line != "RPRT 0":
                        raise RuntimeError(f"{command!r} answered {line}")
                    return lines[1:]  # without the echo line
                lines.append(line)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def rig_freq(port: int) -> int:
    (line,) = await raw_query(port, "get_freq")
    return int(line.removeprefix("Frequency: "))


async def rig_mode(port: int) -> str:
    return (await raw_query(port, "get_mode"))[0].removeprefix("Mode: ")


async def rig_ptt(port: int) -> bool:
    (line,) = await raw_query(port, "get_ptt")
    return line != "PTT: 0"


async def rig_power(port: int) -> float:
    (line,) = await raw_query(port, "get_level RFPOWER")
    return float(line)


async def wait_rig_ptt(port: int, state: bool, within: float) -> float:
    """Seconds until rigctld reports PTT `state` (polling every 10 ms); fails after `within`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < within:
        with contextlib.suppress(OSError, ConnectionError):
            if await rig_ptt(port) is state:
                return loop.time() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"rigctld did not report PTT {state} within {within} s")


class CuttableLink:
    """A TCP relay in front of rigctld that a test can cut (every connection closed, new ones
    refused) and restore on the same port: the link to the rig fails while the rig runs on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        for task in (
            asyncio.create_task(pump(reader, up_writer)),
            asyncio.create_task(pump(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
