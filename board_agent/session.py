"""`Session`: one connection of the agent to the server, from connecting to the teardown.

A session is: the server link (Socket.IO `/agent`, board id + secret) → `hello` (the ICE
servers to use) → one RTCPeerConnection with a sendrecv audio transceiver (RX audio out as
pre-encoded Opus, the floor holder's TX audio in, handed to the agent's `TxAudioPlayer`) and the
`control` data channel → `offer`/answer → the channel opens: connected. While connected,
`StationControl` serves the channel and a `heartbeat` goes out every `heartbeat_interval_s`.

Whatever ends the session (reported to its `ConnectionLoss`) ends `run()` with a
`SessionError` saying why. The teardown releases PTT at once — the transmitter must not stay
keyed without a control link — while it stops the session's tasks, then closes the RX track, the
peer connection and the socket (the last two bounded in time); it completes even when the
session is cancelled. A session is used once: `BoardAgent` starts a new one after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from radiocore import aiortc_hooks
from radiocore_protocol import (
    CONTROL_CHANNEL_LABEL,
    AgentHello,
    AgentOffer,
    AgentWelcome,
    Answer,
    Heartbeat,
    StationMessage,
    Status,
    encode,
    to_builtins,
)
from turn.probe import probe_targets, probe_url

from .audio_source import AudioSource
from .config import AgentConfig
from .connection_loss import ConnectionLoss
from .errors import SessionError
from .opus_track import OpusPacketTrack
from .server_link import ServerLink
from .station_control import StationControl
from .tx_audio import TxAudioPlayer

logger = logging.getLogger(__name__)

#: Bound on each TURN transport's allocation check before a connection attempt.
TURN_PROBE_TIMEOUT_S: Final = 2.0
#: Bound on closing the peer connection and the socket at teardown.
TEARDOWN_STEP_TIMEOUT_S: Final = 5.0


class Session:
    """One connection to the server; see the module docstring. `run()` it once.

    `on_connected` is called when the control channel opens, `on_disconnected` when the
    teardown starts (whether or not the session got that far).
    """

    def __init__(
        self,
        config: AgentConfig,
        control: StationControl,
        rx_source_factory: Callable[[], AudioSource],
        tx_audio: TxAudioPlayer,
        *,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None],
        turn_choice: int = 0,
        server_url: str | None = None,
        other_servers: tuple[str, ...] = (),
    ) -> None:
        """`turn_choice`: which of the TURN URLs to put first (aiortc uses only the first and
        never falls back from UDP to TCP: the agent tries the next one after a failed attempt);
        `server_url`: the server node to connect to (default: the config's `server_url`);
        `other_servers`: the other nodes it may place the station on (`ServerLink`)."""
        self._config = config
        self.server_url = server_url or config.server_url
        self._other_servers = other_servers
        self._control = control
        self._rx_source_factory = rx_source_factory
        self._tx_audio = tx_audio
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._loss = ConnectionLoss()
        self._turn_choice = turn_choice
        self._link_stage = "not started"
        #: The TURN URL this session's ICE uses (None: no relay offered).
        self.turn_url: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: This session's RX track (for its counters); None before it exists and after teardown.
        self.rx_track: OpusPacketTrack | None = None
        self._ended_track_underruns = 0

    @property
    def audio_underruns(self) -> int:
        """RX audio frames not ready in time in this session (`OpusPacketTrack.underruns`),
        kept after the teardown."""
        track = self.rx_track
        return self._ended_track_underruns + (track.underruns if track is not None else 0)

    async def run(self) -> None:
        """Connect, then serve until the connection is lost. Always ends with `SessionError`
        (or `CancelledError`); the teardown completes either way."""
        config = self._config
        link = ServerLink(config, self._loss, self.server_url, self._other_servers)
        pc: RTCPeerConnection | None = None
        try:
            try:
                async with asyncio.timeout(config.connect_timeout_s):
                    self._link_stage = "connecting to the server"
                    await link.connect()
                    self._link_stage = "hello"
                    # when the station last confirmed its transmitter unkeyed: a server that
                    # restarted meanwhile closes the record it left open with that time
                    hello = AgentHello(ptt_released_at=self._control.ptt_released_at)
                    welcome = await link.call("hello", to_builtins(hello), AgentWelcome)
                    logger.info(
                        "server knows this board as %r; %d ICE server(s)",
                        welcome.name,
                        len(welcome.ice_servers),
                    )
                    # always an explicit list: with None aiortc falls back to Google's STUN
                    ice_servers = [
                        RTCIceServer(
                            urls=await self._order_turn_urls(s.urls, s.username, s.credential),
                            username=s.username,
                            credential=s.credential,
                        )
                        for s in welcome.ice_servers
                    ]
                    self.turn_url = first_turn_url(ice_servers)
                    relay = "relay" in (welcome.ice_transport_policy, config.ice_transport_policy)
                    pc = RTCPeerConnection(
                        RTCConfiguration(
                            iceServers=ice_servers,
                            iceTransportPolicy=(
                                RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL
                            ),
                            # one transport for audio and data: one TURN allocation, not two
                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                        )
                    )
                    channel, channel_open = self._prepare_peer_connection(pc)
                    await pc.setLocalDescription(await pc.createOffer())
                    offer = AgentOffer(type="offer", sdp=pc.localDescription.sdp)
                    self._link_stage = "offer"
                    answer = await link.call("offer", to_builtins(offer), Answer)
                    self._link_stage = "offered"
                    await pc.setRemoteDescription(
                        RTCSessionDescription(sdp=answer.sdp, type=answer.type)
                    )
                    await self._loss.race(channel_open.wait())
            except TimeoutError:
                raise SessionError(
                    f"no connection within {config.connect_timeout_s:g} s: "
                    f"{self._why_not_connected(pc)}"
                ) from None

            self._on_connected()
            logger.info(
                "connected: RX audio and the control channel are up; media path %s",
                describe_media_path(pc),
            )
            limit = config.max_channel_buffered_bytes
            self._spawn(
                self._control.serve(lambda message: send_station_message(channel, message, limit)),
                "station-control",
            )
            self._spawn(heartbeat_loop(channel, config.heartbeat_interval_s, limit), "heartbeat")
            await self._loss.wait()
            raise SessionError(f"connection lost: {self._loss.reason}")
        finally:
            self._on_disconnected()
            # a cancellation arriving meanwhile must not cut the teardown short: PTT, the peer
            # connection and the socket are released whatever happens
            teardown = asyncio.ensure_future(self._end(link, pc))
            try:
                await asyncio.shield(teardown)
            except asyncio.CancelledError:
                await teardown
                raise

    async def _order_turn_urls(
        self, urls: list[str], username: str | None, password: str | None
    ) -> list[str]:
        """`urls` with the TURN URL to use first: aiortc uses only that one and never falls
        back from UDP to TCP, so with several transports offered the agent asks each for an
        allocation now (at once, each bounded) and takes the first in the server's order that
        grants one; when none answers, the one after the last attempt's (`turn_choice`)."""
        targets = probe_targets([u for u in urls if u.startswith(("turn:", "turns:"))])
        if len(targets) < 2 or username is None or password is None:
            return rotate_turn_urls(urls, self._turn_choice)
        probes = [
            asyncio.ensure_future(
                probe_url(url, parsed, transport, username, password, TURN_PROBE_TIMEOUT_S)
            )
            for url, parsed, transport in targets
        ]
        try:
            for probe in probes:  # in the server's order of preference
                result = await probe
                if result.ok:
                    logger.info("TURN over %s answers: %s first", result.transport, result.url)
                    return [result.url, *(u for u in urls if u != result.url)]
                logger.info("TURN %s: %s", result.url, result.detail)
        finally:
            for probe in probes:
                probe.cancel()
        return rotate_turn_urls(urls, self._turn_choice)

    def _why_not_connected(self, pc: RTCPeerConnection | None) -> str:
        """Which step of a connection attempt did not complete, in an operator's words."""
        if self._link_stage != "offered" or pc is None:
            return f"the server did not answer ({self._link_stage})"
        ice = pc.iceConnectionState
        if ice in ("new", "checking", "failed"):
            sdp = pc.localDescription.sdp if pc.localDescription is not None else ""
            if self.turn_url is None:
                relay = "the server offers no TURN relay"
            elif "typ relay" in sdp:
                relay = f"even the TURN relay ({self.turn_url}) gave no path"
            else:
                relay = f"the TURN relay {self.turn_url} could not be reached"
            return (
                f"ICE found no path to the media server ({ice}): UDP to it may be blocked, "
                f"and {relay}; the next attempt tries the next TURN transport if there is one"
            )
        return f"ICE is {ice} but DTLS or the data channel did not complete"

    def _prepare_peer_connection(
        self, pc: RTCPeerConnection
    ) -> tuple[RTCDataChannel, asyncio.Event]:
        """The RX track, the transceiver, the control channel (and an event set once it is
        open), and the watchers that report the end of the session."""
        lose = self._loss.lose
        track = OpusPacketTrack(self._rx_source_factory(), bitrate=self._config.opus_bitrate)
        self.rx_track = track
        track.on("ended", lambda: lose("the RX audio track ended"))
        pc.addTransceiver(track, direction="sendrecv")
        channel = pc.createDataChannel(CONTROL_CHANNEL_LABEL, ordered=True)
        channel_open = asyncio.Event()
        channel.on("open", channel_open.set)
        channel.on("close", lambda: lose("the control channel closed"))
        channel.on("message", self._control.receive)

        def on_state() -> None:
            logger.debug("peer connection %s", pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                lose(f"the peer connection {pc.connectionState}")

        def on_track(remote: MediaStreamTrack) -> None:
            if remote.kind == "audio":
                self._spawn(self._tx_audio.play(remote), "tx-audio")

        pc.on("connectionstatechange", on_state)
        pc.on("track", on_track)
        return channel, channel_open

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"radiocore-agent-{name}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(done, name))

    def _task_done(self, task: asyncio.Task[None], name: str) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, ConnectionError):
            self._loss.lose(f"{name}: {exc}")
            return
        logger.error("%s task failed", name, exc_info=exc)
        self._loss.lose(f"the {name} task failed")

    async def _end(self, link: ServerLink, pc: RTCPeerConnection | None) -> None:
        for task in self._tasks:
            task.cancel()
        # unkey at once, not after the other tasks' teardown (a TX audio write may be finishing)
        await asyncio.gather(
            self._control.release_ptt("the control link is down"),
            asyncio.gather(*self._tasks, return_exceptions=True),
        )
        if self.rx_track is not None:
            self.rx_track.stop()
            self._ended_track_underruns += self.rx_track.underruns
            self.rx_track = None
        if pc is not None:
            await _bounded("closing the peer connection", pc.close())
        await _bounded("closing the server connection", link.close())


def rotate_turn_urls(urls: list[str], choice: int) -> list[str]:
    """`urls` with TURN URL number `choice` (cyclically) first, the others in order; other
    lists as they are."""
    turn = [u for u in urls if u.startswith(("turn:", "turns:"))]
    if len(turn) < 2:
        return list(urls)
    first = turn[choice % len(turn)]
    return [first, *(u for u in urls if u != first)]


def first_turn_url(servers: list[RTCIceServer]) -> str | None:
    """The TURN URL aiortc will use: the first across the list (aioice takes only that)."""
    for server in servers:
        urls = [server.urls] if isinstance(server.urls, str) else server.urls
        for url in urls:
            if url.startswith(("turn:", "turns:")):
                return url
    return None


def describe_media_path(pc: RTCPeerConnection) -> str:
    """The nominated ICE pair in a log's words: `relay 203.0.113.9:49160 -> host
    198.51.100.10:40002`, or "unknown"."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        pair = aiortc_hooks.nominated_pair(dtls) if dtls is not None else None
        if pair is not None:
            local, remote = pair.local_candidate, pair.remote_candidate
            return (
                f"{local.type} {local.host}:{local.port} -> "
                f"{remote.type} {remote.host}:{remote.port}"
            )
    return "unknown"


async def heartbeat_loop(channel: RTCDataChannel, interval_s: float, max_buffered: int) -> None:
    """Send a `heartbeat` on `channel` every `interval_s`, until cancelled."""
    while True:
        send_station_message(channel, Heartbeat(timestamp=time.time()), max_buffered)
        await asyncio.sleep(interval_s)


def send_station_message(
    channel: RTCDataChannel, message: StationMessage, max_buffered: int
) -> None:
    """Send `message` as text (as the browser sends), if the channel is open. Status and
    heartbeats are refreshed anyway: they are skipped while more than `max_buffered` bytes wait
    on the channel; the rare capabilities, errors and `tx_stopped` must arrive: always sent."""
    if channel.readyState != "open":
        return
    if isinstance(message, Status | Heartbeat) and channel.bufferedAmount > max_buffered:
        logger.debug("control channel backed up: skipped a %s", type(message).__name__)
        return
    channel.send(encode(message).decode())


async def _bounded(what: str, aw: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(aw, TEARDOWN_STEP_TIMEOUT_S)
    except TimeoutError:
        logger.warning("%s took over %g s; gave up", what, TEARDOWN_STEP_TIMEOUT_S)
    except Exception as exc:
        logger.debug("%s failed: %s", what, exc)
