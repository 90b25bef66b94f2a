"""The agent's own health and metrics, on loopback: `GET /health` (JSON) and `GET /metrics`
(Prometheus text format), when `health_port` is set.

Nothing is computed in the background: the owning objects keep plain int counters (the agent
its reconnects, the station control its PTT sessions, the station its rig errors, the RX track
its audio underruns) and `AgentHealth` is one snapshot of them, taken when a request comes in.
The metrics are written with string formatting, not `prometheus-client`: the agent's install
(a Raspberry Pi) stays small, and there are a dozen series.

`/health` answers 200 with `"status": "ok"`, or 503 with `"status": "degraded"` and the
`problems` in words while the server link is down, the rig does not answer or the PTT guard is
not running, so that a systemd watchdog or a monitoring check can act on the status code alone.

The server binds to a loopback address only (`AgentConfig` refuses any other): it has no
authentication, and it tells whether the station is transmitting.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, Literal

from aiohttp import web

from .errors import AgentError

logger = logging.getLogger(__name__)

#: The Prometheus text exposition format's content type.
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_PROC_SELF: Final = Path("/proc/self")

#: The reasons the agent itself ends a transmission for (`StationControl`): always listed in
#: /metrics, at 0 until one happens, so that a rate or an alert works from the start.
AGENT_TX_STOP_REASONS: Final = ("deadman", "timeout", "watchdog", "rig_error")


class HealthServerError(AgentError):
    """The health and metrics endpoint could not be served (e.g. its port is taken)."""


@dataclass(frozen=True)
class AgentHealth:
    """What the agent reports about itself at one instant."""

    #: A session with the server is up (control channel open).
    server_connected: bool
    #: The rig answers (always true for the simulated station).
    rig_online: bool
    #: The agent holds PTT (from keying until it has tried to unkey).
    ptt: bool
    #: Connection attempts after the first (each after a lost or failed one).
    reconnects: int
    #: RX audio frames (20 ms) that were not ready in time, over every session.
    audio_underruns: int
    #: Times PTT went from released to keyed.
    ptt_sessions: int
    #: Rig requests that failed (an error reply, a time-out or a lost connection to rigctld).
    rig_errors: int
    #: Times the rig was lost after having been online.
    rig_outages: int
    #: Sessions that reached the connected state.
    sessions_connected: int
    #: Seconds since the agent started.
    uptime_s: float
    #: The PTT guard runs (keying is allowed); None: the station has none (simulated).
    ptt_guard_running: bool | None = None
    #: Transmissions the agent ended by itself, by reason (deadman, timeout, watchdog, …).
    tx_stops: Mapping[str, int] = field(default_factory=dict)
    #: Times the RX audio source failed mid-session (it is reopened; silence meanwhile).
    audio_failures: int = 0
    #: Why the RX audio is silent now (None: the source delivers).
    audio_failure: str | None = None

    @property
    def problems(self) -> list[str]:
        """What makes the agent degraded, in an operator's words (empty: ok)."""
        found = []
        if not self.server_connected:
            found.append("no connection to the server")
        if not self.rig_online:
            found.append("the rig does not answer")
        if self.ptt_guard_running is False:
            found.append("the PTT guard is not running (keying is refused)")
        if self.audio_failure is not None:
            found.append(f"the receiver audio failed ({self.audio_failure}); reopening it")
        return found

    @property
    def status(self) -> Literal["ok", "degraded"]:
        return "degraded" if self.problems else "ok"

    def to_json(self) -> dict[str, object]:
        """The `/health` body."""
        body: dict[str, object] = {"status": self.status, "problems": self.problems}
        body.update(asdict(self))
        body["uptime_s"] = round(self.uptime_s, 3)
        body["tx_stops"] = dict(self.tx_stops)
        return body


@dataclass(frozen=True)
class ProcessStats:
    """The agent process's resources, from /proc/self (None where it cannot be read)."""

    resident_memory_bytes: int | None
    open_fds: int | None
    cpu_seconds: float | None

    @classmethod
    def read(cls, proc: Path = _PROC_SELF) -> ProcessStats:
        return cls(_rss_bytes(proc), _open_fds(proc), _cpu_seconds(proc))


def _rss_bytes(proc: Path) -> int | None:
    try:
        resident_pages = int((proc / "statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _open_fds(proc: Path) -> int | None:
    try:
        return len(os.listdir(proc / "fd"))
    except OSError:
        return None


def _cpu_seconds(proc: Path) -> float | None:
    try:
        fields = (proc / "stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _sample(name: str, kind: str, help_text: str, value: float | None) -> list[str]:
    if value is None:
        return []
    text = repr(float(value)) if isinstance(value, float) else str(value)
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {text}"]


def _labelled(
    name: str, kind: str, help_text: str, label: str, values: Iterable[tuple[str, int]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for key, value in values:
        escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{name}{{{label}="{escaped}"}} {value}')
    return lines


def render_metrics(health: AgentHealth, process: ProcessStats) -> str:
    """`health` and `process` in the Prometheus text exposition format (version 0.0.4)."""
    h = health
    lines = [
        *_sample(
            "radiocore_agent_server_connected",
            "gauge",
            "1 while a session with the server is up (control channel open).",
            int(h.server_connected),
        ),
        *_sample(
            "radiocore_agent_rig_online",
            "gauge",
            "1 while the rig answers (rigctld; always 1 for the simulated station).",
            int(h.rig_online),
        ),
        *_sample(
            "radiocore_agent_ptt_keyed",
            "gauge",
            "1 while the agent holds PTT.",
            int(h.ptt),
        ),
        *_sample(
            "radiocore_agent_ptt_guard_running",
            "gauge",
            "1 while the station's PTT guard runs (keying is refused without it).",
            None if h.ptt_guard_running is None else int(h.ptt_guard_running),
        ),
        *_sample(
            "radiocore_agent_reconnects_total",
            "counter",
            "Connection attempts to the server after the first.",
            h.reconnects,
        ),
        *_sample(
            "radiocore_agent_sessions_connected_total",
            "counter",
            "Sessions with the server that reached the connected state.",
            h.sessions_connected,
        ),
        *_sample(
            "radiocore_agent_audio_underruns_total",
            "counter",
            "RX audio frames (20 ms) not ready in time (the event loop or the capture device "
            "was late).",
            h.audio_underruns,
        ),
        *_sample(
            "radiocore_agent_audio_failures_total",
            "counter",
            "Times the RX audio source failed mid-session (silence is sent while it is reopened).",
            h.audio_failures,
        ),
        *_sample(
            "radiocore_agent_audio_ok",
            "gauge",
            "1 while the RX audio source delivers, 0 while it has failed and is being reopened.",
            int(h.audio_failure is None),
        ),
        *_sample(
            "radiocore_agent_ptt_sessions_total",
            "counter",
            "Times PTT went from released to keyed.",
            h.ptt_sessions,
        ),
        *_labelled(
            "radiocore_agent_tx_stops_total",
            "counter",
            "Transmissions the agent ended by itself, by reason.",
            "reason",
            sorted({**dict.fromkeys(AGENT_TX_STOP_REASONS, 0), **h.tx_stops}.items()),
        ),
        *_sample(
            "radiocore_agent_rig_errors_total",
            "counter",
            "Rig requests that failed (error reply, time-out or lost connection to rigctld).",
            h.rig_errors,
        ),
        *_sample(
            "radiocore_agent_rig_outages_total",
            "counter",
            "Times the rig was lost after having been online.",
            h.rig_outages,
        ),
        *_sample(
            "radiocore_agent_uptime_seconds",
            "gauge",
            "Seconds since the agent started.",
            round(h.uptime_s, 3),
        ),
        *_sample(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            process.resident_memory_bytes,
        ),
        *_sample(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            process.open_fds,
        ),
        *_sample(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            process.cpu_seconds,
        ),
    ]
    return "\n".join(lines) + "\n"


class HealthServer:
    """`GET /health` and `GET /metrics` on `host`:`port` (a small aiohttp runner of its own);
    `snapshot` is called once per request."""

    def __init__(self, snapshot: Callable[[], AgentHealth], host: str, port: int) -> None:
        self._snapshot = snapshot
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port served on (the one asked for, or the one the system chose for 0)."""
        if self._runner is not None and self._runner.addresses:
            return int(self._runner.addresses[0][1])
        return self._port

    async def start(self) -> None:
        """Listen; `HealthServerError` when the address cannot be bound."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise HealthServerError(
                f"cannot serve /health and /metrics on {self._host} port {self._port}: "
                f"{exc.strerror or exc} (health_port)"
            ) from None
        self._runner = runner
        logger.info(
            "health and metrics on http://%s/health and /metrics",
            _host_port(self._host, self.port),
        )

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _request: web.Request) -> web.Response:
        health = self._snapshot()
        return web.Response(
            text=json.dumps(health.to_json()),
            status=200 if health.status == "ok" else 503,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        text = render_metrics(self._snapshot(), ProcessStats.read())
        return web.Response(
            body=text.encode(),
            headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store"},
        )


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
