"""Processes and network namespaces for the checks that build a network out of namespaces
(the network-cut check, the NAT matrix): children that die with their driver, commands run in
another process's network namespace, and bounded waits for what those children serve.

Every child is in its own process group, gets SIGTERM when its driver dies (even by SIGKILL),
and is stopped by `stop()` whatever state it is in. Every wait here is bounded in time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any, Final

from bench.rig_reader import RigReader

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PR_SET_PDEATHSIG: Final = 1
RIG_POLL_S: Final = 0.005
#: How long a child's start waits for this script's other threads to end (see `Child`).
THREADS_END_S: Final = 5.0


class CheckFailedError(Exception):
    """A step did not complete in its time bound; the message says which."""


# -- processes ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child: own process group, and SIGTERM when this script dies (even by SIGKILL)."""
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Child:
    """A process this script started, its output in a log file (stdout kept if piped)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        piped: bool = False,
    ) -> None:
        # preexec_fn is unsafe once threads exist: every child starts before any thread. One
        # that is ending is waited for (aiosqlite's, after seeding the store, lingers up to
        # 0.1 s after its connection closed, longer on a loaded machine).
        for _ in range(int(THREADS_END_S / 0.01)):  # bounded
            if threading.active_count() == 1:
                break
            time.sleep(0.01)
        else:
            threads = ", ".join(t.name for t in threading.enumerate())
            raise CheckFailedError(
                f"{name} started after a thread ({threads}): fix the script's order"
            )
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else out,
                stderr=out,
                preexec_fn=_die_with_parent,
            )

    def tail(self, count: int = 25) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[-count:]
        except OSError as exc:
            return [f"unreadable: {exc}"]

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL whatever is left after 5 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
            os.killpg(self.process.pid, signal.SIGKILL)


class OperatorChild(Child):
    """An operator process (this file's `operator` role), driven by JSON lines on its stdin;
    it reports JSON events on its stdout, read here by a thread into `events`."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        super().__init__(name, command, log, piped=True)
        self.events: list[dict[str, Any]] = []
        self.other_output: collections.deque[str] = collections.deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)

    def start_reading(self) -> None:
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None  # Popen(stdout=PIPE)
        for raw in stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                event = json.loads(line)
            except ValueError:
                self.other_output.append(line)
                continue
            if isinstance(event, dict):
                self.events.append(event)  # list.append is atomic: read from the main thread

    def send(self, command: str, **fields: Any) -> float:
        """Write one command; returns time.monotonic() when it was written."""
        stdin = self.process.stdin
        assert stdin is not None  # Popen(stdin=PIPE)
        stdin.write((json.dumps({"cmd": command, **fields}) + "\n").encode())
        stdin.flush()
        return time.monotonic()

    def find(self, event: str, **fields: Any) -> dict[str, Any] | None:
        for seen in list(self.events):
            if seen.get("event") == event and all(seen.get(k) == v for k, v in fields.items()):
                return seen
        return None

    def tail(self, count: int = 25) -> list[str]:
        return [*super().tail(count), *self.other_output]

    def keepalive_times(self) -> list[float]:
        """time.monotonic() of each keep-alive it sent (the clock is the machine's)."""
        return [float(e["t"]) for e in list(self.events) if e.get("event") == "keepalive"]

    def messages(self, kind: str) -> list[dict[str, Any]]:
        return [
            e["data"]
            for e in list(self.events)
            if e.get("event") == "message" and e["data"].get("type") == kind
        ]

    def wait(self, event: str, within: float, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + within
        for _ in range(int(within / 0.02) + 1):
            found = self.find(event, **fields)
            if found is not None:
                return found
            failed = self.find("failed")
            if failed is not None:
                raise CheckFailedError(f"{self.name} failed: {failed.get('why')}")
            if self.process.poll() is not None:
                raise CheckFailedError(f"{self.name} exited ({self.process.returncode})")
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        raise CheckFailedError(f"{self.name}: no `{event}` {fields or ''} within {within} s")

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send("stop")
            if self.process.stdin is not None:
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=3)
        super().stop()
        if self._reader.is_alive():
            self._reader.join(timeout=2)


class Adopted(Child):
    """A process started by someone else's code (`bench.coturn`), reported and stopped with the
    children: `stop` is its owner's."""

    def __init__(
        self, name: str, process: subprocess.Popen[bytes], log: Path, stop: Callable[[], None]
    ) -> None:
        self.name = name
        self.process = process
        self.log = log
        self._stop = stop

    def stop(self) -> None:
        self._stop()


def run_command(command: list[str], stdin: str | None = None) -> str:
    """Run a short command (10 s bound); its stdout, or `CheckFailedError` with its stderr."""
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        raise CheckFailedError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


def in_namespace_of(pid: int, command: list[str]) -> list[str]:
    """`command` to run in the network namespace of process `pid`."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", *command]


def login(url: str, email: str, password: str) -> str:
    request = urllib.request.Request(
        url + "api/auth/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["token"])


def wait_listening(port: int, child: Child, within: float) -> None:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.05) + 1):
        if child.process.poll() is not None:
            raise CheckFailedError(f"{child.name} exited at start: {child.tail(10)}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise CheckFailedError(f"{child.name} did not listen on {port} within {within} s")


def wait_health(url: str, child: Child, within: float) -> None:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.1) + 1):
        if child.process.poll() is not None:
            raise CheckFailedError(f"{child.name} exited at start: {child.tail(10)}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url + "health", timeout=1).close()
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise CheckFailedError(f"{child.name} did not answer {url}health within {within} s")


def wait_rig(rig: RigReader, keyed: bool, within: float) -> float | None:
    """time.monotonic() when rigctld first reports PTT `keyed`, or None after `within` s."""
    deadline = time.monotonic() + within
    for _ in range(int(within / RIG_POLL_S) + 1):
        if rig.ptt() is keyed:
            return time.monotonic()
        if time.monotonic() > deadline:
            break
        time.sleep(RIG_POLL_S)
    return None


# -- a check script's driver and its children's roles -------------------------------------------

#: What a driver does once it has its result dict, its list of children and its data directory.
DriverBody = Callable[[dict[str, Any], list[Child], Path], None]


def run_driver(
    name: str, body: DriverBody, result: dict[str, Any], bound_s: int, keep_data: bool
) -> int:
    """Run a check's `body` within `bound_s` (SIGALRM), in a fresh data directory; whatever
    stops it is reported in `result` (`ok`, `failure`, the children's log tails), every child is
    stopped, and `result` is printed as one JSON line. 0 when the body ran to its end."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise CheckFailedError(f"the check took over {bound_s} s")

    result.setdefault("ok", False)
    result.setdefault("failure", None)
    children: list[Child] = []
    data_dir = Path(tempfile.mkdtemp(prefix=f"radiocore-{name}-"))
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(bound_s)
    started = time.monotonic()
    try:
        body(result, children, data_dir)
        result["ok"] = True
    except Exception as exc:  # whatever stopped it is reported, with the logs, as JSON
        result["failure"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
    finally:
        signal.alarm(0)
        if not result["ok"]:
            result["log_tails"] = {child.name: child.tail() for child in children}
        for child in reversed(children):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                child.stop()
        # how each ended after SIGTERM (or an operator's `stop`): told, not judged here
        result["exit_codes"] = {child.name: child.process.returncode for child in children}
        if keep_data:
            result["data_dir"] = str(data_dir)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    result["run_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


def emit(event: str, **fields: Any) -> None:
    """In a child role: one JSON event on stdout, stamped with time.monotonic()."""
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def read_commands(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[dict[str, Any]]) -> None:
    """In a child role's thread: stdin's JSON lines into `queue`; EOF (the driver is gone) is a
    `stop`."""
    for line in sys.stdin:
        with contextlib.suppress(ValueError):
            loop.call_soon_threadsafe(queue.put_nowait, json.loads(line))
    loop.call_soon_threadsafe(queue.put_nowait, {"cmd": "stop"})


def run_role(role: Coroutine[Any, Any, None], bound_s: float) -> int:
    """Run a child role within `bound_s`; a failure is emitted as a `failed` event (the driver
    shows it in its report) and gives exit status 1."""
    try:
        asyncio.run(asyncio.wait_for(role, bound_s))
    except (TimeoutError, OSError, ConnectionError) as exc:
        emit("failed", why=f"{type(exc).__name__}: {exc}")
        return 1
    except Exception as exc:
        emit("failed", why=f"{type(exc).__name__}: {exc}")
        raise
    return 0


def report_link(pc: Any, channel: Any) -> None:
    """In an operator role: emit the peer connection's states and the channel's closing."""
    channel.on("close", lambda: emit("channel_closed"))
    pc.on("connectionstatechange", lambda: emit("pc_state", state=pc.connectionState))


async def offer_until_online(sio: Any, pc: Any, board_id: str, attempts: int) -> None:
    """In an operator role: make `pc`'s offer and send it, again every 0.2 s (at most
    `attempts` times) while the station is not online yet; apply the answer. `CheckFailedError`
    with the last refusal when none came."""
    from aiortc import RTCSessionDescription

    await pc.setLocalDescription(await pc.createOffer())
    reply: dict[str, Any] = {}
    for _ in range(attempts):
        reply = await sio.call(
            "offer",
            {"board_id": board_id, "type": "offer", "sdp": pc.localDescription.sdp},
            namespace="/operator",
            timeout=30,
        )
        if reply.get("ok"):
            break
        await asyncio.sleep(0.2)
    if not reply.get("ok"):
        raise CheckFailedError(f"offer: {reply}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))


async def start_role(
    go_wait_s: float, queue_size: int
) -> tuple[asyncio.Queue[Any], dict[str, Any]]:
    """In a child role: say `started` (with the pid), read commands from stdin in a thread,
    and wait for the driver's first one (`go`, carrying what is not for a command line);
    (the command queue, that first command)."""
    emit("started", pid=os.getpid())
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
    threading.Thread(target=read_commands, args=(loop, commands), daemon=True).start()
    first: dict[str, Any] = await asyncio.wait_for(commands.get(), go_wait_s)
    return commands, first


async def serve_ptt_commands(
    commands: asyncio.Queue[Any],
    channel: Any,
    bound_s: float,
    other: Callable[[str], None] | None = None,
) -> None:
    """In an operator role: `key` (PTT on, then a keep-alive every 250 ms, each emitted as
    `keepalive`), `unkey` (PTT off) and any `other` command, until `stop` (or `bound_s`)."""
    import radiocore_protocol as protocol

    async def keep() -> None:
        for n in range(int(bound_s / protocol.KEEPALIVE_INTERVAL_S)):
            await asyncio.sleep(protocol.KEEPALIVE_INTERVAL_S)
            channel.send(protocol.encode(protocol.Keepalive()).decode())
            emit("keepalive", n=n + 1)

    keepalive: asyncio.Task[None] | None = None
    try:
        for _ in range(1000):  # commands: a handful per run
            command = str((await commands.get()).get("cmd"))
            if command == "stop":
                break
            if command == "key":
                channel.send(protocol.encode(protocol.Ptt(state=True)).decode())
                if keepalive is None:
                    keepalive = asyncio.get_running_loop().create_task(keep())
            elif command == "unkey":
                if keepalive is not None:
                    keepalive.cancel()
                    keepalive = None
                channel.send(protocol.encode(protocol.Ptt(state=False)).decode())
            elif other is not None:
                other(command)
            emit("sent", command=command)
    finally:
        if keepalive is not None:
            keepalive.cancel()


async def close_operator(pc: Any, sio: Any) -> None:
    """In an operator role: close the peer connection and the socket, each within 5 s."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pc.close(), 5)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sio.disconnect(), 5)
