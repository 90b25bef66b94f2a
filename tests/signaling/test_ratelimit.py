"""Keyed rate limits (signaling/ratelimit.py): one contract, run against the in-process limiter
and against the Redis one on a real `redis-server` started here, both on a fake clock so that
every wait is exact; then what only one of them does (a bounded table in memory; budgets shared
between nodes, Redis's own clock and key expiry, an unreachable Redis), and the 429 a client
receives."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
import redis.asyncio
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bench.tools import free_port
from signaling.api.http import error_response
from signaling.errors import RateLimitedError
from signaling.ratelimit import (
    LOGIN_PER_ADDRESS,
    Decision,
    FallbackRateLimiter,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailableError,
    RedisRateLimiter,
    address_key,
    rate_limited_response,
)
from signaling.ratelimit import redis_client as server_redis_client
from tests.support.redis import RedisServer, running_redis, start_redis

#: Long periods: a Redis key's TTL runs on real time, and must outlast any slow test.
HOURLY = Limit(5, 3600.0)
INTERVAL = HOURLY.interval_s  # 720 s


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One Redis for the module; each test keeps to its own key namespace."""
    with running_redis() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


MakeLimiter = Callable[[Limit, FakeClock], RateLimiter]


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> MakeLimiter:
    """The implementation under contract, on a fake clock, in a namespace of its own."""
    if request.param == "memory":
        return lambda limit, clock: MemoryRateLimiter(limit, clock=clock)
    client = request.getfixturevalue("redis_client")
    namespace = f"test:{uuid.uuid4().hex}"
    return lambda limit, clock: RedisRateLimiter(
        client, limit, "login", namespace=namespace, clock=clock
    )


async def hits(limiter: RateLimiter, key: str, count: int) -> list[Decision]:
    return [await limiter.hit(key) for _ in range(count)]


# -- the contract -------------------------------------------------------------------------------


async def test_a_burst_of_count_is_allowed_then_refused_until_one_interval_has_passed(
    make_limiter: MakeLimiter,
) -> None:
    clock = FakeClock()
    limiter = make_limiter(HOURLY, clock)
    assert limiter.limit == HOURLY
    assert all(decision.allowed for decision in await hits(limiter, "203.0.113.7", 5))
    refused = await limiter.hit("203.0.113.7")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(INTERVAL, abs=0.001)
    clock.advance(INTERVAL - 0.5)
    almost = await limiter.hit("203.0.113.7")
    assert not almost.allowed and almost.retry_after_s == pytest.approx(0.5, abs=0.001)
    clock.advance(0.5)
    assert (await limiter.hit("203.0.113.7")).allowed  # exactly when it said
    assert not (await limiter.hit("203.0.113.7")).allowed  # and one hit only


async def test_the_whole_budget_comes_back_after_one_period(make_limiter: MakeLimiter) -> None:
    clock = FakeClock()
    limiter = make_limiter(HOURLY, clock)
    await hits(limiter, "user-1", 8)
    clock.advance(HOURLY.period_s)
    again = await hits(limiter, "user-1", 6)
    assert [decision.allowed for decision in again] == [True] * 5 + [False]


async def test_refused_hits_cost_nothing(make_limiter: MakeLimiter) -> None:
    """Hammering a refused key does not push its next chance further away."""
    clock = FakeClock()
    limiter = make_limiter(HOURLY, clock)
    await hits(limiter, "hammer", 5)
    for second in range(50):
        decision = await limiter.hit("hammer")
        assert not decision.allowed
        assert decision.retry_after_s == pytest.approx(INTERVAL - second, abs=0.001)
        clock.advance(1)


async def test_keys_do_not_share_a_budget(make_limiter: MakeLimiter) -> None:
    clock = FakeClock()
    limiter = make_limiter(HOURLY, clock)
    await hits(limiter, "198.51.100.1", 5)
    assert not (await limiter.hit("198.51.100.1")).allowed
    odd_keys = ["198.51.100.2", "2001:db8::/64", "ünïcödé key", "a:b:c", "", "x" * 1000]
    for key in odd_keys:
        assert all(decision.allowed for decision in await hits(limiter, key, 5)), key
        assert not (await limiter.hit(key)).allowed, key
    assert not (await limiter.hit("198.51.100.1")).allowed


async def test_allowed_hits_never_outrun_a_burst_of_count_plus_one_per_interval(
    make_limiter: MakeLimiter,
) -> None:
    """Hits at irregular times (bursts and pauses): any n allowed hits span at least
    n * interval - period (a burst of `count`, then one per interval), and a refused hit is
    always allowed once its `retry_after_s` has passed."""
    limit = Limit(4, 60.0)
    clock = FakeClock()
    limiter = make_limiter(limit, clock)
    schedule = random.Random(8)  # fixed: the same hits every run
    allowed_at: list[float] = []
    for _ in range(300):
        clock.advance(schedule.choice([0.0, 0.0, 0.5, 3.0, 10.0, 17.0, 61.0]))
        decision = await limiter.hit("key")
        if decision.allowed:
            allowed_at.append(clock.now)
        else:
            assert 0 < decision.retry_after_s <= limit.interval_s + 0.001
            if schedule.random() < 0.3:  # come back exactly when told
                clock.advance(decision.retry_after_s + 0.001)
                assert (await limiter.hit("key")).allowed
                allowed_at.append(clock.now)
    assert 40 < len(allowed_at) < 300  # both outcomes happened, many times
    for first, start in enumerate(allowed_at):
        for last in range(first + 1, len(allowed_at)):
            hits_in_span = last - first + 1
            shortest = hits_in_span * limit.interval_s - limit.period_s
            assert allowed_at[last] - start >= shortest - 0.002, (first, last)
    # at its tightest: `count` at once, never `count + 1` within one interval
    for first in range(len(allowed_at) - limit.count):
        assert allowed_at[first + limit.count] - allowed_at[first] >= limit.interval_s - 0.002


# -- the in-process limiter ---------------------------------------------------------------------


async def test_memory_stays_bounded_under_a_flood_of_distinct_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(HOURLY, max_keys=100, clock=clock)
    for index in range(10_000):
        assert (await limiter.hit(f"10.0.{index // 256}.{index % 256}")).allowed
        assert len(limiter) <= 100
        clock.advance(0.01)


async def test_keys_whose_budget_is_full_again_are_dropped_before_limited_ones() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(Limit(5, 60.0), max_keys=10, clock=clock)
    await hits(limiter, "attacker", 5)  # limited until t+12, budget full at t+60
    clock.advance(1)
    for index in range(9):  # one hit each: full again at t+13
        await limiter.hit(f"visitor-{index}")
    clock.advance(19)
    for index in range(5):  # the table is full: the idle visitors go, not the attacker
        assert (await limiter.hit(f"newcomer-{index}")).allowed
    assert len(limiter) == 6
    # remembered: one hit earned back in 20 s, not a fresh burst of five
    assert [d.allowed for d in await hits(limiter, "attacker", 3)] == [True, False, False]


async def test_when_every_key_is_limited_the_least_recently_hit_is_forgotten() -> None:
    """The documented trade-off: the table never grows, and the key forgotten is the one that
    was quiet the longest (it starts again with a full budget)."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(Limit(1, 3600.0), max_keys=10, clock=clock)
    for index in range(10):
        await limiter.hit(f"key-{index}")
    assert not (await limiter.hit("key-9")).allowed
    assert not (await limiter.hit("key-0")).allowed  # key-0 is now the most recently hit
    assert (await limiter.hit("key-10")).allowed
    assert len(limiter) == 10  # one forgotten to make room
    assert (await limiter.hit("key-1")).allowed  # forgotten: the quietest
    assert not (await limiter.hit("key-0")).allowed  # kept: hit recently


def test_limits_must_be_positive() -> None:
    for count, period in [(0, 60.0), (5, 0.0), (5, -1.0), (5, float("inf")), (5, float("nan"))]:
        with pytest.raises(ValueError, match="rate limit"):
            Limit(count, period)
    with pytest.raises(ValueError, match="max_keys"):
        MemoryRateLimiter(HOURLY, max_keys=0)
    assert LOGIN_PER_ADDRESS.interval_s == 12.0


# -- the Redis limiter --------------------------------------------------------------------------


async def test_nodes_sharing_a_redis_share_one_budget(redis_server: RedisServer) -> None:
    namespace = f"test:{uuid.uuid4().hex}"
    clients = [redis.asyncio.Redis.from_url(redis_server.url) for _ in range(2)]
    try:
        clock = FakeClock()
        node_a, node_b = (
            RedisRateLimiter(client, HOURLY, "login", namespace=namespace, clock=clock)
            for client in clients
        )
        pairing = RedisRateLimiter(clients[0], HOURLY, "pairing", namespace=namespace, clock=clock)
        decisions = [await (node_a if i % 2 else node_b).hit("203.0.113.9") for i in range(6)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert not (await node_a.hit("203.0.113.9")).allowed
        assert (await pairing.hit("203.0.113.9")).allowed  # another limit, another budget
    finally:
        for client in clients:
            await client.aclose()


async def test_on_the_redis_clock_a_key_recovers_and_then_leaves_redis(
    redis_client: redis.asyncio.Redis,
) -> None:
    """Without a test clock the server's TIME is the clock; a key's state expires with its
    budget, so Redis holds only the keys being limited."""
    limiter = RedisRateLimiter(redis_client, Limit(2, 0.4), "short", namespace=uuid.uuid4().hex)
    assert [d.allowed for d in await hits(limiter, "k", 2)] == [True, True]
    refused = await limiter.hit("k")
    assert not refused.allowed and 0 < refused.retry_after_s <= 0.2
    ttl_ms = await redis_client.pttl(limiter.redis_key("k"))
    assert 0 < ttl_ms <= 400

    async def allowed_again() -> int:
        return int((await limiter.hit("k")).allowed)

    assert await poll(allowed_again, 1), "the key never recovered"
    assert await poll(lambda: redis_client.exists(limiter.redis_key("k")), 0), (
        "the key outlived its budget"
    )

    hourly = RedisRateLimiter(redis_client, HOURLY, "hourly", namespace=uuid.uuid4().hex)
    await hits(hourly, "k", 5)
    decision = await hourly.hit("k")
    assert not decision.allowed and INTERVAL - 5 < decision.retry_after_s <= INTERVAL
    assert 0 < await redis_client.pttl(hourly.redis_key("k")) <= HOURLY.period_s * 1000


async def test_an_unreachable_redis_refuses_with_503_rather_than_letting_hits_through() -> None:
    client = redis.asyncio.Redis(
        host="127.0.0.1",
        port=free_port(),  # nothing listens there
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=Retry(NoBackoff(), retries=0),  # redis-py retries 3 times by default
    )
    try:
        limiter = RedisRateLimiter(client, HOURLY, "login")
        with pytest.raises(RateLimiterUnavailableError) as caught:
            await limiter.hit("203.0.113.7")
        assert caught.value.http_status == 503
        assert caught.value.code.value == "unavailable"
    finally:
        await client.aclose()


async def test_a_redis_outage_counts_on_this_node_and_goes_back_to_redis_after_it() -> None:
    """Sign-ins go on through a Redis crash: this node counts them on its own, with the same
    budget (a refusal is a 429, never a 503), and uses Redis again once it answers."""
    server = start_redis()  # its own: this test kills it
    client = server_redis_client(server.url)  # the server's own settings (no retries)
    clock = FakeClock()
    limit = Limit(3, 60.0)
    shared = RedisRateLimiter(client, limit, "fallback", namespace=uuid.uuid4().hex)
    local = MemoryRateLimiter(limit, clock=clock)
    limiter = FallbackRateLimiter(shared, local, "fallback", retry_s=5.0, clock=clock)
    try:
        assert (await limiter.hit("203.0.113.7")).allowed
        assert await client.exists(shared.redis_key("203.0.113.7")) == 1  # counted in Redis
        assert not limiter.degraded

        await asyncio.to_thread(server.kill)
        decisions = [(await limiter.hit("203.0.113.7")).allowed for _ in range(4)]
        assert decisions == [True, True, True, False]  # this node's own budget of 3
        assert limiter.degraded and limiter.local_hits == 4

        await asyncio.to_thread(server.restart)
        assert (await limiter.hit("198.51.100.1")).allowed
        assert limiter.local_hits == 5, "Redis was asked again before retry_s"
        clock.advance(5.0)
        assert (await limiter.hit("198.51.100.1")).allowed
        assert not limiter.degraded and limiter.local_hits == 5
        assert await client.exists(shared.redis_key("198.51.100.1")) == 1
    finally:
        await client.aclose()
        server.stop()


async def poll(probe: Callable[[], Awaitable[int]], expect: int) -> bool:
    """Whether `probe()` answers `expect` within ~5 s (100 tries, 50 ms apart)."""
    for _ in range(100):
        if await probe() == expect:
            return True
        await asyncio.sleep(0.05)
    return False


# -- what a client receives ---------------------------------------------------------------------


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert Decision(False, 0.2).retry_after_header == "1"
    assert Decision(False, 12.0).retry_after_header == "12"
    assert Decision(False, 12.001).retry_after_header == "13"
    error = Decision(False, 11.5).refusal("too many login attempts")
    assert isinstance(error, RateLimitedError)
    assert (error.retry_after_s, error.http_status, error.message) == (
        12.0,
        429,
        "too many login attempts",
    )
    # the API's own error answer carries the same header when a handler raises the refusal
    assert error_response(error).headers["Retry-After"] == "12"


async def test_a_refused_client_gets_429_with_retry_after_and_the_json_error_body() -> None:
    """A route limited to 5 hits a minute per address, served for real: the sixth request is
    refused the way every API error is written, and says when to come back."""
    clock = FakeClock()
    limiter = MemoryRateLimiter(LOGIN_PER_ADDRESS, clock=clock)

    async def login(request: web.Request) -> web.Response:
        decision = await limiter.hit(address_key(request.remote))
        if not decision.allowed:
            return rate_limited_response(decision, "too many login attempts; wait a little")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/auth/login", login)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/auth/login"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.post(url) as response:
                    assert response.status == 200
            clock.advance(2.5)
            async with session.post(url) as response:
                assert response.status == 429
                assert response.headers["Retry-After"] == "10"  # 12 - 2.5 = 9.5, rounded up
                assert response.content_type == "application/json"
                assert await response.json() == {
                    "error": {
                        "code": "rate_limited",
                        "message": "too many login attempts; wait a little",
                    }
                }
            clock.advance(9.5)
            async with session.post(url) as response:
                assert response.status == 200
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::9", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("not an address", "not an address"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_an_ipv6_client_is_limited_by_its_64(remote: str | None, key: str) -> None:
    assert address_key(remote) == key
