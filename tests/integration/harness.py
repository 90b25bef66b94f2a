"""A real server (in this process), a real board agent (its own process) and real aiortc
operator peers that talk to the server the way the browser console does. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import numpy as np
import socketio
from aiohttp import web
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket

import radiocore_protocol as protocol
from bench.rig_reader import RigReader
from bench.tools import stop_process
from radiocore import aiortc_hooks
from signaling import keys
from signaling.accounts import create_account, register_board
from signaling.app import create_app
from signaling.config import load_server_config
from signaling.server import HANDLER_BOUND_S
from signaling.store import create_store
from tests.media.peers import TonePacketTrack
from tests.support.rigctld import RigctldServer

SAMPLE_RATE = 48000


def tone_of(pcm: np.ndarray) -> tuple[float, float]:
    """(RMS, frequency of the strongest component in Hz) of 48 kHz mono samples."""
    samples = pcm.astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
    if len(samples) < 2:
        return rms, 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return rms, float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))


def band_energy(pcm: np.ndarray, hz: float, width: float = 20.0) -> float:
    """Share of the signal's energy within ±width of `hz`."""
    samples = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[(freqs > hz - width) & (freqs < hz + width)].sum()) / total


@dataclass
class Account:
    email: str
    password: str
    callsign: str
    user_id: str = ""


@dataclass
class LiveServer:
    app: web.Application
    runner: web.AppRunner
    url: str
    port: int
    board_id: str
    board_secret: str
    owner: Account
    other: Account
    other_board_id: str
    data_dir: Path

    async def token(self, account: Account) -> str:
        async with aiohttp.ClientSession() as http:
            reply = await http.post(
                self.url + "api/auth/login",
                json={"email": account.email, "password": account.password},
            )
            body = await reply.json()
            return str(body["token"])


async def seed(data_dir: Path, database_url: str = "") -> tuple[str, str, Account, Account, str]:
    """Two operators, each with a board; the guest may transmit on the owner's board. In
    `database_url` (`create_store`'s; empty: SQLite in `data_dir`)."""
    owner = Account("owner@example.org", "owner-password", "DL1OWN")
    other = Account("other@example.org", "other-password", "DL2OTH")
    async with create_store(database_url, data_dir) as store:
        for account in (owner, other):
            user = await create_account(store, account.email, account.password, account.callsign)
            account.user_id = user.id
        board = await register_board(store, owner.user_id, "Test station")
        other_board = await register_board(store, other.user_id, "Other station")
        await store.set_grant(board.board.id, other.user_id, "transmit")  # a guest operator
    return board.board.id, board.secret, owner, other, other_board.board.id


async def start_server(
    data_dir: Path,
    port: int = 0,
    config: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    **seeded: Any,
) -> LiveServer:
    """The server on `port` (0: any) with `data_dir`'s store (seeded unless `seeded` is given);
    `config`: overrides by dotted key, e.g. `{"floor.deadman_s": 0.6}`; `env`: more
    environment (secrets, which the overrides refuse)."""
    if not seeded:
        database_url = (env or {}).get("RADIOCORE_DATABASE_URL", "")
        board_id, secret, owner, other, other_board = await seed(data_dir, database_url)
        seeded = dict(
            board_id=board_id,
            board_secret=secret,
            owner=owner,
            other=other,
            other_board_id=other_board,
        )
    server_config = load_server_config(
        None,
        {"RADIOCORE_SECRET": "integration-" + "k" * 40, **(env or {})},
        {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(data_dir),
            "ice.host_addresses": ("127.0.0.1",),
            "media_latency_sample_every": 1,
            **(config or {}),
        },
    )
    app = create_app(server_config)
    # as `radiocore serve` stops: handlers still running (a connected agent's or operator's
    # socket) get HANDLER_BOUND_S, not aiohttp's default 60 s, once the clients were closed
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HANDLER_BOUND_S)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    actual = int(runner.addresses[0][1])
    return LiveServer(
        app=app,
        runner=runner,
        url=f"http://127.0.0.1:{actual}/",
        port=actual,
        data_dir=data_dir,
        **seeded,
    )


@dataclass
class AgentProcess:
    """`python -m board_agent`, as a station runs it (secret in the environment)."""

    server: LiveServer
    sink: Path
    tone_hz: int = 1000
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            RADIOCORE_AGENT_SECRET=self.server.board_secret,
            RADIOCORE_AGENT_RECONNECT_MIN_S="0.2",
            RADIOCORE_AGENT_RECONNECT_MAX_S="2",
        )
        self.log = self.sink.with_suffix(".log")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "board_agent",
                    "--server",
                    self.server.url,
                    "--board-id",
                    self.server.board_id,
                    "--audio-source",
                    f"tone:{self.tone_hz}",
                    "--audio-sink",
                    f"raw:{self.sink}",
                    "--ice-host-address",
                    "127.0.0.1",
                    *self.extra_args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def tx_pcm(self) -> np.ndarray:
        """The TX audio the agent played to its sink so far (s16le mono 48 kHz)."""
        if not self.sink.exists():
            return np.zeros(0, dtype=np.int16)
        data = self.sink.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)


def rtc_configuration(joined: dict[str, Any]) -> RTCConfiguration:
    """As the console builds it from a `join` ack: the ICE servers given (TURN credentials
    included), relay-only when the server says so, one transport for audio and data."""
    relay = joined.get("ice_transport_policy") == "relay"
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in joined["ice_servers"]
        ],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL,
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )


class ServerAddress(Protocol):
    """Where a server (or one node of several) answers."""

    @property
    def url(self) -> str: ...


@dataclass
class Operator:
    """An operator program: Socket.IO signaling + one peer connection per board."""

    server: ServerAddress
    token: str
    mic_hz: float | None = None  # None: listen only (recvonly)
    tap: bool = False  # keep RTP packets instead of decoding
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    pc: RTCPeerConnection | None = None
    channel: Any = None
    inbox: list[str] = field(default_factory=list)
    #: The last `join` ack.
    joined: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    packets: list[RtpPacket] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    mic: TonePacketTrack | None = None
    _reader: asyncio.Task[None] | None = None
    _keepalive: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        async def on_presence(data: Any) -> None:
            self.events.append(("presence", data))

        async def on_error(data: Any) -> None:
            self.events.append(("error", data))

        self.sio.on("presence", on_presence, namespace="/operator")
        self.sio.on("error", on_error, namespace="/operator")
        await self.sio.connect(
            self.server.url,
            namespaces=["/operator"],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, data, namespace="/operator", timeout=30)
        return reply

    async def join_and_listen(self, board_id: str) -> dict[str, Any]:
        joined = await self.call("join", {"board_id": board_id})
        self.joined = joined
        if not joined.get("ok"):
            return joined
        self.pc = RTCPeerConnection(rtc_configuration(joined))
        if self.mic_hz is None:
            self.pc.addTransceiver("audio", direction="recvonly")
        else:
            self.mic = TonePacketTrack(frequency=self.mic_hz)
            self.pc.addTransceiver(self.mic, direction="sendrecv")
        self.channel = self.pc.createDataChannel("control")
        self.channel.on("message", self.inbox.append)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await self.call(
            "offer", {"board_id": board_id, "type": "offer", "sdp": self.pc.localDescription.sdp}
        )
        if not reply.get("ok"):
            return reply
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        receiver = self.pc.getTransceivers()[0].receiver
        if self.tap:
            aiortc_hooks.tap_receiver(receiver, self.packets.append)
        else:
            self._reader = asyncio.get_running_loop().create_task(self._read(receiver.track))
        return reply

    async def _read(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            for _ in range(100_000):  # bounded: ~30 min of audio
                frame = await track.recv()
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.frames.append(pcm)

    def pcm(self, last_frames: int) -> np.ndarray:
        frames = self.frames[-last_frames:]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def send(self, text: str) -> None:
        self.channel.send(text)

    def key(self) -> None:
        """Press PTT and keep it pressed, as the console does: keep-alives every 250 ms."""
        self.send(protocol.encode(protocol.Ptt(state=True)).decode())

        async def keepalives() -> None:
            for _ in range(4 * 600):  # bounded: 10 minutes
                await asyncio.sleep(protocol.KEEPALIVE_INTERVAL_S)
                self.send(protocol.encode(protocol.Keepalive()).decode())

        self._keepalive = asyncio.get_running_loop().create_task(keepalives())

    def unkey(self, *, silently: bool = False) -> None:
        """Release PTT; `silently`: stop the keep-alives without saying so (a hung client)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if not silently:
            self.send(protocol.encode(protocol.Ptt(state=False)).decode())

    def messages(self, kind: str) -> list[str]:
        return [m for m in self.inbox if f'"type":"{kind}"' in m]

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._reader is not None:
            self._reader.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def tx_log(url: str, token: str, board_id: str) -> list[dict[str, Any]]:
    """The board's TX log as its owner reads it (`GET /api/boards/{id}/tx-log`), newest first."""
    async with aiohttp.ClientSession() as http:
        reply = await http.get(
            f"{url}api/boards/{board_id}/tx-log", headers={"Authorization": f"Bearer {token}"}
        )
        assert reply.status == 200, await reply.text()
        return list((await reply.json())["sessions"])


async def stop_server(server: LiveServer) -> None:
    await server.runner.cleanup()


def sfu_of(server: LiveServer) -> Any:
    return server.app[keys.SFU]


class Rigctld(RigctldServer):
    """Hamlib's dummy rig behind a real rigctld on a loopback port, and readers of its state."""

    def reader(self) -> RigReader:
        return RigReader.connect(self.port)
