"""The agent's own transmit safety against a real rigctld (Hamlib's dummy rig): dead-man, TX
time-out, a rig lost while keyed, losing the server, keep-alives that never reach the rig, and
errors back to the server. The agent's message handling is driven directly (no server); the
rig's state is read back from rigctld over a raw connection."""

from __future__ import annotations

import asyncio

from board_agent.agent import BoardAgent
from board_agent.hamlib_station import HamlibStation
from radiocore_protocol import (
    Capabilities,
    Error,
    ErrorCode,
    Status,
    TxStopped,
)
from tests.support.rigctld import RigctldServer, rig_freq, rig_mode, rig_ptt, wait_rig_ptt

from .configs import make_config
from .test_board_agent import Outbox, serving
from .test_hamlib_station import RecordingClient

PTT_ON = '{"type":"ptt","state":true}'
PTT_OFF = '{"type":"ptt","state":false}'
KEEPALIVE = '{"type":"keepalive"}'


def rig_agent(rigctld: RigctldServer, **changes: object) -> BoardAgent:
    config = make_config(rig="rigctld", rigctld_port=rigctld.port, **changes)
    return BoardAgent(config)


async def wait_for(outbox: Outbox, predicate: object, within: float, since: int = 0) -> None:
    """Wait for a message (from index `since` on) that satisfies `predicate`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if any(predicate(m) for m in outbox.messages[since:]):  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no such message within {within} s: {outbox.messages[-5:]}")


async def test_dead_man_unkeys_the_rig_when_keepalives_stop(rigctld: RigctldServer) -> None:
    agent = rig_agent(rigctld)  # deadman_s: the default, 1 s
    assert agent.config.deadman_s == 1.0
    control = agent.control
    async with serving(control) as outbox:
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        for _ in range(8):  # 1.6 s of keep-alives every 0.2 s: stays keyed
            await asyncio.sleep(0.2)
            control.receive(KEEPALIVE)
        assert await rig_ptt(rigctld.port) is True
        released_after = await wait_rig_ptt(rigctld.port, False, 1.0 + 0.5)
        assert released_after >= 0.9
        await wait_for(outbox, lambda m: m == TxStopped(reason="deadman"), 0.5)
    assert control.tx_stops == ["deadman"] and not control.ptt


async def test_tx_time_out_unkeys_the_rig(rigctld: RigctldServer) -> None:
    control = rig_agent(rigctld, tx_timeout_s=1.0).control
    loop = asyncio.get_running_loop()
    async with serving(control) as outbox:
        pressed_at = loop.time()
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        while await rig_ptt(rigctld.port) and loop.time() - pressed_at < 3:
            control.receive(KEEPALIVE)  # the operator is still there
            await asyncio.sleep(0.05)
        keyed_for = loop.time() - pressed_at
        await wait_for(outbox, lambda m: m == TxStopped(reason="timeout"), 0.5)
        for _ in range(5):  # more keep-alives do not key it again
            control.receive(KEEPALIVE)
            await asyncio.sleep(0.05)
        assert await rig_ptt(rigctld.port) is False
        control.receive(PTT_ON)  # a new transmission may start
        await wait_rig_ptt(rigctld.port, True, 1)
    # unkeyed within the loop's bound (the rig read False), never before the time-out from the
    # press (when the key is noticed here can be late on a busy machine)
    assert keyed_for >= 0.99, keyed_for
    assert control.tx_stops == ["timeout"]


async def test_keepalives_never_reach_the_rig(rigctld: RigctldServer) -> None:
    client = RecordingClient("127.0.0.1", rigctld.port)
    station = HamlibStation(client)
    config = make_config(rig="rigctld", rigctld_port=rigctld.port)
    control = BoardAgent(config, station=station).control
    async with serving(control):
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        for _ in range(10):
            control.receive(KEEPALIVE)
            await asyncio.sleep(0.03)
        control.receive(PTT_OFF)
        await wait_rig_ptt(rigctld.port, False, 1)
    writes = [text for text in client.commands() if not text.startswith(("get_", "dump_caps"))]
    assert writes == ["set_ptt 0", "set_ptt 1", "set_ptt 0", "set_ptt 0", "set_ptt 0"]
    # connect, operator on, operator off, the end of the session, closing the station


async def test_losing_the_server_unkeys_at_once(rigctld: RigctldServer) -> None:
    control = rig_agent(rigctld).control
    await control.station.open()
    outbox = Outbox()
    task = asyncio.create_task(control.serve(outbox))
    try:
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        task.cancel()  # the session ends as when the server goes away
        await asyncio.gather(task, return_exceptions=True)
        await control.release_ptt("the control link is down")
        took = loop.time() - started
        assert await rig_ptt(rigctld.port) is False
        assert took < 0.3  # no time-out waited for (the dummy takes 50 ms to unkey)
        assert not control.ptt
    finally:
        await control.station.close()


async def test_rig_lost_while_keyed_then_back(rigctld: RigctldServer) -> None:
    agent = rig_agent(rigctld)
    control = agent.control
    async with serving(control) as outbox:
        await wait_for(outbox, lambda m: isinstance(m, Capabilities), 1)
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        rigctld.kill()
        for _ in range(10):  # the operator keeps the dead-man fed: the rig error ends it
            control.receive(KEEPALIVE)
            await asyncio.sleep(0.05)
        await wait_for(outbox, lambda m: m == TxStopped(reason="rig_error"), 1)
        await wait_for(outbox, lambda m: isinstance(m, Status) and not m.rig_online, 1)
        errors = [m for m in outbox.of(Error) if isinstance(m, Error)]
        assert errors and all(e.code is ErrorCode.RIG_ERROR for e in errors)
        assert errors[0].ref == "ptt"
        assert not control.ptt
        offline = [m for m in outbox.of(Status) if isinstance(m, Status) and not m.rig_online]
        assert all(s.ptt is False for s in offline)

        control.receive('{"type":"freq","value":7074000}')  # refused at once: rig offline
        await wait_for(
            outbox, lambda m: isinstance(m, Error) and m.ref == "freq" and "offline" in m.message, 1
        )
        since = len(outbox.messages)
        await asyncio.to_thread(rigctld.start)
        await wait_for(outbox, lambda m: isinstance(m, Status) and m.rig_online, 3, since)
        control.receive('{"type":"freq","value":7074000}')
        control.receive(PTT_ON)
        await wait_rig_ptt(rigctld.port, True, 1)
        assert await rig_freq(rigctld.port) == 7_074_000
    assert len(outbox.of(Capabilities)) == 1, outbox.of(Capabilities)  # the same rig came back


async def test_refusals_go_back_and_nothing_reaches_the_rig(rigctld: RigctldServer) -> None:
    control = rig_agent(rigctld).control
    async with serving(control) as outbox:
        control.receive('{"type":"freq","value":2000000000}')
        control.receive('{"type":"mode","value":"PKTUSB"}')
        await wait_for(outbox, lambda m: isinstance(m, Error) and m.ref == "mode", 1)
        # (queued with the refused one, it would have replaced it: the latest value wins)
        control.receive('{"type":"freq","value":14074000}')
        for _ in range(100):
            if await rig_freq(rigctld.port) == 14_074_000:
                break
            await asyncio.sleep(0.01)
    errors = [(m.code, m.ref) for m in outbox.of(Error) if isinstance(m, Error)]
    assert errors == [(ErrorCode.BAD_REQUEST, "freq"), (ErrorCode.BAD_REQUEST, "mode")]
    assert await rig_mode(rigctld.port) == "FM"  # the dummy's, unchanged
    caps = outbox.of(Capabilities)[0]
    assert isinstance(caps, Capabilities) and "PKTUSB" not in caps.modes


async def test_status_publishing_is_bounded_by_the_poll_rate(rigctld: RigctldServer) -> None:
    control = rig_agent(rigctld, rig_poll_hz=5.0, status_interval_s=1.0).control
    async with serving(control) as outbox:
        await asyncio.sleep(1.05)
        statuses = [m for m in outbox.of(Status) if isinstance(m, Status)]
    # the dummy's S-meter and squelch wander, so nearly every poll is a change: ≤ 5 + 1 a second
    assert 2 <= len(statuses) <= 7
    assert all(s.rig_online and s.mode == "FM" for s in statuses)
