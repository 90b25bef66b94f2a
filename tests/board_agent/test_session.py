"""Whole sessions of a `BoardAgent` against a stand-in server in the same process: a
python-socketio `/agent` namespace that checks the credentials and answers `hello` and `offer`
with a real aiortc peer. What the server receives on the control channel is what the test
checks: the agent connects, applies control, reports status, releases PTT when the server goes
away, reconnects, and says clearly when its credentials are refused."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiortc import RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from board_agent.agent import BoardAgent
from board_agent.session import first_turn_url, rotate_turn_urls
from radiocore import aiortc_hooks
from radiocore_protocol import (
    AGENT_NAMESPACE,
    Capabilities,
    StationMessage,
    Status,
    decode_station_message,
)
from tests.support.rigctld import free_port
from tests.support.waiting import wait_for

from .configs import BOARD, SECRET, make_config


class StandInServer:
    """Just enough of the server's `/agent` side: credentials, `hello`, `offer` (answered by
    an aiortc peer), and every control-channel message the agent sends, decoded strictly."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        self.app = web.Application()
        self.sio.attach(self.app)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runner = web.AppRunner(self.app)
        self.sids: list[str] = []
        self.pcs: list[RTCPeerConnection] = []
        self.channel: RTCDataChannel | None = None
        self.received: list[StationMessage] = []
        self.sio.on("connect", self._connect, namespace=AGENT_NAMESPACE)
        self.sio.on("hello", self._hello, namespace=AGENT_NAMESPACE)
        self.sio.on("offer", self._offer, namespace=AGENT_NAMESPACE)

    async def _connect(self, sid: str, environ: object, auth: object) -> None:
        if auth != {"board_id": BOARD, "secret": SECRET}:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"code": "unauthorized", "message": "wrong secret"}
            )
        self.sids.append(sid)

    async def _hello(self, sid: str, data: object) -> dict[str, Any]:
        return {"ok": True, "board_id": BOARD, "name": "Test board", "ice_servers": []}

    async def _offer(self, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        pc = RTCPeerConnection()
        self.pcs.append(pc)

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            self.channel = channel
            channel.on("message", lambda m: self.received.append(decode_station_message(m)))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"ok": True, "type": "answer", "sdp": pc.localDescription.sdp}

    def statuses(self) -> list[Status]:
        return [m for m in self.received if isinstance(m, Status)]

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        await self.runner.cleanup()


@contextlib.asynccontextmanager
async def running(agent: BoardAgent) -> AsyncIterator[asyncio.Task[None]]:
    runner = asyncio.create_task(agent.run())
    try:
        yield runner
    finally:
        agent.stop()
        await asyncio.wait_for(runner, 10)
        aiortc_hooks.set_host_addresses(())  # process-wide: leave it as other tests expect


@pytest.fixture
async def server() -> AsyncIterator[StandInServer]:
    stand_in = StandInServer()
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.close()


async def test_a_session_serves_control_and_a_lost_server_unkeys_and_reconnects(
    server: StandInServer,
) -> None:
    config = make_config(server_url=server.url, ice_host_addresses=("127.0.0.1",), deadman_s=5.0)
    agent = BoardAgent(config)
    async with running(agent):
        await asyncio.wait_for(agent.wait_connected(), 10)
        assert agent.connected and agent.rx_track is not None
        assert await wait_for(
            lambda: any(isinstance(m, Capabilities) for m in server.received), seconds=5, step=0.02
        )
        assert server.channel is not None
        server.channel.send('{"type":"freq","value":7074000}')
        server.channel.send('{"type":"ptt","state":true}')
        assert await wait_for(
            lambda: any(s.freq == 7_074_000 and s.ptt for s in server.statuses()),
            seconds=5,
            step=0.02,
        )

        await server.sio.disconnect(server.sids[0], namespace=AGENT_NAMESPACE)
        # unkeyed with the link
        assert await wait_for(lambda: not agent.control.ptt, seconds=2, step=0.02)
        status = await agent.station.status()
        assert status.ptt is False and status.freq == 7_074_000
        assert await wait_for(lambda: agent.sessions_connected == 2, seconds=10, step=0.02)
        assert len(server.sids) == 2
    assert not agent.connected and agent.rx_track is None


async def test_refused_credentials_are_reported_as_such(
    server: StandInServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="board_agent")
    agent = BoardAgent(make_config(server_url=server.url, secret="not-the-secret-at-all"))
    async with running(agent):
        assert await wait_for(
            lambda: any("refused this board's credentials" in r.message for r in caplog.records),
            seconds=5,
            step=0.02,
        )
    refusals = [r.message for r in caplog.records if "refused this board's" in r.message]
    assert "(unauthorized: wrong secret); check board_id and the secret" in refusals[0]
    assert agent.sessions_connected == 0 and server.sids == []
    assert all("not-the-secret-at-all" not in r.getMessage() for r in caplog.records)


def test_the_agent_puts_the_next_turn_url_first_after_a_failed_attempt() -> None:
    urls = ["turn:t:3478?transport=udp", "turn:t:3478?transport=tcp", "turns:t:443?transport=tcp"]
    assert rotate_turn_urls(urls, 0) == urls
    assert rotate_turn_urls(urls, 1)[0] == "turn:t:3478?transport=tcp"
    assert rotate_turn_urls(urls, 2)[0] == "turns:t:443?transport=tcp"
    assert rotate_turn_urls(urls, 3) == urls  # round again
    assert sorted(rotate_turn_urls(urls, 1)) == sorted(urls)  # nothing lost
    assert rotate_turn_urls(["stun:s:3478"], 1) == ["stun:s:3478"]
    servers = [
        RTCIceServer(urls=["stun:s:3478"]),
        RTCIceServer(urls=rotate_turn_urls(urls, 1), username="u", credential="p"),
    ]
    assert first_turn_url(servers) == "turn:t:3478?transport=tcp"
    assert first_turn_url([RTCIceServer(urls="stun:s:3478")]) is None
