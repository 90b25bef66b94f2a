"""A real PostgreSQL 15 for benchmarks and tests: initdb in a temp dir, a random loopback port,
its Unix socket in that dir, fsync off; a fresh database per use (`fresh_database`).

initdb refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user
(`runuser`), and the directory belongs to it. What cannot start raises
`PostgresUnavailableError` saying why; tests/support/postgres.py turns that into a failed (or,
opted out, skipped) test, the benchmarks into an error message.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import asyncpg  # type: ignore[import-untyped]

from bench.tools import free_port

__all__ = [
    "MISSING_REASON",
    "PG_BIN",
    "TEMPLATE",
    "PostgresServer",
    "PostgresUnavailableError",
    "create_template",
    "fresh_database",
    "start_postgres",
]

PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
MISSING_REASON: Final = (
    f"PostgreSQL 15 server binaries are not installed in {PG_BIN} (Debian: postgresql-15)"
)
#: The database every fresh database is copied from (migrations already applied, when asked).
TEMPLATE: Final = "radiocore_template"
_SUPERUSER: Final = "postgres"
#: Tries at a free port (one can be taken between the probe and the bind).
_PORT_ATTEMPTS: Final = 3


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL cannot run here (not installed, no `postgres` user, or it did not start)."""


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:`port` and on a Unix socket
    in that dir; `stop()` removes it all. `PostgresUnavailableError` if, as root, there is no
    `postgres` user to run it as."""

    def __init__(self, *, durable_commits: bool = False) -> None:
        """`durable_commits`: a commit survives PostgreSQL being killed (`synchronous_commit`
        on, PostgreSQL's default), for tests that kill it; else off (faster: a commit may be
        lost if PostgreSQL dies within ~0.6 s of it). Either way fsync is off: the machine is
        not expected to crash."""
        self.durable_commits = durable_commits
        self.root = Path(tempfile.mkdtemp(prefix="radiocore-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "postgres.log"
        self.port = 0
        self.template_ready = False
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(_SUPERUSER)
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailableError(
                    "there is no `postgres` user to run PostgreSQL as (initdb refuses root)"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", _SUPERUSER, "--"]

    def url(self, database: str = "postgres") -> str:
        """A `database_url` for `database`, over TCP on loopback."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """The same database through the Unix socket (libpq's `host=` query form)."""
        return f"postgresql://{_SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    @property
    def postmaster_pid(self) -> int | None:
        """The server's main process (its backends are its children), while it runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*self._as_user, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip()[-1500:]} {log}"
            )

    def start(self) -> None:
        """initdb, then start it on a free port (bounded: `_PORT_ATTEMPTS` ports, 30 s each);
        `RuntimeError` saying why if it did not start."""
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", _SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        last: RuntimeError | None = None
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port()
            try:
                self._start_on_port()
                return
            except RuntimeError as exc:
                last = exc
        raise last or RuntimeError("PostgreSQL did not start")

    def _start_on_port(self) -> None:
        commit = "on" if self.durable_commits else "off"
        options = (
            f"-c fsync=off -c synchronous_commit={commit} -c full_page_writes=off "
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", "30", "-o", options, "start",
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL to the postmaster, as a crash (its backends exit when they see it gone);
        returns once nothing of it listens. `restart()` brings it back (crash recovery)."""
        pid = self.postmaster_pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # bounded: 15 s, 50 ms steps
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL still listens on {self.port} 15 s after SIGKILL")

    def restart(self) -> None:
        """Start it again on the same port and data (after `kill()`): clients told its URL
        come back. Its backends may take a moment to die after a kill: bounded retries."""
        last: RuntimeError | None = None
        for _ in range(10):  # bounded: 10 tries, each up to pg_ctl's 30 s
            try:
                self._start_on_port()
                return
            except RuntimeError as exc:  # shared memory still held by an exiting backend
                last = exc
                time.sleep(0.5)
        raise last or RuntimeError("PostgreSQL did not start again")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, durable_commits: bool = False) -> PostgresServer:
    """A started server (see `PostgresServer`); `PostgresUnavailableError` saying why not."""
    if not os.access(PG_BIN / "initdb", os.X_OK) or not os.access(PG_BIN / "pg_ctl", os.X_OK):
        raise PostgresUnavailableError(MISSING_REASON)
    server = PostgresServer(durable_commits=durable_commits)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        raise PostgresUnavailableError(f"PostgreSQL could not start: {exc}") from None
    return server


async def create_template(server: PostgresServer) -> None:
    """(Re)create `TEMPLATE`, migrated by `PostgresStore`."""
    from signaling.store.postgres import PostgresStore

    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE template0')
    finally:
        await admin.close()
    async with PostgresStore(server.url(TEMPLATE)):
        pass
    server.template_ready = True


@contextlib.asynccontextmanager
async def fresh_database(server: PostgresServer, *, empty: bool = False) -> AsyncIterator[str]:
    """A new database for one use (a test, a benchmark): a copy of `TEMPLATE` (made, migrated,
    on first use), or of `template0` when `empty`; its URL. Dropped afterwards, connections and
    all."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    template = "template0" if empty else TEMPLATE
    if not empty and not server.template_ready:
        await create_template(server)
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    try:
        yield server.url(name)
    finally:
        admin = await asyncpg.connect(server.url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
