"""BoardAgent without a server: reconnect loop, clean stop, control → station, status/heartbeat,
TX time-out, dead-man release, TX audio gating. (The end-to-end test against the real server
lives with the server.)"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from pathlib import Path

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from board_agent.agent import (
    CONTROL_QUEUE_SIZE,
    BoardAgent,
    _connect_refusal,
    use_ice_host_addresses,
)
from board_agent.audio_sink import RawFileSink
from board_agent.config import AgentConfig
from board_agent.station import SimulatedStation
from signaling.protocol import (
    Heartbeat,
    OperatorMessage,
    Ptt,
    Status,
    decode_station_message,
)

BOARD = "12345678-1234-4234-8234-123456789abc"
SECRET = "s3cret-s3cret-s3cret"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def make_config(**changes: object) -> AgentConfig:
    values: dict[str, object] = {
        "server_url": f"http://127.0.0.1:{closed_port()}",
        "board_id": BOARD,
        "secret": SECRET,
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.1,
        "status_interval_s": 0.05,
        "heartbeat_interval_s": 0.05,
        "connect_timeout_s": 2.0,
        **changes,
    }
    config = AgentConfig(**values)  # type: ignore[arg-type]
    config.validate()
    return config


async def test_retries_an_unreachable_server_and_stops_cleanly(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="board_agent")
    sink = RawFileSink(str(tmp_path / "tx.raw"))
    agent = BoardAgent(make_config(), audio_sink=sink, rng=random.Random(1))
    runner = asyncio.create_task(agent.run())
    await asyncio.sleep(0.6)
    agent.stop()
    await asyncio.wait_for(runner, 3)
    failures = [r for r in caplog.records if "cannot connect to http://127.0.0.1" in r.message]
    assert len(failures) >= 4  # 20, 40, 80, 100, 100 ms … between attempts
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


def feed(agent: BoardAgent, queue: asyncio.Queue[OperatorMessage], *raw: str | bytes) -> None:
    for data in raw:
        agent._on_control_message(data, queue)


async def test_control_messages_reach_the_station_invalid_ones_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = ObservedStation()
    agent = BoardAgent(make_config(), station=station)
    queue: asyncio.Queue[OperatorMessage] = asyncio.Queue(maxsize=CONTROL_QUEUE_SIZE)
    changed = asyncio.Event()
    feed(
        agent,
        queue,
        '{"type":"freq","value":7074000}',
        "not json",
        '{"type":"mode","value":"LSB"}',
        '{"type":"mode","value":"SSB"}',
        '{"type":"launch","value":1}',
        b'{"type":"power","value":10}',
        '{"type":"ptt","state":true,"extra":1}',
        '{"type":"ptt","state":true}',
    )
    assert queue.qsize() == 4
    loop_task = asyncio.create_task(agent._control_loop(queue, changed))
    try:
        await asyncio.wait_for(station.wait_ptt(True), 2)
    finally:
        loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
        agent._cancel_tx_timer()
    status = await station.status()
    assert (status.freq, status.mode, status.power, status.ptt) == (7_074_000, "LSB", 10, True)
    assert changed.is_set()
    ignored = [r.message for r in caplog.records if "ignored a control message" in r.message]
    assert len(ignored) == 4
    assert any("unknown_message" in m for m in ignored)


async def test_full_control_queue_keeps_the_newest() -> None:
    agent = BoardAgent(make_config())
    queue: asyncio.Queue[OperatorMessage] = asyncio.Queue(maxsize=CONTROL_QUEUE_SIZE)
    for n in range(CONTROL_QUEUE_SIZE + 5):
        feed(agent, queue, f'{{"type":"freq","value":{1000 + n}}}')
    assert queue.qsize() == CONTROL_QUEUE_SIZE
    items = [queue.get_nowait() for _ in range(CONTROL_QUEUE_SIZE)]
    assert getattr(items[-1], "value", None) == 1000 + CONTROL_QUEUE_SIZE + 4


async def test_tx_time_out_releases_ptt(caplog: pytest.LogCaptureFixture) -> None:
    station = ObservedStation()
    agent = BoardAgent(make_config(tx_timeout_s=0.2), station=station)
    queue: asyncio.Queue[OperatorMessage] = asyncio.Queue(maxsize=CONTROL_QUEUE_SIZE)
    loop_task = asyncio.create_task(agent._control_loop(queue, asyncio.Event()))
    try:
        feed(agent, queue, '{"type":"ptt","state":true}')
        await asyncio.wait_for(station.wait_ptt(True), 2)
        keyed_at = asyncio.get_running_loop().time()
        await asyncio.wait_for(station.wait_ptt(False), 2)
        keyed_for = asyncio.get_running_loop().time() - keyed_at
    finally:
        loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
    assert 0.15 <= keyed_for <= 0.5
    assert any("TX time-out" in r.message for r in caplog.records)


async def test_dead_man_releases_ptt() -> None:
    station = SimulatedStation(rng=random.Random(0))
    agent = BoardAgent(make_config(), station=station)
    await station.apply(Ptt(state=True))
    await agent._release_ptt("the control link is down")
    assert (await station.status()).ptt is False


class RecordingChannel:
    """Stands in for an open RTCDataChannel: records what the agent sends."""

    readyState = "open"  # noqa: N815 - aiortc's attribute names
    bufferedAmount = 0  # noqa: N815

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, data: str) -> None:
        self.sent.append(data)


async def test_status_on_change_and_periodically_heartbeats_periodically() -> None:
    agent = BoardAgent(make_config(status_interval_s=0.1, heartbeat_interval_s=0.1))
    channel = RecordingChannel()
    changed = asyncio.Event()
    tasks = [
        asyncio.create_task(agent._status_loop(channel, changed)),  # type: ignore[arg-type]
        asyncio.create_task(agent._heartbeat_loop(channel)),  # type: ignore[arg-type]
    ]
    try:
        await asyncio.sleep(0.35)
        before = len(channel.sent)
        changed.set()  # a control message was applied
        await asyncio.sleep(0.02)
        after_change = len(channel.sent)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    messages = [decode_station_message(m) for m in channel.sent]
    statuses = [m for m in messages if isinstance(m, Status)]
    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    assert 4 <= len(statuses) <= 7  # t = 0, 0.1, 0.2, 0.3 and one on the change
    assert 3 <= len(heartbeats) <= 6
    assert after_change == before + 1  # the change was reported at once
    assert all(isinstance(m, str) for m in channel.sent)  # text frames, like a browser's


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
    agent = BoardAgent(make_config(), audio_sink=RawFileSink(str(path)))
    await agent._play_tx_audio(FrameTrack(5))  # PTT off: dropped
    assert path.stat().st_size == 0 and agent.tx_frames_dropped == 5
    agent._ptt = True
    await agent._play_tx_audio(FrameTrack(3))
    pcm = np.frombuffer(path.read_bytes(), dtype="<i2")
    assert len(pcm) == 3 * 960 and np.all(pcm == 1234)
    agent.audio_sink.close()


def test_ice_host_addresses_replace_aioice_gathering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_ice_host_addresses(["127.0.0.1", "10.1.2.3", "fd00::5"])
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1", "10.1.2.3"]
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "10.1.2.3", "fd00::5"]
    assert aioice.ice.get_host_addresses(False, True) == ["fd00::5"]


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
        # ConnectionRefusedError(body): python-socketio sends str(body)
        (
            {"message": str({"code": "unauthorized", "message": "wrong secret"})},
            ("unauthorized", "wrong secret"),
        ),
        ({"message": "Connection rejected by server"}, (None, "Connection rejected by server")),
        ({"message": "Unauthorized"}, ("unauthorized", "Unauthorized")),
        ("Connection error", None),
    ],
)
def test_connect_refusal_shapes(data: object, expected: tuple[str | None, str] | None) -> None:
    refusal = _connect_refusal(data)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        code, message = refusal
        assert (code.value if code else None, message) == expected
