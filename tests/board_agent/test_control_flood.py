"""A flood of control messages (3000 `freq` in a second reach the agent after the server's rate
limit): tuning coalesces, so the rig ends on the last value after a handful of commands and the
log stays quiet; a release behind the flood is still applied; what the agent does shed (a queue
full of PTT changes) is reported to the operators (`error` rate_limited) and to the log, each at
most once a second. Against the simulated station and a real rigctld (Hamlib's dummy rig)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import pytest

from board_agent.agent import BoardAgent
from board_agent.hamlib_station import HamlibStation
from board_agent.station import SimulatedStation
from radiocore_protocol import (
    Error,
    ErrorCode,
    OperatorMessage,
    Ptt,
    SetFrequency,
    Status,
)
from tests.support.rigctld import RigctldServer, rig_freq, rig_ptt
from tests.support.waiting import wait_for

from .configs import make_config
from .test_board_agent import Outbox, serving
from .test_hamlib_station import RecordingClient

FLOOD = 3000
PTT_ON = '{"type":"ptt","state":true}'
PTT_OFF = '{"type":"ptt","state":false}'


def freq_hz(n: int) -> int:
    return 7_000_000 + 10 * n


def freq(n: int) -> str:
    return f'{{"type":"freq","value":{freq_hz(n)}}}'


LAST_HZ = freq_hz(FLOOD - 1)


class CountingStation(SimulatedStation):
    """A simulated rig that notes every command that reaches it; while `gate` is clear each
    command waits for it (a rig that has stopped keeping up)."""

    def __init__(self) -> None:
        super().__init__(rng=random.Random(0))
        self.applied: list[OperatorMessage] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def apply(self, message: OperatorMessage) -> None:
        await self.gate.wait()
        self.applied.append(message)
        await super().apply(message)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def last_status(outbox: Outbox) -> Status | None:
    statuses = [m for m in outbox.messages if isinstance(m, Status)]
    return statuses[-1] if statuses else None


async def test_a_burst_of_freq_ends_on_the_last_value_after_one_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = CountingStation()
    control = BoardAgent(make_config(), station=station).control
    async with serving(control) as outbox:
        for n in range(FLOOD):
            control.receive(freq(n))
        # what the operators see: the station's status on the last frequency
        assert await wait_for(
            lambda: (s := last_status(outbox)) is not None and s.freq == LAST_HZ,
            seconds=2,
            step=0.01,
        )
        await asyncio.sleep(0.1)  # nothing more reaches the rig
    tuned = [m for m in station.applied if isinstance(m, SetFrequency)]
    assert tuned == [SetFrequency(value=LAST_HZ)]
    assert station.freq == LAST_HZ
    assert warnings_of(caplog) == []
    assert outbox.of(Error) == []  # nothing was dropped: nothing to report


async def test_a_release_behind_a_flood_is_applied_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = CountingStation()
    control = BoardAgent(make_config(deadman_s=5.0), station=station).control
    async with serving(control) as outbox:
        control.receive(PTT_ON)
        assert await wait_for(lambda: station.ptt, seconds=2, step=0.01)
        station.gate.clear()  # the rig stops keeping up
        control.receive(freq(0))
        assert await wait_for(
            lambda: control._queue.empty(), seconds=2, step=0.01
        )  # freq 0 waits at the rig
        for n in range(1, FLOOD):
            control.receive(freq(n))
        control.receive(PTT_OFF)
        for n in range(FLOOD, 2 * FLOOD):  # the operator tunes away after the release
            control.receive(freq(n))
        station.gate.set()
        assert await wait_for(lambda: station.freq == freq_hz(2 * FLOOD - 1), seconds=2, step=0.01)
        status = await station.status()
    assert status.ptt is False and not control.ptt
    assert station.applied == [
        Ptt(state=True),
        SetFrequency(value=freq_hz(0)),
        SetFrequency(value=LAST_HZ),  # where the operator was when releasing
        Ptt(state=False),
        SetFrequency(value=freq_hz(2 * FLOOD - 1)),
        Ptt(state=False),  # the end of the session
    ]
    assert warnings_of(caplog) == []
    assert outbox.of(Error) == []


async def test_shed_commands_are_reported_at_most_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = CountingStation()
    control = BoardAgent(make_config(deadman_s=5.0), station=station).control
    loop = asyncio.get_running_loop()
    async with serving(control) as outbox:
        station.gate.clear()  # the rig hangs: PTT changes pile up, the queue must shed
        started = loop.time()
        while loop.time() - started < 2.5:
            for _ in range(10):
                control.receive(PTT_ON)
                control.receive(PTT_OFF)
            await asyncio.sleep(0.05)
        station.gate.set()
        assert await wait_for(control._queue.empty, seconds=2, step=0.01)
    reports = [
        (at, m)
        for at, m in zip(outbox.sent_at, outbox.messages, strict=True)
        if isinstance(m, Error) and m.code is ErrorCode.RATE_LIMITED
    ]
    assert 2 <= len(reports) <= 3, reports  # at ~0, ~1 and ~2 s
    times = [at for at, _ in reports]
    assert all(later - earlier >= 0.99 for earlier, later in itertools.pairwise(times))
    for _, report in reports:
        assert isinstance(report, Error)
        assert report.ref == "ptt" and "dropped" in report.message
    # the log: one line per report, and one for what was shed after the last one
    warnings = warnings_of(caplog)
    assert len(warnings) <= len(reports) + 1, warnings
    assert all("dropped" in w for w in warnings)
    assert station.ptt is False


async def test_a_burst_of_freq_costs_rigctld_one_command(
    rigctld: RigctldServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient("127.0.0.1", rigctld.port)
    config = make_config(rig="rigctld", rigctld_port=rigctld.port)
    control = BoardAgent(config, station=HamlibStation(client)).control
    async with serving(control) as outbox:
        for n in range(FLOOD):
            control.receive(freq(n))
        for _ in range(200):
            if await rig_freq(rigctld.port) == LAST_HZ:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
    assert await rig_freq(rigctld.port) == LAST_HZ
    assert [c for c in client.commands() if c.startswith("set_freq")] == [f"set_freq {LAST_HZ}"]
    assert warnings_of(caplog) == []
    assert outbox.of(Error) == []


async def test_freq_spread_over_a_second_costs_rigctld_at_most_one_command_per_burst(
    rigctld: RigctldServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient("127.0.0.1", rigctld.port)
    config = make_config(rig="rigctld", rigctld_port=rigctld.port)
    control = BoardAgent(config, station=HamlibStation(client)).control
    bursts = 20
    async with serving(control):
        control.receive(PTT_ON)  # keyed through the flood
        for burst in range(bursts):
            for n in range(burst * FLOOD // bursts, (burst + 1) * FLOOD // bursts):
                control.receive(freq(n))
            control.receive('{"type":"keepalive"}')
            await asyncio.sleep(0.05)
        control.receive(PTT_OFF)
        for _ in range(200):
            if await rig_freq(rigctld.port) == LAST_HZ and not await rig_ptt(rigctld.port):
                break
            await asyncio.sleep(0.01)
        assert await rig_ptt(rigctld.port) is False
    assert await rig_freq(rigctld.port) == LAST_HZ
    tuned = [c for c in client.commands() if c.startswith("set_freq")]
    assert tuned and len(tuned) <= bursts and tuned[-1] == f"set_freq {LAST_HZ}"
    assert warnings_of(caplog) == []
