"""Keyed rate limits for the REST API: login attempts per address, pairings per user,
registrations per address.

One contract, `RateLimiter.hit(key) -> Decision`, two implementations:

- `MemoryRateLimiter`: in the server process (one node). Memory is bounded by `max_keys`:
  when room is needed, keys whose budget is full again go first (their state says nothing),
  then the least recently hit (such a key starts again with a full budget: under a flood of
  distinct keys the limit fails open for the quietest ones rather than refusing everyone).
- `RedisRateLimiter`: shared by every node through Redis, one Lua script per hit (atomic),
  timed by the Redis server's clock; each key expires in Redis as soon as its budget is full
  again.

Both run the same algorithm, GCRA (the generic cell rate algorithm, a token bucket kept as
one timestamp per key): `Limit(count, period_s)` allows a burst of `count` hits, then one hit
every `interval_s = period_s / count` seconds: `count` per `period_s` in the long run, and in
any stretch of `t` seconds at most `count + t / interval_s` (5 a minute: 5 at once, then one
every 12 s; not "5, then nothing for a minute"). A refused hit costs nothing (hammering does
not lengthen the wait), and the refusal says exactly when the next hit will be allowed
(`retry_after_s`).

The REST API raises `Decision.refusal(…)` (a `RateLimitedError`: 429, `Retry-After`) or answers
with `rate_limited_response`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio
import redis.exceptions
from aiohttp import web

from signaling.errors import RateLimitedError, UnavailableError

logger = logging.getLogger(__name__)

__all__ = [
    "LOGIN_PER_ADDRESS",
    "PAIRING_PER_USER",
    "REGISTRATION_PER_ADDRESS",
    "CountedRateLimiter",
    "Decision",
    "FallbackRateLimiter",
    "Limit",
    "MemoryRateLimiter",
    "RateLimiter",
    "RateLimiterUnavailableError",
    "RedisRateLimiter",
    "address_key",
    "rate_limited_response",
    "shared_limiter",
]


@dataclass(frozen=True)
class Limit:
    """`count` hits per `period_s` seconds: a burst of `count`, then one every
    `period_s / count` (see the module's docstring)."""

    count: int
    period_s: float

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 < self.period_s < math.inf:
            raise ValueError(f"a rate limit needs count ≥ 1 and a period > 0, not {self}")

    @property
    def interval_s(self) -> float:
        """The time one hit occupies: a key refused now is allowed again after this at most."""
        return self.period_s / self.count


#: The seed's limits: 5 login attempts a minute per address, 10 pairings an hour per user.
LOGIN_PER_ADDRESS: Final = Limit(5, 60.0)
PAIRING_PER_USER: Final = Limit(10, 3600.0)
#: Registrations per address: a club behind one NAT address may sign up a few members at once.
REGISTRATION_PER_ADDRESS: Final = Limit(10, 3600.0)


@dataclass(frozen=True)
class Decision:
    """The answer to one hit: allowed, or refused until `retry_after_s` seconds from now."""

    allowed: bool
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` in whole seconds, rounded up (a client waiting that long is allowed)."""
        return str(max(1, math.ceil(self.retry_after_s)))

    def refusal(self, message: str | None = None) -> RateLimitedError:
        """The error to raise for this refusal (429 with `Retry-After`, whole seconds)."""
        return RateLimitedError(message, retry_after_s=float(self.retry_after_header))


class RateLimiter(Protocol):
    """A keyed rate limit: every `hit` counts one attempt for `key` (an address, a user id)."""

    @property
    def limit(self) -> Limit: ...

    async def hit(self, key: str) -> Decision:
        """Count one attempt for `key`: allowed (and counted) or refused (not counted)."""
        ...


class RateLimiterUnavailableError(UnavailableError):
    """The shared rate limiter (Redis) did not answer: the attempt is neither allowed nor
    counted. REST answers 503; nothing was changed."""

    default_message = "the server cannot check its rate limits right now; try again shortly"


def _gcra(tat: float, now: float, limit: Limit) -> tuple[Decision, float]:
    """One GCRA step: the decision and the key's next theoretical arrival time. A key whose
    TAT is in the past has a full budget (the same as no state)."""
    new_tat = max(tat, now) + limit.interval_s
    wait = new_tat - limit.period_s - now
    if wait > 0:
        return Decision(False, wait), tat
    return Decision(True), new_tat


class MemoryRateLimiter:
    """`RateLimiter` in this process, for a server of one node.

    `clock` is monotonic seconds (tests pass their own). At most `max_keys` keys are held:
    when a new key would pass that, every key whose budget is full again is dropped, and if
    that is not a tenth of the table, the least recently hit keys too (so the cost of a sweep
    is spread over at least `max_keys / 10` new keys)."""

    def __init__(
        self,
        limit: Limit,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._limit = limit
        self._max_keys = max_keys
        self._clock = clock
        #: key → theoretical arrival time, least recently hit first.
        self._tat: OrderedDict[str, float] = OrderedDict()

    @property
    def limit(self) -> Limit:
        return self._limit

    def __len__(self) -> int:
        """How many keys hold state."""
        return len(self._tat)

    async def hit(self, key: str) -> Decision:
        now = self._clock()
        tat = self._tat.get(key)
        if tat is None:
            self._make_room(now)
            tat = now
        else:
            self._tat.move_to_end(key)
        decision, next_tat = _gcra(tat, now, self._limit)
        self._tat[key] = next_tat
        return decision

    def _make_room(self, now: float) -> None:
        if len(self._tat) < self._max_keys:
            return
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
        low_water = self._max_keys - max(1, self._max_keys // 10)
        while len(self._tat) > low_water:
            self._tat.popitem(last=False)


# KEYS[1]: the key. ARGV: interval (ms), period (ms), now (ms, or '' for the server's clock).
# Integer milliseconds throughout: Lua numbers are doubles, exact to 2^53, and a double's
# default string form keeps only 14 digits, hence '%.0f' when storing.
_GCRA_LUA: Final = """
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
else
  now = tonumber(ARGV[3])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
local wait = new_tat - period - now
if wait > 0 then
  return {0, wait}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', new_tat - now)
return {1, 0}
"""


class RedisRateLimiter:
    """`RateLimiter` shared through Redis by every node: the same algorithm as
    `MemoryRateLimiter`, in milliseconds, on the Redis server's clock (or `clock`, wall-clock
    seconds, for tests). Keys are `<namespace>:<name>:<key>`; each expires when its budget is
    full again, so Redis holds only keys that are being limited.

    The caller owns `client` (and sets its timeouts). An unreachable or failing Redis is a
    `RateLimiterUnavailableError`: the caller refuses the attempt rather than let it through
    uncounted."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        limit: Limit,
        name: str,
        *,
        namespace: str = "radiocore:ratelimit",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._limit = limit
        self._client = client
        self._prefix = f"{namespace}:{name}:"
        self._clock = clock
        self._script = client.register_script(_GCRA_LUA)
        self._interval_ms = max(1, round(limit.interval_s * 1000))
        self._period_ms = max(1, round(limit.period_s * 1000))

    @property
    def limit(self) -> Limit:
        return self._limit

    def redis_key(self, key: str) -> str:
        """Where `key`'s state lives in Redis."""
        return self._prefix + key

    async def hit(self, key: str) -> Decision:
        now = "" if self._clock is None else str(round(self._clock() * 1000))
        try:
            allowed, wait_ms = await self._script(
                keys=[self.redis_key(key)], args=[self._interval_ms, self._period_ms, now]
            )
        except (redis.exceptions.RedisError, OSError) as exc:
            raise RateLimiterUnavailableError() from exc
        if allowed:
            return Decision(True)
        return Decision(False, int(wait_ms) / 1000)


class FallbackRateLimiter:
    """The shared limit (`RedisRateLimiter`) while Redis answers; this node's own count of the
    same limit (`MemoryRateLimiter`) while it does not, so a Redis outage does not stop sign-ins:
    each node then limits on its own (a client spreading attempts over N nodes gets N times the
    budget until Redis is back). After a failure Redis is tried again `retry_s` later, not on
    every hit (an unreachable Redis costs each attempt its connect time-out)."""

    def __init__(
        self,
        shared: RateLimiter,
        local: RateLimiter,
        name: str,
        *,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared = shared
        self.local = local
        self.name = name
        self._retry_s = retry_s
        self._clock = clock
        self._skip_until = float("-inf")
        #: Whether the last try of the shared limit failed.
        self.degraded = False
        #: Hits counted on this node alone because Redis did not answer.
        self.local_hits = 0

    @property
    def limit(self) -> Limit:
        return self.shared.limit

    async def hit(self, key: str) -> Decision:
        now = self._clock()
        if now >= self._skip_until:
            try:
                decision = await self.shared.hit(key)
            except RateLimiterUnavailableError:
                if not self.degraded:
                    logger.warning(
                        "rate limit %s: Redis does not answer; this node counts on its own "
                        "until it does",
                        self.name,
                    )
                self.degraded = True
                self._skip_until = now + self._retry_s
            else:
                if self.degraded:
                    logger.info("rate limit %s: Redis answers again", self.name)
                self.degraded = False
                return decision
        self.local_hits += 1
        return await self.local.hit(key)


class CountedRateLimiter:
    """A `RateLimiter` that counts the hits `inner` refused (`refused`, read by
    `GET /metrics`); otherwise `inner` unchanged."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        self.refused = 0

    @property
    def limit(self) -> Limit:
        return self.inner.limit

    async def hit(self, key: str) -> Decision:
        decision = await self.inner.hit(key)
        if not decision.allowed:
            self.refused += 1
        return decision


def address_key(remote: str | None) -> str:
    """The rate-limit key of a client address: an IPv4 address as it is, an IPv6 address as
    its /64 (one household or one server gets a whole /64, so per-address limits on IPv6
    addresses would not limit anyone), `unknown` when there is none. An IPv4-mapped IPv6
    address counts as its IPv4 address."""
    if not remote:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def rate_limited_response(decision: Decision, message: str | None = None) -> web.Response:
    """The REST answer to a refused hit: 429, `Retry-After` in whole seconds (rounded up), and
    the API's error body `{"error": {"code": "rate_limited", "message": …}}`."""
    # imported here: signaling.api imports this module to limit its endpoints
    from signaling.api.http import error_response

    response = error_response(decision.refusal(message))
    response.headers["Retry-After"] = decision.retry_after_header
    return response


@dataclass(frozen=True)
class ApiLimits:
    """The limits the API applies (seed: login 5/min per IP, pairing 10/h per user,
    registration per IP)."""

    login: RateLimiter
    registration: RateLimiter
    pairing: RateLimiter

    @classmethod
    def in_process(cls) -> ApiLimits:
        return cls(
            MemoryRateLimiter(LOGIN_PER_ADDRESS),
            MemoryRateLimiter(REGISTRATION_PER_ADDRESS),
            MemoryRateLimiter(PAIRING_PER_USER),
        )

    @classmethod
    def on_redis(cls, client: redis.asyncio.Redis) -> ApiLimits:
        return cls(
            shared_limiter(client, LOGIN_PER_ADDRESS, "login"),
            shared_limiter(client, REGISTRATION_PER_ADDRESS, "registration"),
            shared_limiter(client, PAIRING_PER_USER, "pairing"),
        )


def shared_limiter(client: redis.asyncio.Redis, limit: Limit, name: str) -> FallbackRateLimiter:
    """`limit` shared by every node through Redis, counted on this node while Redis is down."""
    return FallbackRateLimiter(
        RedisRateLimiter(client, limit, name), MemoryRateLimiter(limit), name
    )


def redis_client(url: str, *, socket_timeout: float | None = 1.0) -> redis.asyncio.Redis:
    """A Redis client for `url` with short timeouts and no retries: a Redis that does not
    answer must not hold a request for seconds (the caller then refuses it: 503).
    `socket_timeout=None`: reads wait (a subscription's), connecting is still bounded."""
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=1.0, retry_on_timeout=False
    )
    return client
