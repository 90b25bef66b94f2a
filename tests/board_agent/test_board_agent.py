"""BoardAgent without a server, on the simulated station: reconnect loop, clean stop, control →
station, status/capabilities/heartbeat, TX time-out, dead-man release, TX audio gating, the
server's refusals and its placing of the station on another node. (The same safety against a
real rigctld: test_station_control.py; a flood of control messages: test_control_flood.py;
whole sessions against a stand-in server: test_session.py; against the real server:
tests/integration.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import msgspec
import numpy as np
import pytest
import socketio
from aiohttp import web
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from bench.tools import free_port
from board_agent.agent import BoardAgent, create_station
from board_agent.audio_sink import RawFileSink
from board_agent.errors import RigOfflineError
from board_agent.hamlib_station import HamlibStation
from board_agent.server_link import connect_refusal
from board_agent.server_link import placed_elsewhere as placed_elsewhere_body
from board_agent.session import heartbeat_loop
from board_agent.station import SimulatedStation
from board_agent.station_control import StationControl
from board_agent.tx_audio import TxAudioPlayer
from radiocore_protocol import (
    AGENT_NAMESPACE,
    Capabilities,
    Error,
    ErrorCode,
    Heartbeat,
    OperatorMessage,
    Ptt,
    SetFrequency,
    StationMessage,
    Status,
    TxStopped,
    decode_station_message,
    encode,
)
from signaling.namespaces import placed_elsewhere, refuse
from tests.support.waiting import wait_for

from .configs import BOARD, SECRET, make_config


class Outbox:
    """Stands in for the control channel: keeps what the agent sends, decoded strictly, and
    when (`time.monotonic()`, the event loop's clock)."""

    def __init__(self) -> None:
        self.messages: list[StationMessage] = []
        self.sent_at: list[float] = []

    def __call__(self, message: StationMessage) -> None:
        self.messages.append(decode_station_message(encode(message)))
        self.sent_at.append(time.monotonic())

    def of(self, kind: type[StationMessage]) -> list[StationMessage]:
        return [m for m in self.messages if isinstance(m, kind)]


@contextlib.asynccontextmanager
async def serving(control: StationControl) -> AsyncIterator[Outbox]:
    """One session of `control` (its station opened), ended as the agent ends one."""
    await control.station.open()
    outbox = Outbox()
    task = asyncio.create_task(control.serve(outbox))
    try:
        yield outbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await control.release_ptt("the test is over")
        await control.station.close()


async def test_retries_an_unreachable_server_and_stops_cleanly(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="board_agent")
    sink = RawFileSink(str(tmp_path / "tx.raw"))
    agent = BoardAgent(make_config(), audio_sink=sink, rng=random.Random(1))
    runner = asyncio.create_task(agent.run())

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot connect to http://127.0.0.1" in r.message]

    # 20, 40, 80, 100, 100 ms … between attempts: ~0.3 s for four when the machine is idle
    retried = await wait_for(lambda: len(failures()) >= 4, seconds=15)
    agent.stop()
    await asyncio.wait_for(runner, 3)
    assert retried, [r.getMessage() for r in caplog.records]
    assert not agent.connected and agent.sessions_connected == 0
    assert any("board agent stopped" in r.message for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert sink._file.closed  # the agent owns the sink


async def test_stop_during_backoff_is_prompt() -> None:
    agent = BoardAgent(make_config(reconnect_min_s=30.0, reconnect_max_s=60.0))
    runner = asyncio.create_task(agent.run())
    await asyncio.sleep(0.2)  # first attempt failed, now waiting 15-30 s
    agent.stop()
    await asyncio.wait_for(runner, 1)


class ObservedStation(SimulatedStation):
    """A simulated station a test can wait on: `wait_ptt(state)` returns once PTT is there."""

    def __init__(self) -> None:
        super().__init__(rng=random.Random(0))
        self._ptt_changed = asyncio.Condition()

    async def apply(self, message: OperatorMessage) -> None:
        await super().apply(message)
        async with self._ptt_changed:
            self._ptt_changed.notify_all()

    async def wait_ptt(self, state: bool) -> None:
        async with self._ptt_changed:
            await self._ptt_changed.wait_for(lambda: self.ptt is state)


def feed(control: StationControl, *raw: str | bytes) -> None:
    for data in raw:
        control.receive(data)


async def test_control_messages_reach_the_station_invalid_ones_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = ObservedStation()
    control = BoardAgent(make_config(), station=station).control
    feed(
        control,
        '{"type":"freq","value":7074000}',
        "not json",
        '{"type":"mode","value":"LSB"}',
        '{"type":"mode","value":"SSB"}',
        '{"type":"launch","value":1}',
        b'{"type":"power","value":10}',
        '{"type":"ptt","state":true,"extra":1}',
        '{"type":"keepalive"}',
        '{"type":"ptt","state":true}',
    )
    assert control._queue.qsize() == 4  # the keep-alive is not queued
    async with serving(control):
        await asyncio.wait_for(station.wait_ptt(True), 2)
        status = await station.status()
    assert (status.freq, status.mode, status.power, status.ptt) == (7_074_000, "LSB", 10, True)
    ignored = [r.message for r in caplog.records if "ignored a control message" in r.message]
    assert len(ignored) == 4
    assert any("unknown_message" in m for m in ignored)


async def test_tuning_behind_a_slow_rig_keeps_the_newest_and_every_ptt_change() -> None:
    config = make_config(control_queue_size=8)
    control = BoardAgent(config).control
    feed(control, '{"type":"ptt","state":true}')
    feed(control, '{"type":"ptt","state":false}')
    for n in range(config.control_queue_size + 5):  # a flood of tuning behind a slow rig
        feed(control, f'{{"type":"freq","value":{1000 + n}}}')
    items = [control._queue.get_nowait() for _ in range(control._queue.qsize())]
    assert items == [Ptt(state=True), Ptt(state=False), SetFrequency(value=1012)]


async def test_keepalives_hold_the_dead_man_the_tx_time_out_still_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = ObservedStation()
    control = BoardAgent(make_config(tx_timeout_s=1.0, deadman_s=0.5), station=station).control
    loop = asyncio.get_running_loop()
    async with serving(control) as outbox:
        fed_at = loop.time()
        feed(control, '{"type":"ptt","state":true}')
        await asyncio.wait_for(station.wait_ptt(True), 2)
        while station.ptt and loop.time() - fed_at < 2:  # keep-alives well within 0.5 s
            feed(control, '{"type":"keepalive"}')
            await asyncio.sleep(0.05)
        keyed_for = loop.time() - fed_at
    # released within the loop's bound, by the time-out, and never before it (measured from
    # the press: when the key is noticed here can be late on a busy machine)
    assert not station.ptt and keyed_for >= 0.99, keyed_for
    assert control.tx_stops == ["timeout"] and not control.ptt
    assert TxStopped(reason="timeout") in outbox.messages
    assert any("TX time-out" in r.message for r in caplog.records)


async def test_dead_man_releases_ptt_without_keepalives() -> None:
    station = ObservedStation()
    control = BoardAgent(make_config(deadman_s=0.5), station=station).control
    loop = asyncio.get_running_loop()
    async with serving(control) as outbox:
        fed_at = loop.time()
        feed(control, '{"type":"ptt","state":true}')
        await asyncio.wait_for(station.wait_ptt(True), 2)
        await asyncio.wait_for(station.wait_ptt(False), 2)  # released, and soon
        keyed_for = loop.time() - fed_at
    # never before the dead-man time from the last message (the press); when it is noticed here
    # can be late on a busy machine, so only the wait above bounds it from above
    assert keyed_for >= 0.49, keyed_for
    assert outbox.of(TxStopped) == [TxStopped(reason="deadman")]


async def test_losing_the_link_releases_ptt() -> None:
    station = SimulatedStation(rng=random.Random(0))
    control = BoardAgent(make_config(), station=station).control
    feed(control, '{"type":"freq","value":7074000}')
    await station.apply(Ptt(state=True))
    await control.release_ptt("the control link is down")
    assert (await station.status()).ptt is False
    assert control._queue.empty()  # a dead session's commands are never applied


async def test_refused_commands_are_reported_with_their_type() -> None:
    control = BoardAgent(make_config()).control
    async with serving(control) as outbox:
        feed(control, '{"type":"freq","value":2000000000}')
        assert await wait_for(lambda: bool(outbox.of(Error)), seconds=2, step=0.01)
        feed(control, '{"type":"freq","value":7074000}')  # (queued with it, it would replace it)
        for _ in range(100):
            if (await control.station.status()).freq == 7_074_000:
                break
            await asyncio.sleep(0.01)
    (error,) = outbox.of(Error)
    assert isinstance(error, Error)
    assert (error.code, error.ref) == (ErrorCode.BAD_REQUEST, "freq")
    assert "outside the rig's frequency ranges" in error.message


class FailingPttStation(SimulatedStation):
    """A station whose rig fails PTT commands of the given state (counting every attempt)."""

    def __init__(self, failing: bool) -> None:
        super().__init__(rng=random.Random(0))
        self.failing = failing
        self.attempts: list[bool] = []

    async def apply(self, message: OperatorMessage) -> None:
        if isinstance(message, Ptt):
            self.attempts.append(message.state)
            if message.state is self.failing:
                raise RigOfflineError("the rig is offline (rigctld does not answer)")
        await super().apply(message)


async def test_a_failed_release_counts_as_released_and_is_reported() -> None:
    station = FailingPttStation(failing=False)
    control = BoardAgent(make_config(), station=station).control
    async with serving(control) as outbox:
        feed(control, '{"type":"ptt","state":true}', '{"type":"ptt","state":false}')
        assert await wait_for(lambda: bool(outbox.of(TxStopped)), seconds=2, step=0.01)
        assert not control.ptt  # tried: the station unkeys as soon as the rig answers
    assert outbox.of(TxStopped) == [TxStopped(reason="rig_error")]
    (error,) = outbox.of(Error)
    assert isinstance(error, Error) and (error.code, error.ref) == (ErrorCode.RIG_ERROR, "ptt")


async def test_a_failed_keying_is_reported_and_unkeyed() -> None:
    station = FailingPttStation(failing=True)
    control = BoardAgent(make_config(), station=station).control
    async with serving(control) as outbox:
        feed(control, '{"type":"ptt","state":true}')
        assert await wait_for(lambda: bool(outbox.of(TxStopped)), seconds=2, step=0.01)
        assert not control.ptt
    assert station.attempts[:2] == [True, False]  # the unkey is attempted at once
    assert outbox.of(TxStopped) == [TxStopped(reason="rig_error")]
    assert [(e.code, e.ref) for e in outbox.of(Error) if isinstance(e, Error)] == [
        (ErrorCode.RIG_ERROR, "ptt")
    ]


class SteadyStation(SimulatedStation):
    """A simulated station whose S-meter does not move: its status changes only on command."""

    async def status(self) -> Status:
        return msgspec.structs.replace(await super().status(), smeter=-73)


async def test_capabilities_first_then_status_on_change_and_as_a_refresh() -> None:
    config = make_config(status_interval_s=0.3, rig_poll_hz=10.0)
    control = BoardAgent(config, station=SteadyStation()).control
    async with serving(control) as outbox:
        await asyncio.sleep(0.45)  # statuses at 0 and 0.3 s; polls every 0.1 s
        before = len(outbox.of(Status))
        feed(control, '{"type":"freq","value":7074000}')
        await asyncio.sleep(0.05)
        after = outbox.of(Status)
    assert isinstance(outbox.messages[0], Capabilities)
    assert isinstance(outbox.messages[1], Status)
    assert len(outbox.of(Capabilities)) == 1  # unchanged: sent once
    assert before == 2
    assert len(after) == 3 and isinstance(after[-1], Status) and after[-1].freq == 7_074_000


async def test_heartbeats_periodically() -> None:
    channel = RecordingChannel()
    task = asyncio.create_task(heartbeat_loop(channel, 0.1, 65536))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.35)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    heartbeats = [decode_station_message(m) for m in channel.sent]
    assert 3 <= len(heartbeats) <= 5 and all(isinstance(m, Heartbeat) for m in heartbeats)
    assert all(isinstance(m, str) for m in channel.sent)  # text frames, like a browser's


class RecordingChannel:
    """Stands in for an open RTCDataChannel: records what the agent sends."""

    readyState = "open"  # noqa: N815 - aiortc's attribute names
    bufferedAmount = 0  # noqa: N815

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, data: str) -> None:
        self.sent.append(data)


def test_the_config_chooses_the_station() -> None:
    assert isinstance(create_station(make_config()), SimulatedStation)
    station = create_station(make_config(rig="rigctld", rigctld_port=4999, rig_timeout_s=0.5))
    assert isinstance(station, HamlibStation)
    assert (station.client.port, station.client.timeout_s) == (4999, 0.5)
    assert station.guard is not None  # a PTT guard, which runs no rigctld
    assert station.guard.settings.rigctld_path == ""
    assert station.guard.settings.timeout_s == 0.6
    hamlib = create_station(make_config(rig="hamlib", rigctld_port=4998, rig_ptt_type="rig"))
    assert isinstance(hamlib, HamlibStation) and hamlib.guard is not None  # it runs rigctld
    assert hamlib.guard.settings.serialize() == [
        "--host", "127.0.0.1", "--port", "4998", "--timeout", "0.6",
        "--rigctld", "rigctld", "--rig-model", "1", "--rig-ptt-type", "RIG",
        "--log-level", "INFO",
    ]  # fmt: skip


class FrameTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    async def recv(self) -> av.AudioFrame:
        if self.count == 0:
            raise MediaStreamError
        self.count -= 1
        data = np.full((1, 1920), 1234, dtype="<i2")
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = 48000
        return frame


async def test_tx_audio_reaches_the_sink_only_while_ptt_is_on(tmp_path: Path) -> None:
    path = tmp_path / "tx.raw"
    sink = RawFileSink(str(path))
    keyed = False
    player = TxAudioPlayer(sink, lambda: keyed)
    await player.play(FrameTrack(5))  # PTT off: dropped
    assert path.stat().st_size == 0 and player.frames_dropped == 5
    keyed = True
    await player.play(FrameTrack(3))
    pcm = np.frombuffer(path.read_bytes(), dtype="<i2")
    assert len(pcm) == 3 * 960 and np.all(pcm == 1234)
    sink.close()


async def test_the_agent_plays_tx_audio_only_while_its_control_keys(tmp_path: Path) -> None:
    path = tmp_path / "tx.raw"
    agent = BoardAgent(make_config(), audio_sink=RawFileSink(str(path)))
    await agent._tx_audio.play(FrameTrack(5))
    assert path.stat().st_size == 0 and agent.tx_frames_dropped == 5
    agent.control._ptt = True
    await agent._tx_audio.play(FrameTrack(3))
    assert path.stat().st_size == 3 * 960 * 2 and agent.tx_frames_dropped == 5
    agent.audio_sink.close()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # the protocol's body, as such
        ({"code": "unauthorized", "message": "wrong secret"}, ("unauthorized", "wrong secret")),
        # ConnectionRefusedError(text, body)
        (
            {"message": "refused", "data": {"code": "unauthorized", "message": "wrong secret"}},
            ("unauthorized", "wrong secret"),
        ),
        ({"message": "Connection rejected by server"}, (None, "Connection rejected by server")),
        ({"message": "Unauthorized"}, ("unauthorized", "Unauthorized")),
        ("Connection error", None),
    ],
)
def test_connect_refusal_shapes(data: object, expected: tuple[str | None, str] | None) -> None:
    refusal = connect_refusal(data)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        code, message = refusal
        assert (code.value if code else None, message) == expected


@contextlib.asynccontextmanager
async def refusing_node(
    refusal: Callable[[], Exception],
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A Socket.IO server on loopback whose `/agent` namespace refuses every connection with
    `refusal()`; (its URL, the `auth` of each attempt)."""
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    auths: list[dict[str, Any]] = []

    class Refusing(socketio.AsyncNamespace):  # type: ignore[misc]
        async def on_connect(self, sid: str, environ: object, auth: Any = None) -> None:
            auths.append(auth)
            raise refusal()

    sio.register_namespace(Refusing(AGENT_NAMESPACE))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/", auths
    finally:
        await runner.cleanup()


def unauthorized() -> Exception:
    return refuse(ErrorCode.UNAUTHORIZED, "unknown board or wrong secret")


@pytest.mark.parametrize("named_known", [True, False])
async def test_a_placed_agent_goes_to_the_node_named_at_once_and_only_if_it_knows_it(
    named_known: bool,
) -> None:
    """Node A places the station on node B (`placed_elsewhere`, as the server words it): the
    agent told A it could reach B, and connects to B next naming no other node. A node it
    does not know is not followed: the agent goes on to its next node as after any refusal."""
    async with refusing_node(unauthorized) as (b_url, b_auths):
        target = b_url if named_known else "http://elsewhere.example.org/"
        async with refusing_node(lambda: placed_elsewhere(target, "node-b")) as (a_url, a_auths):
            config = make_config(server_url=a_url, other_server_urls=(b_url,))
            agent = BoardAgent(config, rng=random.Random(1))
            runner = asyncio.create_task(agent.run())
            try:
                assert await wait_for(lambda: len(b_auths) >= 1, seconds=10)
            finally:
                agent.stop()
                await asyncio.wait_for(runner, 5)
    assert a_auths[0]["other_servers"] == [b_url]
    assert a_auths[0]["board_id"] == BOARD
    if named_known:
        # B refuses (unauthorized): the agent moves on to A, which places it on B again
        assert agent.placements >= 1
        assert all("other_servers" not in auth for auth in b_auths), "placed twice in a row"
    else:
        assert agent.placements == 0
        assert b_auths[0]["other_servers"] == [a_url]  # an ordinary next attempt


@pytest.mark.parametrize(
    ("data", "server"),
    [
        (
            {
                "message": "m",
                "data": {
                    "code": "placed_elsewhere",
                    "message": "m",
                    "server": "https://n2.example.org/",
                },
            },
            "https://n2.example.org/",
        ),
        ({"message": "m", "data": {"code": "unauthorized", "message": "m"}}, None),
        ({"message": "m", "data": {"code": "placed_elsewhere", "message": "m"}}, None),
        (
            {
                "message": "m",
                "data": {
                    "code": "placed_elsewhere",
                    "message": "m",
                    "server": "file:///etc/passwd",
                },
            },
            None,
        ),
        ("Connection error", None),
    ],
)
def test_placed_elsewhere_shapes(data: object, server: str | None) -> None:
    placed = placed_elsewhere_body(data)
    assert (placed.server if placed is not None else None) == server
