"""`radiocore bench api`: the API on a seeded database — admission at join, bookings under
contention, sign-ins — against PostgreSQL (a cluster it starts: bench/postgres.py) or SQLite.

1. Seed N users and M boards through the store's own API (`Store.create_user`, `create_board`,
   `update_board`, `set_grant`, `create_booking`). Every user gets the SAME password hash,
   computed once (one scrypt per user would take minutes and is what the login phase measures).
   Each board: a random owner (some own two), a locator, bands, 40 % public (the first
   `HOT_BOARDS` always), `GRANTS_PER_BOARD` grantees (listen or transmit), and three bookings by
   three other users: one running now, one tomorrow, one yesterday.
2. Admission in-process: `signaling.access.access_to(store, board, user, now)` for a random mix
   of owner, grantee, booked guest (booking running now) and stranger (no tie to the board:
   refused, `not_found` on a private board), each decision checked against the seed.
3. The real server (`radiocore serve` on that database, a subprocess): Socket.IO `join` round
   trips, one at a time and then `JOIN_CLIENTS` in flight at once, the same mix and checks.
   Each join goes out on a connection of the sampled user, opened beforehand (at most
   `JOIN_CONNECTIONS` (board, user) pairs; more joins join them again); tokens are signed here
   with the server's secret, so no scrypt runs in this phase.
4. Bookings under contention: `--clients` concurrent HTTP clients (one user each) book random
   windows (`BOOKING_MINUTES`, on a 15-minute grid over `HOT_HORIZON_DAYS` days) on the
   `HOT_BOARDS` hot boards for `--seconds`: accepted/s, conflicts/s, latency; afterwards every
   board's stored bookings are checked for overlaps, and the hot boards' count against what was
   accepted.
5. Sign-ins: `LOGIN_CLIENTS` concurrent `POST /api/auth/login` for `--seconds`, the server run
   with `[limits] login_per_minute` raised so the per-address limit does not cap it; logins/s,
   the server process's CPU per login (psutil), hence logins per core per second.

Prints one JSON object. The clients run on the same machine as the server and the database:
figures are for comparing on one machine in one run, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import random
import string
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from bench.tools import percentile_ms, start_server, stop_process

if TYPE_CHECKING:
    from signaling.store import Right, Store

#: Every seeded user's password (their one shared hash is computed once).
PASSWORD: Final = "bench-api-password"
GRANTS_PER_BOARD: Final = 3
PUBLIC_SHARE: Final = 0.4
#: Boards the booking clients compete for.
HOT_BOARDS: Final = 3
HOT_HORIZON_DAYS: Final = 7
BOOKING_GRID: Final = timedelta(minutes=15)
BOOKING_MINUTES: Final = (15, 30, 60, 120)
#: Socket.IO clients joining at once; HTTP clients signing in at once.
JOIN_CLIENTS: Final = 4
LOGIN_CLIENTS: Final = 8
#: Calls made before timing starts (connection pools open, caches warm), not counted.
ADMISSION_WARMUP: Final = 200
JOIN_WARMUP: Final = 20
#: Socket.IO connections at most (one per user of the joins: the (board, user) pairs sampled;
#: more joins than pairs join the same pairs again).
JOIN_CONNECTIONS: Final = 200
#: Store calls in flight at once while seeding.
SEED_CONCURRENCY: Final = 32
#: The issue's goal for the admission check at join.
ADMISSION_GOAL_P99_MS: Final = 5.0
#: A sign-in limit that does not cap the benchmark (`[limits] login_per_minute`, max).
BENCH_LOGINS_PER_MINUTE: Final = 1_000_000
REQUEST_TIMEOUT_S: Final = 30.0
KINDS: Final = ("owner", "grantee", "guest", "stranger")

#: What a decision is: (level or None, refusal code or None).
Decision: TypeAlias = tuple[str | None, str | None]


# -- the seed ---------------------------------------------------------------------------------


@dataclass
class SeededBoard:
    id: str
    owner: str
    public: bool
    grants: dict[str, Right]  # user id -> right
    guest: str = ""  # the booking running now
    other_guests: list[str] = field(default_factory=list)  # tomorrow's, yesterday's

    def related(self) -> set[str]:
        return {self.owner, self.guest, *self.grants, *self.other_guests}


@dataclass
class Seed:
    users: list[str]
    emails: dict[str, str]
    callsigns: dict[str, str]
    boards: list[SeededBoard]
    bookings: int
    seconds: float
    hash_ms: float

    @property
    def hot(self) -> list[SeededBoard]:
        return self.boards[:HOT_BOARDS]


def _email(i: int) -> str:
    return f"op{i:06d}@bench.radiocore.local"


def _callsign(i: int) -> str:
    letters = string.ascii_uppercase
    suffix = letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26]
    return f"DL{i // 17576 % 10}{suffix}"


def _locator(rng: random.Random) -> str:
    field_ = "ABCDEFGHIJKLMNOPQR"
    sub = "abcdefghijklmnopqrstuvwx"
    return (
        rng.choice(field_) + rng.choice(field_) + str(rng.randrange(10)) + str(rng.randrange(10))
    ) + (rng.choice(sub) + rng.choice(sub))


async def _bounded(calls: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls with at most `SEED_CONCURRENCY` in flight; their results in order."""
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def seed_database(store: Store, users: int, boards: int, rng: random.Random) -> Seed:
    from signaling.auth import hash_board_secret, hash_password, new_board_secret
    from signaling.store import BANDS, RIGHTS

    started = time.perf_counter()
    hash_start = time.perf_counter()
    password_hash = await asyncio.to_thread(hash_password, PASSWORD)  # once, for everyone
    hash_ms = (time.perf_counter() - hash_start) * 1000
    emails = [_email(i) for i in range(users)]
    callsigns = [_callsign(i) for i in range(users)]
    created = await _bounded(
        partial(store.create_user, emails[i], password_hash, callsigns[i]) for i in range(users)
    )
    user_ids = [user.id for user in created]

    owners = [rng.choice(user_ids) for _ in range(boards)]
    made = await _bounded(
        partial(store.create_board, owner, f"Station {j}", hash_board_secret(new_board_secret()))
        for j, owner in enumerate(owners)
    )
    seeded = [
        SeededBoard(
            id=board.id,
            owner=owners[j],
            public=j < HOT_BOARDS or rng.random() < PUBLIC_SHARE,
            grants={},
        )
        for j, board in enumerate(made)
    ]
    updates = []
    for board in seeded:
        bands = sorted(rng.sample(range(len(BANDS)), rng.randint(1, 4)))
        price = Decimal(rng.choice(("2.50", "5.00", "12.00"))) if rng.random() < 0.3 else None
        updates.append(
            partial(
                store.update_board,
                board.id,
                locator=_locator(rng),
                public=board.public,
                bands=[BANDS[k] for k in bands],
                price_eur=price if board.public else None,
            )
        )
    await _bounded(updates)

    now = datetime.now(UTC)
    grant_calls: list[Callable[[], Awaitable[None]]] = []
    booking_calls: list[Callable[[], Awaitable[Any]]] = []
    for board in seeded:
        others = [u for u in rng.sample(user_ids, 8) if u != board.owner][:6]
        for user in others[:GRANTS_PER_BOARD]:
            board.grants[user] = rng.choice(RIGHTS)
            grant_calls.append(partial(store.set_grant, board.id, user, board.grants[user]))
        board.guest, *board.other_guests = others[GRANTS_PER_BOARD:]
        tomorrow = now + timedelta(days=1, hours=rng.randrange(12))
        yesterday = now - timedelta(days=1, hours=rng.randrange(12))
        windows = (
            (board.guest, now - timedelta(minutes=30), now + timedelta(minutes=90)),
            (board.other_guests[0], tomorrow, tomorrow + timedelta(hours=1)),
            (board.other_guests[1], yesterday, yesterday + timedelta(hours=1)),
        )
        booking_calls.extend(
            partial(store.create_booking, board.id, guest, start, end)
            for guest, start, end in windows
        )
    await _bounded(grant_calls)
    await _bounded(booking_calls)
    return Seed(
        users=user_ids,
        emails=dict(zip(user_ids, emails, strict=True)),
        callsigns=dict(zip(user_ids, callsigns, strict=True)),
        boards=seeded,
        bookings=len(booking_calls),
        seconds=time.perf_counter() - started,
        hash_ms=hash_ms,
    )


# -- the admission mix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    board_id: str
    user_id: str
    expected: Decision


def samples(seed: Seed, count: int, rng: random.Random) -> list[Sample]:
    """`count` (board, user) pairs, the four kinds in turn, boards at random."""
    chosen = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        board = rng.choice(seed.boards)
        if kind == "owner":
            chosen.append(Sample(kind, board.id, board.owner, ("owner", None)))
        elif kind == "grantee":
            user = rng.choice(sorted(board.grants))
            chosen.append(Sample(kind, board.id, user, (board.grants[user], None)))
        elif kind == "guest":
            chosen.append(Sample(kind, board.id, board.guest, ("transmit", None)))
        else:
            related = board.related()
            user = rng.choice(seed.users)
            for _ in range(100):  # bounded: a user with no tie to the board
                if user not in related:
                    break
                user = rng.choice(seed.users)
            code = "forbidden" if board.public else "not_found"
            chosen.append(Sample(kind, board.id, user, (None, code)))
    rng.shuffle(chosen)
    return chosen


def _tally(results: list[tuple[Sample, Decision]]) -> dict[str, dict[str, int]]:
    """Per kind: calls, and how many answered what the seed says."""
    tally: dict[str, dict[str, int]] = {kind: {"calls": 0, "as_expected": 0} for kind in KINDS}
    for sample, got in results:
        tally[sample.kind]["calls"] += 1
        tally[sample.kind]["as_expected"] += got == sample.expected
    return tally


def _unexpected(results: list[tuple[Sample, Decision]]) -> list[dict[str, Any]]:
    """The first few answers that differ from the seed (for the reader; normally none)."""
    return [
        {"kind": s.kind, "expected": list(s.expected), "got": list(got)}
        for s, got in results
        if got != s.expected
    ][:5]


async def admission_in_process(
    store: Store, chosen: list[Sample], warmup: list[Sample]
) -> dict[str, Any]:
    from signaling.access import access_to

    now = datetime.now(UTC)
    for sample in warmup:
        await access_to(store, sample.board_id, sample.user_id, now)
    times: list[float] = []
    results: list[tuple[Sample, Decision]] = []
    for sample in chosen:
        start = time.perf_counter()
        access = await access_to(store, sample.board_id, sample.user_id, now)
        times.append(time.perf_counter() - start)
        refusal = None if access.may_listen else access.refusal().code.value
        results.append((sample, (access.level, refusal)))
    return {
        "calls": len(times),
        "warmup_calls": len(warmup),
        "ms_p50": percentile_ms(times, 50),
        "ms_p99": percentile_ms(times, 99),
        "ms_max": round(max(times) * 1000, 2),
        "goal_ms_p99": ADMISSION_GOAL_P99_MS,
        "decisions": _tally(results),
        "unexpected": _unexpected(results),
    }


# -- through the server -----------------------------------------------------------------------


def _join_decision(ack: Any) -> Decision:
    if not isinstance(ack, dict):
        return (None, f"bad ack: {str(ack)[:80]}")
    if ack.get("ok"):
        if ack.get("is_owner"):
            return ("owner", None)
        return ("transmit" if ack.get("can_transmit") else "listen", None)
    error = ack.get("error") or {}
    return (None, str(error.get("code")))


async def joins(
    url: str, tokens: Callable[[str], str], chosen: list[Sample], warmup: list[Sample]
) -> dict[str, Any]:
    """One Socket.IO connection per user of the samples (opened first, `JOIN_CLIENTS` at a
    time, their connect times kept apart), then every sample's `join` on its user's connection:
    one at a time, then again `JOIN_CLIENTS` in flight at once."""
    import socketio

    connect_times: list[float] = []
    join_times: list[float] = []
    results: list[tuple[Sample, Decision]] = []
    connections: dict[str, Any] = {}

    async def connect(user_id: str) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        start = time.perf_counter()
        await sio.connect(
            url,
            namespaces=["/operator"],
            auth={"token": tokens(user_id)},
            transports=["websocket"],
            wait_timeout=REQUEST_TIMEOUT_S,
        )
        connect_times.append(time.perf_counter() - start)
        connections[user_id] = sio

    async def client(queue: collections.deque[Sample], times: list[float] | None) -> None:
        while queue:
            sample = queue.popleft()
            start = time.perf_counter()
            ack = await connections[sample.user_id].call(
                "join",
                {"board_id": sample.board_id},
                namespace="/operator",
                timeout=REQUEST_TIMEOUT_S,
            )
            if times is not None:
                times.append(time.perf_counter() - start)
                results.append((sample, _join_decision(ack)))

    users = list(dict.fromkeys(s.user_id for s in [*warmup, *chosen]))
    one_times: list[float] = []
    try:
        for i in range(0, len(users), JOIN_CLIENTS):
            await asyncio.gather(*(connect(user) for user in users[i : i + JOIN_CLIENTS]))
        await client(collections.deque(warmup), None)
        # one join at a time: the round trip alone; then JOIN_CLIENTS at once
        await client(collections.deque(chosen), one_times)
        queue = collections.deque(chosen)
        await asyncio.gather(*(client(queue, join_times) for _ in range(JOIN_CLIENTS)))
    finally:
        for sio in connections.values():
            await sio.disconnect()
    return {
        "in_flight": JOIN_CLIENTS,
        "connections": len(connections),
        "calls": len(join_times),
        "warmup_calls": len(warmup),
        "ms_p50": percentile_ms(join_times, 50),
        "ms_p99": percentile_ms(join_times, 99),
        "ms_max": round(max(join_times) * 1000, 2) if join_times else None,
        "one_in_flight": {
            "calls": len(one_times),
            "ms_p50": percentile_ms(one_times, 50),
            "ms_p99": percentile_ms(one_times, 99),
            "ms_max": round(max(one_times) * 1000, 2) if one_times else None,
        },
        "connect_ms_p50": percentile_ms(connect_times, 50),
        "connect_ms_p99": percentile_ms(connect_times, 99),
        # both passes' answers
        "decisions": _tally(results),
        "unexpected": _unexpected(results),
    }


class CpuMeter:
    """CPU seconds of the server process and of the database's processes (PostgreSQL: the
    postmaster and its backends; SQLite runs inside the server) between `start` and `stop`."""

    def __init__(self, server_pid: int, database_pid: int | None) -> None:
        import psutil

        self._server = psutil.Process(server_pid)
        self._database = psutil.Process(database_pid) if database_pid is not None else None
        self._before: tuple[float, dict[int, float]] = (0.0, {})
        self._started = 0.0

    def _database_cpu(self) -> dict[int, float]:
        import psutil

        if self._database is None:
            return {}
        cpu: dict[int, float] = {}
        for process in [self._database, *self._database.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                cpu[process.pid] = float(times.user + times.system)
        return cpu

    def _server_cpu(self) -> float:
        times = self._server.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._before = (self._server_cpu(), self._database_cpu())
        self._started = time.monotonic()

    def stop(self) -> tuple[float, float | None, float]:
        """(server CPU s, database CPU s or None, wall s) since `start`."""
        server = self._server_cpu() - self._before[0]
        database = None
        if self._database is not None:
            before = self._before[1]
            database = sum(s - before.get(pid, 0.0) for pid, s in self._database_cpu().items())
        return server, database, time.monotonic() - self._started


def _pct(cpu_s: float | None, wall_s: float) -> float | None:
    return None if cpu_s is None else round(100.0 * cpu_s / wall_s, 1)


async def bookings_under_contention(
    url: str,
    tokens: Callable[[str], str],
    seed: Seed,
    clients: int,
    seconds: float,
    meter: CpuMeter,
    rng: random.Random,
) -> dict[str, Any]:
    import aiohttp

    hot = [board.id for board in seed.hot]
    base = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    slots = int(timedelta(days=HOT_HORIZON_DAYS) / BOOKING_GRID)
    bookers = rng.sample(seed.users, min(clients, len(seed.users)))
    statuses: collections.Counter[int] = collections.Counter()
    times: list[float] = []
    accepted: collections.Counter[str] = collections.Counter()
    booked_minutes = 0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        deadline = time.monotonic() + seconds

        async def client(user_id: str) -> None:
            nonlocal booked_minutes
            headers = {"Authorization": f"Bearer {tokens(user_id)}"}
            while time.monotonic() < deadline:
                board_id = rng.choice(hot)
                start = base + BOOKING_GRID * rng.randrange(slots)
                minutes = rng.choice(BOOKING_MINUTES)
                body = {"start": start.isoformat(), "duration_minutes": minutes}
                began = time.perf_counter()
                async with http.post(
                    f"{url}api/stations/{board_id}/book", json=body, headers=headers
                ) as response:
                    await response.read()
                    status = response.status
                times.append(time.perf_counter() - began)
                statuses[status] += 1
                if status == 201:
                    accepted[board_id] += 1
                    booked_minutes += minutes

        meter.start()
        await asyncio.gather(*(client(user) for user in bookers))
        server_s, database_s, wall_s = meter.stop()
    return {
        "clients": len(bookers),
        "hot_boards": len(hot),
        "horizon_days": HOT_HORIZON_DAYS,
        "durations_minutes": list(BOOKING_MINUTES),
        "seconds": round(wall_s, 2),
        "requests": len(times),
        "accepted": statuses[201],
        "conflicts": statuses[409],
        # how full the hot boards' calendars got (what makes conflicts likely)
        "hot_calendar_booked_pct": round(
            100.0 * booked_minutes / (len(hot) * HOT_HORIZON_DAYS * 24 * 60), 1
        ),
        "other_statuses": {str(k): v for k, v in sorted(statuses.items()) if k not in (201, 409)},
        "accepted_per_s": round(statuses[201] / wall_s, 1),
        "conflicts_per_s": round(statuses[409] / wall_s, 1),
        "requests_per_s": round(len(times) / wall_s, 1),
        "ms_p50": percentile_ms(times, 50),
        "ms_p99": percentile_ms(times, 99),
        "server_cpu_pct": _pct(server_s, wall_s),
        "database_cpu_pct": _pct(database_s, wall_s),
        "_accepted_by_board": dict(accepted),
    }


async def logins(
    url: str, seed: Seed, seconds: float, meter: CpuMeter, rng: random.Random
) -> dict[str, Any]:
    import aiohttp

    statuses: collections.Counter[int] = collections.Counter()
    times: list[float] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=LOGIN_CLIENTS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        deadline = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < deadline:
                email = seed.emails[rng.choice(seed.users)]
                began = time.perf_counter()
                async with http.post(
                    f"{url}api/auth/login", json={"email": email, "password": PASSWORD}
                ) as response:
                    await response.read()
                    status = response.status
                times.append(time.perf_counter() - began)
                statuses[status] += 1

        meter.start()
        await asyncio.gather(*(client() for _ in range(LOGIN_CLIENTS)))
        server_s, database_s, wall_s = meter.stop()
    ok = statuses[200]
    return {
        "clients": LOGIN_CLIENTS,
        "seconds": round(wall_s, 2),
        "logins": ok,
        "other_statuses": {str(k): v for k, v in sorted(statuses.items()) if k != 200},
        "logins_per_s": round(ok / wall_s, 1),
        "ms_p50": percentile_ms(times, 50),
        "ms_p99": percentile_ms(times, 99),
        "server_cpu_pct": _pct(server_s, wall_s),
        "database_cpu_pct": _pct(database_s, wall_s),
        "server_cpu_ms_per_login": round(server_s / ok * 1000, 2) if ok else None,
        "logins_per_core_per_s": round(ok / server_s, 1) if server_s > 0 else None,
    }


def password_hash_ms(rounds: int = 5) -> float:
    """One scrypt verification (the server's parameters), in this process: the median of
    `rounds`, milliseconds."""
    from signaling.auth import hash_password, verify_password

    stored = hash_password(PASSWORD)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify_password(PASSWORD, stored)
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2] * 1000, 2)


async def check_bookings(store: Store, seed: Seed, accepted: dict[str, int]) -> dict[str, Any]:
    """Every board's active bookings, read back: no two overlap; the hot boards hold what was
    seeded on them and what was accepted, nothing more or less."""
    overlapping: list[str] = []
    checked = 0
    stored_on_hot = 0
    hot = {board.id for board in seed.hot}
    for board in seed.boards:
        bookings = sorted(await store.bookings_of_board(board.id), key=lambda b: b.starts_at)
        checked += len(bookings)
        if board.id in hot:
            stored_on_hot += len(bookings)
        for earlier, later in itertools.pairwise(bookings):
            if later.starts_at < earlier.ends_at:
                overlapping.append(board.id)
                break
    expected_on_hot = 3 * len(hot) + sum(accepted.values())
    return {
        "no_overlapping_bookings": not overlapping,
        "boards_with_overlaps": len(overlapping),
        "bookings_checked": checked,
        "hot_board_bookings_stored": stored_on_hot,
        "hot_board_bookings_expected": expected_on_hot,
        "stored_match_accepted": stored_on_hot == expected_on_hot,
    }


# -- the run ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _database(kind: str, data_dir: Path) -> AsyncIterator[tuple[str, int | None]]:
    """(database_url, the database's main pid) for a fresh database of `kind`."""
    if kind == "sqlite":
        yield "", None
        return
    from bench.postgres import fresh_database, start_postgres

    server = await asyncio.to_thread(start_postgres)
    try:
        async with fresh_database(server) as url:
            yield url, server.postmaster_pid
    finally:
        await asyncio.to_thread(server.stop)


def _progress(message: str) -> None:
    print(f"bench api: {message}", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from signaling.auth import JwtAuthority, OperatorIdentity
    from signaling.config import load_server_config
    from signaling.store import create_store

    rng = random.Random(20261127)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="radiocore-bench-api-") as tmp:
        data_dir = Path(tmp)
        async with _database(args.database, data_dir) as (url, database_pid):
            _progress(f"seeding {args.users} users, {args.boards} boards ({args.database})")
            async with create_store(url, data_dir) as store:
                seed = await seed_database(store, args.users, args.boards, rng)
                _progress(f"seeded in {seed.seconds:.1f} s; admission in-process")
                warmup = samples(seed, ADMISSION_WARMUP, rng)
                admission = await admission_in_process(
                    store, samples(seed, args.admission_calls, rng), warmup
                )
            config = f"database_url = {_toml(url)}\n" if url else ""
            config += f"[limits]\nlogin_per_minute = {BENCH_LOGINS_PER_MINUTE}\n"
            server_url, server = await asyncio.to_thread(start_server, data_dir, config)
            try:
                authority = JwtAuthority.from_config(load_server_config(data_dir / "server.toml"))
                issued: dict[str, str] = {}

                def token(user_id: str) -> str:
                    if user_id not in issued:
                        identity = OperatorIdentity(user_id, seed.callsigns[user_id])
                        issued[user_id] = authority.issue(identity)
                    return issued[user_id]

                _progress("Socket.IO joins")
                # at most JOIN_CONNECTIONS (board, user) pairs, each joined in turn
                pairs = samples(seed, min(args.join_calls, JOIN_CONNECTIONS), rng)
                chosen = [pairs[i % len(pairs)] for i in range(args.join_calls)]
                rng.shuffle(chosen)
                join = await joins(server_url, token, chosen, pairs[:JOIN_WARMUP])
                meter = CpuMeter(server.pid, database_pid)
                _progress(f"bookings, {args.clients} clients, {args.seconds:g} s")
                booking = await bookings_under_contention(
                    server_url, token, seed, args.clients, args.seconds, meter, rng
                )
                _progress(f"logins, {LOGIN_CLIENTS} clients, {args.seconds:g} s")
                login = await logins(server_url, seed, args.seconds, meter, rng)
            finally:
                await asyncio.to_thread(stop_process, server)
            accepted = booking.pop("_accepted_by_board")
            async with create_store(url, data_dir) as store:
                booking.update(await check_bookings(store, seed, accepted))
    hash_ms = await asyncio.to_thread(password_hash_ms)
    login["password_hash_ms"] = hash_ms
    login["password_hashes_per_core_per_s"] = round(1000 / hash_ms, 1) if hash_ms else None
    return {
        "database": args.database,
        "users": args.users,
        "boards": args.boards,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seed": {
            "seconds": round(seed.seconds, 2),
            "users": len(seed.users),
            "boards": len(seed.boards),
            "public_boards": sum(board.public for board in seed.boards),
            "grants": sum(len(board.grants) for board in seed.boards),
            "bookings": seed.bookings,
            "password_hash": "one scrypt hash computed once and shared by every seeded user "
            f"({seed.hash_ms:.0f} ms)",
        },
        "admission": admission,
        "join": join,
        "booking": booking,
        "login": login,
    }


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_api_bench(args: argparse.Namespace) -> int:
    import json

    problems = []
    if args.users < 10:
        problems.append("--users must be at least 10")
    if args.boards < HOT_BOARDS:
        problems.append(f"--boards must be at least {HOT_BOARDS}")
    if args.seconds <= 0 or args.admission_calls < 1 or args.join_calls < 1 or args.clients < 1:
        problems.append("--seconds, --admission-calls, --join-calls and --clients must be > 0")
    if problems:
        print(f"bench api: {'; '.join(problems)}", file=sys.stderr)
        return 2
    from bench.postgres import PostgresUnavailableError

    try:
        result = asyncio.run(run(args))
    except PostgresUnavailableError as exc:
        print(f"bench api: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
