"""`BoardAgent`: one outbound connection to the server, kept up for as long as the agent runs.

The agent runs one `Session` at a time (`session.py`: Socket.IO to `/agent`, then one peer
connection with RX audio out, TX audio in and the `control` data channel). Whatever ends a
session (server gone, refused credentials, ICE failure, a closed data channel), its teardown
releases PTT at once and closes the rest; then one loop here reconnects with exponential
backoff. python-socketio's own reconnection is disabled so that this loop is the only one.

What outlives the sessions belongs to the agent: the station (simulated, or a rig through
rigctld), opened when `run()` starts and closed when it ends; `StationControl`, which applies
control messages to it and enforces the agent's own dead-man and TX time-out; the TX audio sink
and the `TxAudioPlayer` that plays into it.

With `health_port` set, the agent also serves its own `/health` and `/metrics` on loopback
(`health.py`), from counters kept here (reconnects, audio underruns over every session) and
in the station control and the station; `health()` is the snapshot they serve.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from radiocore import aiortc_hooks

from .audio_sink import AudioSink
from .audio_source import AudioSource, AudioState, ResilientSource
from .backoff import Backoff
from .config import AgentConfig, AudioSpec
from .errors import AudioError, PlacedElsewhereError, SessionError
from .hamlib_station import HamlibStation
from .health import AgentHealth, HealthServer, HealthServerError
from .opus_track import OpusPacketTrack
from .session import Session
from .station import SimulatedStation, StationDriver
from .station_control import StationControl
from .tx_audio import TxAudioPlayer

logger = logging.getLogger(__name__)


class BoardAgent:
    """Keeps the station connected to the server until `stop()`; see the module docstring.

    Owns `station` (opens it when `run()` starts, closes it when `run()` ends), `audio_sink`
    (closes it) and each session's audio source (made by `audio_source_factory`, opened anew
    per connection). By default the station is the config's `rig` and source and sink come
    from `config`.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        station: StationDriver | None = None,
        audio_source_factory: Callable[[], AudioSource] | None = None,
        audio_sink: AudioSink | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.station = station if station is not None else create_station(config)
        self.control = StationControl(self.station, config)
        source_spec = AudioSpec.parse_source(config.audio_source)
        open_source = audio_source_factory or (lambda: AudioSource.from_spec(source_spec))
        #: The RX audio's failures over every session (a failing source is reopened in place).
        self.audio = AudioState()
        self._source_factory = lambda: ResilientSource(
            open_source, retry_s=config.audio_retry_s, state=self.audio
        )
        self.audio_sink = (
            audio_sink
            if audio_sink is not None
            else AudioSink.from_spec(AudioSpec.parse_sink(config.audio_sink))
        )
        self._tx_audio = TxAudioPlayer(self.audio_sink, lambda: self.control.ptt)
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, rng)
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._reached_connected = False
        self._session: Session | None = None
        #: Which TURN URL goes first in the next session (kept while it works).
        self._turn_choice = 0
        #: Which server node the next session connects to (kept while it works).
        self._server_choice = 0
        #: The last attempt was placed on another node: the next one goes there at once and
        #: names no other nodes (so it is not placed again).
        self._placed = False
        #: Sessions that reached the connected state.
        self.sessions_connected = 0
        #: Connections the server answered by placing the station on another node.
        self.placements = 0
        #: Connection attempts made (the first included).
        self.connection_attempts = 0
        self._ended_sessions_underruns = 0
        self._started_at: float | None = None

    @property
    def reconnects(self) -> int:
        """Connection attempts after the first (each after a lost or failed one)."""
        return max(0, self.connection_attempts - 1)

    @property
    def audio_underruns(self) -> int:
        """RX audio frames not ready in time, over every session so far."""
        current = self._session.audio_underruns if self._session is not None else 0
        return self._ended_sessions_underruns + current

    def health(self) -> AgentHealth:
        """What the agent reports on /health and /metrics, now."""
        station = self.station
        guard = station.guard if isinstance(station, HamlibStation) else None
        started = self._started_at
        return AgentHealth(
            server_connected=self.connected,
            rig_online=station.online,
            ptt=self.control.ptt,
            reconnects=self.reconnects,
            audio_underruns=self.audio_underruns,
            audio_failures=self.audio.failures,
            audio_failure=self.audio.failure,
            ptt_sessions=self.control.ptt_sessions,
            rig_errors=station.rig_errors,
            rig_outages=station.outages,
            sessions_connected=self.sessions_connected,
            uptime_s=time.monotonic() - started if started is not None else 0.0,
            ptt_guard_running=guard.ready if guard is not None else None,
            tx_stops=collections.Counter(self.control.tx_stops),
        )

    @property
    def rx_track(self) -> OpusPacketTrack | None:
        """The current session's RX track (for its counters), None between sessions."""
        return self._session.rx_track if self._session is not None else None

    @property
    def tx_frames_dropped(self) -> int:
        """TX audio frames discarded because PTT was off."""
        return self._tx_audio.frames_dropped

    @property
    def connected(self) -> bool:
        """True while a session is up (data channel open)."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Return once a session is up."""
        await self._connected.wait()

    def stop(self) -> None:
        """Ask `run()` to shut down cleanly; safe to call from a signal handler."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, stay connected, reconnect with backoff; return after `stop()`."""
        aiortc_hooks.check_hooks()
        aiortc_hooks.set_host_addresses(self.config.ice_host_addresses)
        aiortc_hooks.setup_dtls()
        self._started_at = time.monotonic()
        try:
            health = await self._start_health()
        except HealthServerError:
            self.audio_sink.close()
            raise
        logger.info(
            "board agent for board %s, server %s, rig %s",
            self.config.board_id,
            self.config.server_url,
            self.config.rig,
        )
        if self.config.secret_file:
            logger.info(
                "the board secret is read from %s before every connection attempt",
                self.config.secret_file,
            )
        try:
            await self._until_stopped(self.station.open())
            while not self._stopping.is_set():
                self._reached_connected = False
                self.connection_attempts += 1
                try:
                    await self._until_stopped(self._run_session())
                except PlacedElsewhereError as exc:
                    self._follow(exc)
                    continue  # at once: nothing failed
                except (SessionError, AudioError) as exc:
                    logger.warning("%s", exc)
                except Exception:
                    logger.exception("connection attempt failed unexpectedly")
                if self._stopping.is_set():
                    break
                if self._reached_connected:
                    self._backoff.reset()
                delay = self._backoff.next_delay()
                logger.info("reconnecting in %.1f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            await self.control.release_ptt("the agent is stopping")
            await self.station.close()
            self.audio_sink.close()
            if health is not None:
                await health.close()
            logger.info("board agent stopped")

    async def _start_health(self) -> HealthServer | None:
        """Serve /health and /metrics on loopback when `health_port` is set."""
        if not self.config.health_port:
            return None
        server = HealthServer(self.health, self.config.health_host, self.config.health_port)
        await server.start()
        return server

    async def _until_stopped(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` (opening the station, or one session) until it ends or `stop()` is
        called; its teardown always completes."""
        task = asyncio.create_task(coro, name="radiocore-agent-session")
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # the session's teardown runs in its `finally`
        if not task.cancelled():
            task.result()  # re-raise what ended the session

    async def _run_session(self) -> None:
        server_url = self._server_url()
        others = () if self._placed else self._other_servers(server_url)
        self._placed = False
        session = Session(
            self.config,
            self.control,
            self._source_factory,
            self._tx_audio,
            on_connected=self._session_connected,
            on_disconnected=self._connected.clear,
            turn_choice=self._turn_choice,
            server_url=server_url,
            other_servers=others,
        )
        self._session = session
        try:
            await session.run()
        finally:
            self._session = None
            self._ended_sessions_underruns += session.audio_underruns
            if not self._reached_connected and session.turn_url is not None:
                self._turn_choice += 1  # that relay transport gave no path: the next one
            if not self._reached_connected and self.config.other_server_urls:
                self._server_choice += 1  # that node could not be reached: the next one
                logger.info("the next attempt goes to the server node %s", self._server_url())

    def _server_urls(self) -> tuple[str, ...]:
        return (self.config.server_url, *self.config.other_server_urls)

    def _server_url(self) -> str:
        urls = self._server_urls()
        return urls[self._server_choice % len(urls)]

    def _other_servers(self, current: str) -> tuple[str, ...]:
        """The nodes the server may place this station on: every configured one but `current`."""
        return tuple(dict.fromkeys(url for url in self._server_urls() if url != current))

    def _follow(self, placed: PlacedElsewhereError) -> None:
        """The next attempt goes to the node the server placed the station on."""
        self._server_choice = self._server_urls().index(placed.server)
        self._placed = True
        self.placements += 1
        logger.info("%s; connecting there", placed)

    def _session_connected(self) -> None:
        self._reached_connected = True
        self.sessions_connected += 1
        self._connected.set()


def create_station(config: AgentConfig) -> StationDriver:
    """The station driver the config's `rig` names."""
    if config.rig == "simulated":
        return SimulatedStation()
    return HamlibStation.from_config(config)
