"""The server's Prometheus metrics (`GET /metrics`): one `CollectorRegistry` per application
(several apps may run in one process: tests, benchmarks), never the global one.

Almost everything is read at scrape time from state the server keeps anyway, so nothing is
added to the forwarding loop: the SFU's rooms and its forwarding totals (`Sfu.totals()`), the
operators' Socket.IO connections and the refusals the namespaces count, the TX audit's end
reasons, the rate limiters' refusals, the presence of every board in the store. What has no
other owner is counted here: REST authentication failures (`auth_failure`, from
`signaling.rest`) and the event loop's lag (a task that sleeps 0.5 s and observes how late it
woke). The forwarding-latency samples the SFU takes every `media_latency_sample_every` packets
are added to their histogram at each scrape. Plus the standard process collector (resident
memory, open file descriptors, CPU time).

The names are a contract (dashboards, alerts and `radiocore bench soak` read them): see
`docs/monitoring.md`.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from media.sfu import Sfu
from radiocore_protocol import TxEndReason
from signaling.audit import TxAudit
from signaling.namespaces import AgentNamespace, OperatorNamespace
from signaling.presence import Presence
from signaling.ratelimit import ApiLimits, CountedRateLimiter
from signaling.store import Store

logger = logging.getLogger(__name__)

#: The Prometheus text format (0.0.4: what every Prometheus version reads).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: How long a scrape waits for the store's list of boards; then the last list is used.
BOARD_LIST_TIMEOUT_S: Final = 1.0
#: The event-loop lag probe sleeps this long and observes how much later it woke.
LOOP_LAG_INTERVAL_S: Final = 0.5

#: Forwarding latency (server ingress → handed to the socket), seconds: 0.1 ms … 250 ms.
FORWARD_LATENCY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip
#: Event-loop lag, seconds: 1 ms … 5 s.
LOOP_LAG_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

#: `radiocore_auth_failures_total{entry}`: where a credential was refused.
AUTH_ENTRIES: Final = (
    "rest_login",  # POST /api/auth/login: wrong email or password
    "rest_refresh",  # POST /api/auth/refresh: an unknown, spent or expired refresh token
    "rest_token",  # any other REST endpoint: a missing, forged or expired access token (or
    # the password DELETE /api/me asks for)
    "socketio_operator",  # /operator connect refused (its token)
    "socketio_agent",  # /agent connect refused (board id or secret)
)
#: `radiocore_rate_limited_total{limit}`: the REST limits (`ApiLimits` fields) and Socket.IO's
#: per-connection event rate.
RATE_LIMITS: Final = ("login", "registration", "pairing", "socketio_events")
#: `radiocore_packets_dropped_total{reason}`.
DROP_REASONS: Final = (
    "queue_full",  # a relayed (TURN) listener's bounded queue dropped its oldest packet
    "late",  # a packet that came late or twice was not forwarded (its slot had passed)
    "invalid",  # a data-channel message refused: malformed, unknown or oversize
)


def auth_entry(method: str, path: str) -> str:
    """The `entry` label of a REST 401 for `method path`."""
    if path == "/api/auth/login":
        return "rest_login"
    if path == "/api/auth/refresh":
        return "rest_refresh"
    return "rest_token"


@dataclass
class MetricSources:
    """The server's parts the metrics read, set by `signaling.app` as each one starts (a part
    not started yet reads as zero)."""

    store: Store | None = None
    sfu: Sfu | None = None
    audit: TxAudit | None = None
    presence: Presence | None = None
    operators: OperatorNamespace | None = None
    agents: AgentNamespace | None = None
    limits: ApiLimits | None = None


@dataclass
class _Buckets:
    """A histogram kept as plain counts, fed in batches at scrape time."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)

    def observe_all(self, values: Iterable[float]) -> None:
        bounds, counts = self.bounds, self.counts
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
            self.total += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class ServerMetrics:
    """The application's registry and what it collects (see the module docstring)."""

    def __init__(self) -> None:
        self.sources = MetricSources()
        self.registry = CollectorRegistry()
        #: REST credentials refused, by `AUTH_ENTRIES` label (`signaling.rest` counts them).
        self.auth_failures: collections.Counter[str] = collections.Counter()
        #: `GET /ready`'s last outcome per check (its failures and recoveries are logged once).
        self.readiness: dict[str, bool] = {}
        self.loop_lag = Histogram(
            "radiocore_event_loop_lag_seconds",
            f"How much later than asked the event loop woke a task sleeping "
            f"{LOOP_LAG_INTERVAL_S:g} s",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        self._latency = _Buckets(FORWARD_LATENCY_BUCKETS)
        self._latency_mark = 0
        self._boards: list[str] = []
        ProcessCollector(registry=self.registry)
        self.registry.register(_Collector(self))

    def auth_failure(self, entry: str) -> None:
        self.auth_failures[entry] += 1

    async def refresh(self) -> None:
        """What a scrape needs beyond the in-memory state: the store's list of boards (bounded
        by `BOARD_LIST_TIMEOUT_S`; the last list when the store does not answer), and the
        forwarding-latency samples taken since the last scrape."""
        store = self.sources.store
        if store is not None:
            try:
                self._boards = await asyncio.wait_for(store.board_ids(), BOARD_LIST_TIMEOUT_S)
            except Exception as exc:  # the database is down: /ready says so
                logger.debug("metrics: the board list is unavailable: %r", exc)
        sfu = self.sources.sfu
        if sfu is not None:
            self._latency_mark, samples = sfu.latency_since(self._latency_mark)
            self._latency.observe_all(samples)

    async def exposition(self) -> bytes:
        """The registry in the Prometheus text format, after `refresh()`."""
        await self.refresh()
        return generate_latest(self.registry)

    async def watch_loop_lag(self) -> None:
        """Observe the event loop's lag every `LOOP_LAG_INTERVAL_S`, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LOOP_LAG_INTERVAL_S)
            self.loop_lag.observe(max(0.0, loop.time() - asked - LOOP_LAG_INTERVAL_S))

    # -- the families read at scrape time ---------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        sources = self.sources
        sfu = sources.sfu
        rooms = sfu.rooms() if sfu is not None else ()
        yield _gauge("radiocore_rooms", "Rooms (stations with someone in them)", len(rooms))
        operators = sources.operators.connected if sources.operators is not None else 0
        yield _gauge("radiocore_operators", "Operator Socket.IO connections open", operators)
        relayed = sfu.relay_rooms() if sfu is not None else ()
        listeners = sum(len(room.rx.targets) for room in rooms)
        listeners += sum(len(room.rx.targets) for room in relayed)
        yield _gauge(
            "radiocore_listeners", "Operators' media connections receiving a station", listeners
        )
        yield _gauge(
            "radiocore_relayed_rooms",
            "Stations of other nodes whose listeners here hear them through this node's relay",
            len(relayed),
        )
        if sfu is not None:
            yield _gauge(
                "radiocore_forwarding_lane_compiled",
                "1: listeners are served by the compiled forwarding lane; 0: the pure-Python one",
                int(sfu.lane_compiled),
            )
        active = sum(room.floor.holder is not None for room in rooms)
        yield _gauge("radiocore_ptt_active", "Transmissions going on now", active)

        totals = sfu.totals() if sfu is not None else None
        forwarded = totals.forwarded if totals is not None else None
        yield _counter(
            "radiocore_packets_forwarded_total",
            "Audio packets forwarded (to listeners and to stations)",
            forwarded.packets if forwarded is not None else 0,
        )
        yield _counter(
            "radiocore_bytes_forwarded_total",
            "RTP payload bytes forwarded",
            forwarded.bytes if forwarded is not None else 0,
        )
        dropped = CounterMetricFamily(
            "radiocore_packets_dropped_total",
            "Packets and data-channel messages dropped, by reason",
            labels=["reason"],
        )
        drops = {
            "queue_full": forwarded.queue_full if forwarded is not None else 0,
            "late": forwarded.late if forwarded is not None else 0,
            "invalid": totals.invalid_messages if totals is not None else 0,
        }
        for reason in DROP_REASONS:
            dropped.add_metric([reason], drops[reason])
        yield dropped
        yield self._latency.family(
            "radiocore_forward_latency_seconds",
            "Server ingress to egress time of sampled forwarded packets, per listener send "
            "(media_latency_sample_every; none when 0)",
        )

        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # collected outside the event loop
            tasks = 0
        yield _gauge("radiocore_asyncio_tasks", "asyncio tasks alive", tasks)

        sessions = CounterMetricFamily(
            "radiocore_ptt_sessions_total", "Transmissions ended, by why", labels=["end_reason"]
        )
        ended = sources.audit.ended if sources.audit is not None else collections.Counter()
        known = typing.get_args(TxEndReason)
        for reason in (*known, *sorted(set(ended) - set(known))):
            sessions.add_metric([reason], ended.get(reason, 0))
        yield sessions

        failures = CounterMetricFamily(
            "radiocore_auth_failures_total", "Credentials refused, by entry point", labels=["entry"]
        )
        refused = dict(self.auth_failures)
        if sources.operators is not None:
            refused["socketio_operator"] = sources.operators.refused
        if sources.agents is not None:
            refused["socketio_agent"] = sources.agents.refused
        for entry in AUTH_ENTRIES:
            failures.add_metric([entry], refused.get(entry, 0))
        yield failures

        yield _counter(
            "radiocore_udp_unclaimed_datagrams_total",
            "Datagrams to the shared UDP port (ice.udp_port) that no peer connection owned "
            "(dropped)",
            sfu.unclaimed_datagrams() if sfu is not None else 0,
        )

        placed = CounterMetricFamily(
            "radiocore_agents_placed_elsewhere_total",
            "Board agents sent to a less loaded node when they connected (cluster placement)",
        )
        placed.add_metric([], sources.agents.placed if sources.agents is not None else 0)
        yield placed

        limited = CounterMetricFamily(
            "radiocore_rate_limited_total", "Requests refused for their rate, by limit",
            labels=["limit"],
        )  # fmt: skip
        for name in RATE_LIMITS:
            limited.add_metric([name], self._rate_limited(name))
        yield limited

        online = GaugeMetricFamily(
            "radiocore_board_online",
            "1 while the board's station is online (its media up), else 0",
            labels=["board"],
        )
        presence = sources.presence
        for board_id in self._boards:
            up = presence is not None and presence.is_online(board_id)
            online.add_metric([board_id], 1 if up else 0)
        yield online

    def _rate_limited(self, name: str) -> int:
        sources = self.sources
        if name == "socketio_events":
            return sum(
                ns.rate_limited for ns in (sources.operators, sources.agents) if ns is not None
            )
        limiter = getattr(sources.limits, name, None) if sources.limits is not None else None
        return limiter.refused if isinstance(limiter, CountedRateLimiter) else 0


class _Collector:
    """Hands the registry `ServerMetrics.collect()` at each scrape."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.collect())

    def describe(self) -> Iterable[Metric]:
        return []  # collected only at scrape time (the families need a running loop)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


@contextlib.asynccontextmanager
async def loop_lag_watch(metrics: ServerMetrics) -> typing.AsyncIterator[None]:
    """`metrics.watch_loop_lag()` as a task for the `async with` block."""
    task = asyncio.create_task(metrics.watch_loop_lag(), name="radiocore-loop-lag")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
