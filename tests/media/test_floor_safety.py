"""Transmit safety in the SFU: one holder, owner override, dead-man, time-out, link loss,
validation against the rig's capabilities, and an audit of every transmission.
Timers are shortened through the SFU's config."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCPeerConnection

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.floor import FloorHolder
from media.participant import ParticipantIdentity, Role
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.peers import apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
PTT_ON = protocol.encode(protocol.Ptt(state=True)).decode()
PTT_OFF = protocol.encode(protocol.Ptt(state=False)).decode()
KEEPALIVE = protocol.encode(protocol.Keepalive()).decode()
#: The station's data-channel backlog beyond which the SFU drops commands to it (test config).
BACKLOG_BYTES = 512


@dataclass
class Log:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def tx_started(self, board_id: str, holder: FloorHolder) -> None:
        self.events.append(("start", holder.callsign, ""))

    def tx_ended(self, board_id: str, holder: FloorHolder, reason: str) -> None:
        self.events.append(("end", holder.callsign, reason))


@dataclass
class Client:
    pc: RTCPeerConnection
    channel: Any
    inbox: list[str]

    def send(self, text: str) -> None:
        self.channel.send(text)

    def got(self, kind: str) -> list[Any]:
        decode = protocol.decode_server_message
        return [decode(m) for m in self.inbox if f'"type":"{kind}"' in m]


@dataclass
class Station:
    sfu: Sfu
    log: Log
    agent: Client
    clients: list[Client] = field(default_factory=list)

    async def operator(self, key: str, *, owner: bool = False, transmit: bool = True) -> Client:
        identity = ParticipantIdentity(
            key=key,
            role=Role.OPERATOR,
            callsign=key.upper(),
            user_id=key,
            can_transmit=transmit or owner,
            is_owner=owner,
        )
        client = await connect(peer(), lambda sdp: self.sfu.connect_operator(BOARD, identity, sdp))
        self.clients.append(client)
        return client

    def agent_saw(self, text: str) -> int:
        return sum(1 for m in self.agent.inbox if m == text)


async def connect(pc: RTCPeerConnection, negotiate: Any) -> Client:
    pc.addTransceiver("audio", direction="sendrecv")
    channel = pc.createDataChannel("control")
    inbox: list[str] = []
    channel.on("message", inbox.append)
    await apply_answer(pc, await negotiate(await offer_sdp(pc)))
    assert await wait_for(lambda: channel.readyState == "open")
    return Client(pc, channel, inbox)


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    log = Log()
    config = SfuConfig(
        ice_host_addresses=("127.0.0.1",),
        deadman_s=0.5,
        tx_timeout_s=2.0,
        tx_warning_s=1.0,
        max_buffered_data_bytes=BACKLOG_BYTES,
    )
    sfu = Sfu(config, observer=log)
    agent = await connect(peer(), lambda sdp: sfu.connect_agent(BOARD, "Station", sdp))
    caps = protocol.Capabilities(
        modes=["USB", "LSB", "CW"],
        freq_ranges=[protocol.FrequencyRange(low=1_800_000, high=29_700_000)],
    )
    agent.send(protocol.encode(caps).decode())
    setup = Station(sfu, log, agent)
    yield setup
    for client in [*setup.clients, agent]:
        await client.pc.close()
    await sfu.close()
    aiortc_hooks.set_host_addresses(())


async def test_owner_overrides_and_the_previous_holder_is_told(station: Station) -> None:
    guest = await station.operator("guest")
    owner = await station.operator("owner", owner=True)
    guest.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    owner.send(PTT_ON)
    assert await wait_for(lambda: guest.got("ptt_released"))
    assert guest.got("ptt_released")[0] == protocol.PttReleased(reason="override", by="OWNER")
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 2)
    assert station.agent_saw(PTT_OFF) == 1  # the guest's key was dropped before the owner's
    assert await wait_for(lambda: protocol.Floor(holder="OWNER") in guest.got("floor"))
    owns = protocol.Floor(holder="OWNER", you=True, tx_limit_s=2)  # tx_timeout_s in the fixture
    assert await wait_for(lambda: owns in owner.got("floor"))
    guest.send(PTT_ON)  # a guest cannot take it back
    assert await wait_for(lambda: any(e.code.value == "floor_busy" for e in guest.got("error")))
    owner.send(PTT_OFF)
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 2)
    assert station.log.events == [
        ("start", "GUEST", ""),
        ("end", "GUEST", "override"),
        ("start", "OWNER", ""),
        ("end", "OWNER", "released"),
    ]


async def test_deadman_releases_when_keepalives_stop(station: Station) -> None:
    holder = await station.operator("op")
    holder.send(PTT_ON)
    for _ in range(10):  # 1 s of keep-alives: twice the dead-man time, still keyed
        await asyncio.sleep(0.1)
        holder.send(KEEPALIVE)
    assert station.agent_saw(PTT_OFF) == 0
    assert await wait_for(lambda: station.agent_saw(protocol.encode(protocol.Keepalive()).decode()))
    loop = asyncio.get_running_loop()
    stopped = loop.time()
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=3)
    assert loop.time() - stopped < 1.0
    assert await wait_for(lambda: holder.got("ptt_released"))
    assert holder.got("ptt_released")[0].reason == "deadman"
    assert ("end", "OP", "deadman") in station.log.events


async def test_tx_timeout_warns_then_releases(station: Station) -> None:
    holder = await station.operator("op")
    holder.send(PTT_ON)
    for _ in range(30):  # keep-alives for up to 3 s: only the time-out can end it
        await asyncio.sleep(0.1)
        holder.send(KEEPALIVE)
        if holder.got("ptt_released"):
            break
    assert holder.got("tx_warning") == [protocol.TxWarning(remaining_s=1)]
    assert holder.got("ptt_released") == [protocol.PttReleased(reason="timeout")]
    assert station.agent_saw(PTT_OFF) == 1


async def test_listeners_cannot_key_and_nothing_reaches_the_rig(station: Station) -> None:
    listener = await station.operator("listener", transmit=False)
    listener.send(PTT_ON)
    listener.send(protocol.encode(protocol.SetFrequency(value=7_100_000)).decode())
    assert await wait_for(lambda: len(listener.got("error")) == 2)
    assert {e.code.value for e in listener.got("error")} == {"forbidden"}
    await asyncio.sleep(0.2)
    assert station.agent.inbox == []


async def test_requests_outside_the_rigs_capabilities_are_refused(station: Station) -> None:
    op = await station.operator("op")
    # an operator whose channel opens is told what the rig accepts (the console checks input)
    assert await wait_for(lambda: any('"type":"capabilities"' in m for m in op.inbox))
    op.send(protocol.encode(protocol.SetFrequency(value=144_300_000)).decode())
    op.send(protocol.encode(protocol.SetMode(value="FM")).decode())
    op.send(protocol.encode(protocol.SetFrequency(value=14_205_000)).decode())
    assert await wait_for(lambda: len(op.got("error")) == 2)
    assert [e.code.value for e in op.got("error")] == ["bad_request", "bad_request"]
    assert "144.3 MHz" in op.got("error")[0].message
    assert await wait_for(lambda: len(station.agent.inbox) == 1)
    assert station.agent.inbox == ['{"type":"freq","value":14205000}']


async def test_a_withdrawn_transmit_right_unkeys_the_holder_and_refuses_it_after(
    station: Station,
) -> None:
    """Signaling re-checks access: a guest whose right to transmit ended (its booking is over)
    loses the floor at once, says so, and keying or tuning again is refused with the reason;
    it still listens, and the owner still overrides and keys."""
    guest = await station.operator("guest")
    owner = await station.operator("owner", owner=True)
    guest.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    room = station.sfu.room(BOARD)
    assert room is not None
    reason = "you may no longer transmit on Station: your booking ended at 2026-11-27 15:00 UTC"
    assert room.withdraw_transmit("guest", reason) is True
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=1)
    assert await wait_for(lambda: guest.got("ptt_released"))
    assert guest.got("ptt_released") == [protocol.PttReleased(reason="access_ended")]
    assert await wait_for(lambda: protocol.Floor(holder=None) in owner.got("floor"))
    guest.send(PTT_ON)
    guest.send(protocol.encode(protocol.SetFrequency(value=7_100_000)).decode())
    assert await wait_for(lambda: len(guest.got("error")) == 2)
    assert [(e.code.value, e.message) for e in guest.got("error")] == [("forbidden", reason)] * 2
    assert room.withdraw_transmit("guest", reason) is False  # nothing held: nothing to release
    owner.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 2)
    assert station.log.events == [
        ("start", "GUEST", ""),
        ("end", "GUEST", "access_ended"),
        ("start", "OWNER", ""),
    ]
    assert station.agent_saw(PTT_OFF) == 1  # the guest's later key never reached the rig


async def test_holder_link_lost_unkeys_at_once(station: Station) -> None:
    holder = await station.operator("op")
    holder.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    await station.sfu.disconnect(BOARD, "op")  # what signaling does when the socket drops
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=1)
    assert station.log.events[-1] == ("end", "OP", "link_lost")


async def test_station_stopping_tx_by_itself_tells_the_holder(station: Station) -> None:
    holder = await station.operator("op")
    watcher = await station.operator("watcher")
    holder.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    station.agent.send(protocol.encode(protocol.TxStopped(reason="rig_error")).decode())
    assert await wait_for(lambda: holder.got("ptt_released"))
    assert holder.got("ptt_released")[0].reason == "rig_error"
    assert await wait_for(lambda: protocol.Floor(holder=None) in watcher.got("floor")[1:])
    assert station.log.events[-1] == ("end", "OP", "rig_error")


async def test_holder_closing_its_control_channel_unkeys(station: Station) -> None:
    holder = await station.operator("op")
    holder.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    holder.channel.close()
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=2)
    assert station.log.events[-1] == ("end", "OP", "link_lost")


async def test_a_room_whose_peers_all_went_away_is_forgotten(station: Station) -> None:
    op = await station.operator("op")
    await op.pc.close()
    await station.agent.pc.close()
    assert await wait_for(lambda: station.sfu.room(BOARD) is None, seconds=5)


def stall(client: Client, stalled: bool) -> None:
    """Stop (or resume) reading the client's ICE socket, as a station on a link that has
    stopped delivering: the SFU's messages to it pile up unacknowledged."""
    pair = aiortc_hooks.nominated_pair(client.pc.sctp.transport)
    assert pair is not None
    if stalled:
        pair.protocol.transport.pause_reading()
    else:
        pair.protocol.transport.resume_reading()


async def back_up_the_station(station: Station, op: Client) -> list[str]:
    """Stall the station and have `op` send it commands (and keep-alives, should it hold the
    floor) until the station's data channel is backed up; returns the commands sent."""
    stall(station.agent, True)
    # the acknowledgements the station sent before it stalled are taken in first: one taken
    # later (under the suite's load) would let a queued message leave and the backlog, only just
    # over the limit (messages beyond it are dropped), fall back under it
    await asyncio.sleep(0.3)
    room = station.sfu.room(BOARD)
    assert room is not None and room.agent is not None and room.agent.channel is not None
    channel = room.agent.channel
    sent: list[str] = []
    for _ in range(20):  # bounded: at most 20 rounds of 50 commands
        op.send(KEEPALIVE)
        for _ in range(50):
            sent.append(
                protocol.encode(protocol.SetFrequency(value=7_000_000 + len(sent))).decode()
            )
            op.send(sent[-1])
        await asyncio.sleep(0.05)
        if channel.bufferedAmount > BACKLOG_BYTES:
            # and still so once acknowledgements still on their way are in: otherwise, top up
            await asyncio.sleep(0.3)
            if channel.bufferedAmount > BACKLOG_BYTES:
                return sent
    raise AssertionError("the station's data channel never backed up")


async def test_a_release_reaches_a_backed_up_station_first(station: Station) -> None:
    op = await station.operator("op")
    op.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    queued = await back_up_the_station(station, op)
    op.send(PTT_OFF)
    assert await wait_for(lambda: protocol.Floor(holder=None) in op.got("floor"))
    stall(station.agent, False)
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=10)
    # PTT off overtook the commands still waiting for the link
    inbox = station.agent.inbox
    assert inbox.index(PTT_OFF) < max(inbox.index(c) for c in queued if c in inbox)
    assert station.log.events == [("start", "OP", ""), ("end", "OP", "released")]


async def test_an_undeliverable_override_leaves_the_holder_keyed(station: Station) -> None:
    guest = await station.operator("guest")
    owner = await station.operator("owner", owner=True)
    guest.send(PTT_ON)
    assert await wait_for(lambda: station.agent_saw(PTT_ON) == 1)
    await back_up_the_station(station, guest)
    owner.send(PTT_ON)
    assert await wait_for(
        lambda: any(e.code.value == "station_offline" for e in owner.got("error"))
    )
    guest.send(KEEPALIVE)
    stall(station.agent, False)
    await asyncio.sleep(0.2)
    assert guest.got("ptt_released") == []
    assert station.log.events == [("start", "GUEST", "")]
    guest.send(PTT_OFF)
    assert await wait_for(lambda: station.agent_saw(PTT_OFF) == 1, seconds=10)


async def test_an_undeliverable_key_does_not_take_the_floor(station: Station) -> None:
    op = await station.operator("op")
    queued = await back_up_the_station(station, op)
    op.send(PTT_ON)
    assert await wait_for(
        lambda: any((e.code.value, e.ref) == ("station_offline", "ptt") for e in op.got("error"))
    ), op.got("error")[-3:]
    stall(station.agent, False)
    delivered = [c for c in queued if c in station.agent.inbox]
    assert await wait_for(lambda: station.agent.inbox[-1:] == delivered[-1:], seconds=10)
    await asyncio.sleep(0.2)
    assert station.agent_saw(PTT_ON) == 0
    assert station.log.events == []
    assert all(floor.holder is None for floor in op.got("floor"))


async def test_a_message_over_the_configured_limit_is_refused_unread() -> None:
    config = SfuConfig(ice_host_addresses=("127.0.0.1",), max_data_message_bytes=100)
    sfu = Sfu(config)
    agent = await connect(peer(), lambda sdp: sfu.connect_agent(BOARD, "Station", sdp))
    station = Station(sfu, Log(), agent)
    try:
        op = await station.operator("op")
        op.send("x" * 101)  # under the protocol's limit, over this server's
        padded = '{"type":"freq","value":14205000' + " " * 68 + "}"  # 100 bytes: accepted
        op.send(padded)
        assert await wait_for(lambda: op.got("error"))
        error = op.got("error")[0]
        assert (error.code.value, error.ref) == ("too_large", None)
        assert "101 bytes" in error.message
        assert await wait_for(lambda: agent.inbox == ['{"type":"freq","value":14205000}'])
    finally:
        for client in [*station.clients, agent]:
            await client.pc.close()
        await sfu.close()
        aiortc_hooks.set_host_addresses(())


async def test_a_backed_up_station_costs_a_counted_line_a_second_not_one_a_message(
    station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    op = await station.operator("op")
    started = asyncio.get_running_loop().time()
    await back_up_the_station(station, op)
    room = station.sfu.room(BOARD)
    assert room is not None and room.agent is not None
    for n in range(500):  # what the forwarding of station-bound messages tries meanwhile
        assert not room.agent.send(protocol.encode(protocol.SetFrequency(value=7_000_000 + n)))
    took = asyncio.get_running_loop().time() - started
    lines = [r.getMessage() for r in caplog.records if "backed up" in r.getMessage()]
    assert lines and len(lines) <= took + 1, lines
    assert "message(s) dropped since the last report" in lines[0]
    stall(station.agent, False)
