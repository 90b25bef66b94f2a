"""The board agent: one outbound connection to the server, kept up for as long as it runs.

A session is: Socket.IO connect to `/agent` (board id + secret) → `hello` (the ICE servers to
use) → one RTCPeerConnection with a sendrecv audio transceiver (RX audio out as pre-encoded Opus,
the floor holder's TX audio in) and the `control` data channel → `offer`/answer → connected.
While connected, control messages are applied to the station and `status`/`heartbeat` messages
go back (`StationControl`, which also enforces the agent's own dead-man and TX time-out).
Whatever ends a session (server gone, refused credentials, ICE failure, a closed data channel)
releases PTT at once, tears everything down, and one loop reconnects with exponential backoff.
python-socketio's own reconnection is disabled so that this loop is the only one.

The station (simulated, or a rig through rigctld) lives as long as the agent, across sessions.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

import av
import socketio
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from radiocore import aiortc_hooks
from radiocore_protocol import (
    AGENT_NAMESPACE,
    CONTROL_CHANNEL_LABEL,
    AgentAuth,
    AgentOffer,
    AgentWelcome,
    Answer,
    ErrorBody,
    ErrorCode,
    Heartbeat,
    ProtocolError,
    StationMessage,
    Status,
    decode_payload,
    encode,
    to_builtins,
)

from .audio_sink import AudioSink
from .audio_source import AudioSource
from .backoff import Backoff
from .config import AgentConfig, AudioSpec
from .errors import AudioError, SessionError
from .hamlib_station import HamlibStation
from .opus_track import OpusPacketTrack
from .station import SimulatedStation, StationDriver
from .station_control import StationControl

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Status and heartbeats are skipped rather than queued behind a stalled data channel.
MAX_CHANNEL_BUFFERED_BYTES: Final = 64 * 1024
#: Bound on closing the peer connection and the socket at teardown.
TEARDOWN_STEP_TIMEOUT_S: Final = 5.0
#: Longest server refusal text the agent parses and logs.
MAX_REFUSAL_CHARS: Final = 1024


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
        self._source_factory = audio_source_factory or (lambda: AudioSource.from_spec(source_spec))
        self.audio_sink = (
            audio_sink
            if audio_sink is not None
            else AudioSink.from_spec(AudioSpec.parse_sink(config.audio_sink))
        )
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, rng)
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._reached_connected = False
        #: The current session's RX track (for its counters), None between sessions.
        self.rx_track: OpusPacketTrack | None = None
        #: Sessions that reached the connected state.
        self.sessions_connected = 0
        #: TX audio frames discarded because PTT was off.
        self.tx_frames_dropped = 0

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
        logger.info(
            "board agent for board %s, server %s, rig %s",
            self.config.board_id,
            self.config.server_url,
            self.config.rig,
        )
        try:
            await self._until_stopped(self.station.open())
            while not self._stopping.is_set():
                self._reached_connected = False
                try:
                    await self._until_stopped(self._run_session())
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
            logger.info("board agent stopped")

    async def _until_stopped(self, session: Coroutine[Any, Any, None]) -> None:
        """Run `session` until it ends or `stop()` is called; its teardown always completes."""
        task = asyncio.create_task(session, name="radiocore-agent-session")
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

    # -----------------------------------------------------------------------------------------
    # One session

    async def _run_session(self) -> None:
        config = self.config
        link_lost = asyncio.Event()
        lost_reasons: list[str] = []

        def lose(reason: str) -> None:
            if not link_lost.is_set():
                lost_reasons.append(reason)
                link_lost.set()

        tasks: set[asyncio.Task[None]] = set()

        def spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
            task = asyncio.create_task(coro, name=f"radiocore-agent-{name}")
            tasks.add(task)
            task.add_done_callback(lambda done: self._task_done(done, name, lose))

        refusals: list[object] = []
        # handle_sigint=False: otherwise engineio installs a SIGINT handler on connect that
        # cancels every task in the loop, bypassing the agent's clean shutdown
        sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, logger=False, engineio_logger=False
        )
        sio.on("connect_error", lambda data=None: refusals.append(data), namespace=AGENT_NAMESPACE)
        sio.on(
            "disconnect",
            lambda reason=None: lose(f"the server connection closed ({reason})"),
            namespace=AGENT_NAMESPACE,
        )
        sio.on("error", _log_server_error, namespace=AGENT_NAMESPACE)

        pc: RTCPeerConnection | None = None
        track: OpusPacketTrack | None = None
        try:
            try:
                async with asyncio.timeout(config.connect_timeout_s):
                    await self._connect_socket(sio, refusals)
                    welcome = await self._call(sio, "hello", {}, AgentWelcome, link_lost)
                    logger.info(
                        "server knows this board as %r; %d ICE server(s)",
                        welcome.name,
                        len(welcome.ice_servers),
                    )
                    # always an explicit list: with None aiortc falls back to Google's STUN
                    ice_servers = [
                        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                        for s in welcome.ice_servers
                    ]
                    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
                    track = OpusPacketTrack(self._source_factory(), bitrate=config.opus_bitrate)
                    self.rx_track = track
                    track.on("ended", lambda: lose("the RX audio track ended"))
                    pc.addTransceiver(track, direction="sendrecv")
                    channel = pc.createDataChannel(CONTROL_CHANNEL_LABEL, ordered=True)
                    channel_open = asyncio.Event()
                    channel.on("open", channel_open.set)
                    channel.on("close", lambda: lose("the control channel closed"))
                    channel.on("message", self.control.receive)
                    self._watch_peer_connection(pc, lose, spawn)

                    await pc.setLocalDescription(await pc.createOffer())
                    offer = AgentOffer(type="offer", sdp=pc.localDescription.sdp)
                    answer = await self._call(sio, "offer", to_builtins(offer), Answer, link_lost)
                    await pc.setRemoteDescription(
                        RTCSessionDescription(sdp=answer.sdp, type=answer.type)
                    )
                    await _race(channel_open.wait(), link_lost, lost_reasons)
            except TimeoutError:
                raise SessionError(
                    f"no connection within {config.connect_timeout_s:g} s "
                    f"(ICE or DTLS did not complete, or the server did not answer)"
                ) from None

            self._reached_connected = True
            self.sessions_connected += 1
            self._connected.set()
            logger.info("connected: RX audio and the control channel are up")
            spawn(self.control.serve(lambda message: _send(channel, message)), "station-control")
            spawn(self._heartbeat_loop(channel), "heartbeat")
            await link_lost.wait()
            raise SessionError(f"connection lost: {lost_reasons[0]}")
        finally:
            self._connected.clear()
            # a `stop()` arriving meanwhile must not cut the teardown short: PTT, the peer
            # connection and the socket are released whatever happens
            teardown = asyncio.ensure_future(self._end_session(tasks, track, pc, sio))
            try:
                await asyncio.shield(teardown)
            except asyncio.CancelledError:
                await teardown
                raise

    async def _end_session(
        self,
        tasks: set[asyncio.Task[None]],
        track: OpusPacketTrack | None,
        pc: RTCPeerConnection | None,
        sio: socketio.AsyncClient,
    ) -> None:
        for task in tasks:
            task.cancel()
        # the transmitter must not stay keyed without a control link: unkey at once, not after
        # the other tasks' teardown (a TX audio write may be finishing)
        await asyncio.gather(
            self.control.release_ptt("the control link is down"),
            asyncio.gather(*tasks, return_exceptions=True),
        )
        if track is not None:
            track.stop()
        self.rx_track = None
        if pc is not None:
            await _bounded("closing the peer connection", pc.close())
        await _bounded("closing the server connection", sio.disconnect())

    async def _connect_socket(self, sio: socketio.AsyncClient, refusals: list[object]) -> None:
        auth = to_builtins(AgentAuth(board_id=self.config.board_id, secret=self.config.secret))
        try:
            await sio.connect(
                self.config.server_url,
                auth=auth,
                namespaces=[AGENT_NAMESPACE],
                transports=["websocket"],
                wait_timeout=self.config.connect_timeout_s,
            )
        except socketio.exceptions.ConnectionError as exc:
            refusal = _connect_refusal(refusals[-1]) if refusals else None
            if refusal is None:
                raise SessionError(f"cannot connect to {self.config.server_url}: {exc}") from None
            code, message = refusal
            if code is ErrorCode.UNAUTHORIZED:
                raise SessionError(
                    f"the server refused this board's credentials (unauthorized: {message}); "
                    "check board_id and the secret"
                ) from None
            detail = f"{code.value}: {message}" if code else message
            raise SessionError(
                f"the server refused the connection to {self.config.server_url} ({detail})"
            ) from None
        logger.info("signaling connected to %s", self.config.server_url)

    async def _call(
        self,
        sio: socketio.AsyncClient,
        event: str,
        data: dict[str, object],
        reply_type: type[T],
        link_lost: asyncio.Event,
    ) -> T:
        """Emit `event` and decode its ack, which must be `{"ok": true, ...reply_type}`."""
        try:
            reply = await _race(
                sio.call(
                    event, data, namespace=AGENT_NAMESPACE, timeout=self.config.connect_timeout_s
                ),
                link_lost,
                [f"the server connection closed while waiting for the {event!r} reply"],
            )
        except socketio.exceptions.TimeoutError:
            raise SessionError(f"the server did not answer {event!r}") from None
        if not isinstance(reply, dict):
            raise SessionError(f"the server's {event!r} reply is not a JSON object")
        if reply.get("ok") is not True:
            error = _parse_refusal(reply.get("error"))
            detail = f"{error.code.value}: {error.message}" if error else "no error given"
            raise SessionError(f"the server refused {event!r} ({detail})")
        try:
            return decode_payload(reply_type, {k: v for k, v in reply.items() if k != "ok"})
        except ProtocolError as exc:
            raise SessionError(f"the server's {event!r} reply is invalid: {exc.message}") from None

    def _watch_peer_connection(
        self,
        pc: RTCPeerConnection,
        lose: Callable[[str], None],
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
    ) -> None:
        def on_state() -> None:
            logger.debug("peer connection %s", pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                lose(f"the peer connection {pc.connectionState}")

        def on_track(remote: MediaStreamTrack) -> None:
            if remote.kind == "audio":
                spawn(self._play_tx_audio(remote), "tx-audio")

        pc.on("connectionstatechange", on_state)
        pc.on("track", on_track)

    @staticmethod
    def _task_done(task: asyncio.Task[None], name: str, lose: Callable[[str], None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, ConnectionError):
            lose(f"{name}: {exc}")
            return
        logger.error("%s task failed", name, exc_info=exc)
        lose(f"the {name} task failed")

    # -----------------------------------------------------------------------------------------
    # Control, status, heartbeat, TX audio

    async def _heartbeat_loop(self, channel: RTCDataChannel) -> None:
        while True:
            _send(channel, Heartbeat(timestamp=time.time()))
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _play_tx_audio(self, track: MediaStreamTrack) -> None:
        """Play the floor holder's voice into the rig, and only while PTT is on (a VOX rig would
        otherwise key on audio the agent did not mean to transmit)."""
        sink = self.audio_sink
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            if not self.control.ptt:
                self.tx_frames_dropped += 1
                continue
            try:
                if sink.live:
                    write = asyncio.ensure_future(asyncio.to_thread(sink.write, frame))
                    try:
                        await asyncio.shield(write)
                    except asyncio.CancelledError:
                        await asyncio.wait({write})  # never close the device mid-write
                        raise
                else:
                    sink.write(frame)
            except AudioError as exc:
                logger.error("TX audio stopped: %s", exc)
                return


def create_station(config: AgentConfig) -> StationDriver:
    """The station driver the config's `rig` names."""
    if config.rig == "simulated":
        return SimulatedStation()
    return HamlibStation.from_config(config)


def _send(channel: RTCDataChannel, message: StationMessage) -> None:
    if channel.readyState != "open":
        return
    # status and heartbeats are refreshed anyway; capabilities, errors and tx_stopped are rare
    # and must arrive
    if (
        isinstance(message, Status | Heartbeat)
        and channel.bufferedAmount > MAX_CHANNEL_BUFFERED_BYTES
    ):
        logger.debug("control channel backed up: skipped a %s", type(message).__name__)
        return
    channel.send(encode(message).decode())  # as text, like the browser sends


async def _race(aw: Awaitable[T], link_lost: asyncio.Event, reasons: list[str]) -> T:
    """Await `aw` unless the link is lost first (then raise `SessionError` with the reason)."""
    task = asyncio.ensure_future(aw)
    lost = asyncio.ensure_future(link_lost.wait())
    finished = False
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finished = task.done()
    finally:
        lost.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if not finished:
        raise SessionError(f"connection lost: {reasons[0] if reasons else 'unknown reason'}")
    return task.result()


async def _bounded(what: str, aw: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(aw, TEARDOWN_STEP_TIMEOUT_S)
    except TimeoutError:
        logger.warning("%s took over %g s; gave up", what, TEARDOWN_STEP_TIMEOUT_S)
    except Exception as exc:
        logger.debug("%s failed: %s", what, exc)


def _parse_refusal(value: object) -> ErrorBody | None:
    """An `{"code", "message"}` error body if `value` is one."""
    try:
        return decode_payload(ErrorBody, value)
    except ProtocolError:
        return None


def _connect_refusal(value: object) -> tuple[ErrorCode | None, str] | None:
    """The code and message of a `connect_error`, in whichever shape python-socketio
    delivered it; None when there is none (e.g. the server was unreachable).

    The protocol's body is `{"code", "message"}`. A python-socketio server that raises
    `ConnectionRefusedError(body)` sends `{"message": str(body)}`; one that raises
    `ConnectionRefusedError(text, body)` sends `{"message": text, "data": body}`.
    """
    if not isinstance(value, dict):
        return None
    for candidate in (value, value.get("data")):
        body = _parse_refusal(candidate)
        if body is not None:
            return body.code, body.message
    text = value.get("message")
    if not isinstance(text, str):
        return None
    if len(text) <= MAX_REFUSAL_CHARS:
        try:
            literal = ast.literal_eval(text)  # the str() of a dict body; evaluates no code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            literal = None
        body = _parse_refusal(literal)
        if body is not None:
            return body.code, body.message
    code = ErrorCode.UNAUTHORIZED if "unauthorized" in text.lower() else None
    return code, text[:MAX_REFUSAL_CHARS]


def _log_server_error(data: object = None) -> None:
    error = _parse_refusal(data)
    if error is not None:
        logger.warning("server error %s: %s", error.code.value, error.message)
    else:
        logger.warning("server error: %r", data)
