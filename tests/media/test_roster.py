"""Who is on the station: the `roster` each operator gets (on joining and after every change,
coalesced), `floor_request` ("waiting to talk") shown to the holder and cleared when the
requester gets the floor or leaves, and the holder's `floor` carrying the TX time-out.
Real aiortc peers on loopback, as in test_floor_safety."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.room import Room
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.peers import peer
from tests.media.test_floor_safety import BOARD, PTT_OFF, PTT_ON, Client, Log, Station, connect
from tests.support.waiting import wait_for

TX_TIMEOUT_S = 120
ROSTER_INTERVAL_S = 0.25
ASK = protocol.encode(protocol.FloorRequest(state=True)).decode()
WITHDRAW = protocol.encode(protocol.FloorRequest(state=False)).decode()


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    config = SfuConfig(
        ice_host_addresses=("127.0.0.1",),
        deadman_s=30.0,  # nobody here tests the dead-man: no keep-alives needed
        tx_timeout_s=TX_TIMEOUT_S,
        roster_interval_s=ROSTER_INTERVAL_S,
    )
    log = Log()
    sfu = Sfu(config, observer=log)
    agent = await connect(peer(), lambda sdp: sfu.connect_agent(BOARD, "Station", sdp))
    setup = Station(sfu, log, agent)
    yield setup
    for client in [*setup.clients, agent]:
        await client.pc.close()
    await sfu.close()
    aiortc_hooks.set_host_addresses(())


def roster(client: Client) -> protocol.Roster | None:
    """The last roster the client received."""
    rosters = client.got("roster")
    return rosters[-1] if rosters else None


def shows(client: Client, *entries: tuple[str, bool, bool], holder: str | None = None) -> bool:
    """The client's last roster lists exactly these (callsign, transmitting, waiting)."""
    last = roster(client)
    return (
        last is not None
        and [(e.callsign, e.transmitting, e.waiting) for e in last.listeners] == list(entries)
        and last.count == len(entries)
        and last.holder == holder
    )


def room_of(station: Station) -> Room:
    room = station.sfu.room(BOARD)
    assert room is not None
    return room


async def leave(station: Station, client: Client) -> None:
    station.clients.remove(client)
    await client.pc.close()


async def test_the_roster_follows_joins_and_leaves(station: Station) -> None:
    a = await station.operator("a")
    assert await wait_for(lambda: shows(a, ("A", False, False)))
    b = await station.operator("b", transmit=False)  # a listener is on the roster too
    assert await wait_for(lambda: shows(a, ("A", False, False), ("B", False, False)))
    assert await wait_for(lambda: shows(b, ("A", False, False), ("B", False, False)))
    c = await station.operator("c")
    three = (("A", False, False), ("B", False, False), ("C", False, False))
    for client in (a, b, c):
        assert await wait_for(lambda client=client: shows(client, *three))  # type: ignore[misc]
    await leave(station, b)
    for client in (a, c):
        assert await wait_for(
            lambda client=client: shows(client, ("A", False, False), ("C", False, False))  # type: ignore[misc]
        )


async def test_a_request_to_talk_is_shown_to_the_holder_and_cleared_on_grant(
    station: Station,
) -> None:
    a = await station.operator("a")
    b = await station.operator("b")
    a.send(PTT_ON)
    assert await wait_for(lambda: shows(a, ("A", True, False), ("B", False, False), holder="A"))
    b.send(ASK)
    assert await wait_for(lambda: shows(a, ("A", True, False), ("B", False, True), holder="A"))
    assert await wait_for(lambda: shows(b, ("A", True, False), ("B", False, True), holder="A"))
    b.send(PTT_ON)  # refused while A transmits: B still waits
    assert await wait_for(lambda: any(e.code.value == "floor_busy" for e in b.got("error")))
    assert room_of(station).waiting() == ("b",)
    a.send(PTT_OFF)
    assert await wait_for(lambda: shows(a, ("A", False, False), ("B", False, True)))
    b.send(PTT_ON)  # granted: no longer waiting
    assert await wait_for(lambda: shows(a, ("A", False, False), ("B", True, False), holder="B"))
    assert room_of(station).waiting() == ()
    b.send(PTT_OFF)


async def test_a_request_can_be_withdrawn_and_goes_when_the_requester_leaves(
    station: Station,
) -> None:
    a = await station.operator("a")
    b = await station.operator("b")
    c = await station.operator("c")
    b.send(ASK)
    # b's request in before c's: two connections' messages may arrive in either order
    assert await wait_for(lambda: room_of(station).waiting() == ("b",))
    c.send(ASK)
    everyone = ("A", False, False), ("B", False, True), ("C", False, True)
    assert await wait_for(lambda: shows(a, *everyone))
    assert room_of(station).waiting() == ("b", "c")
    c.send(WITHDRAW)
    assert await wait_for(
        lambda: shows(a, ("A", False, False), ("B", False, True), ("C", False, False))
    )
    await leave(station, b)
    assert await wait_for(lambda: shows(a, ("A", False, False), ("C", False, False)))
    assert room_of(station).waiting() == ()


async def test_the_holder_asking_is_no_request(station: Station) -> None:
    a = await station.operator("a")
    a.send(PTT_ON)
    assert await wait_for(lambda: shows(a, ("A", True, False), holder="A"))
    a.send(ASK)
    a.send(PTT_OFF)
    assert await wait_for(lambda: shows(a, ("A", False, False)))
    assert room_of(station).waiting() == ()


async def test_a_listener_may_not_ask_to_talk(station: Station) -> None:
    a = await station.operator("a")
    listener = await station.operator("l", transmit=False)
    listener.send(ASK)
    assert await wait_for(lambda: listener.got("error"))
    error = listener.got("error")[0]
    assert (error.code.value, error.ref) == ("forbidden", "floor_request")
    assert "L may listen but not transmit" in error.message
    await asyncio.sleep(0.3)  # a roster would have gone out by now
    assert shows(a, ("A", False, False), ("L", False, False))
    assert room_of(station).waiting() == ()


async def test_a_malformed_request_is_refused(station: Station) -> None:
    a = await station.operator("a")
    a.send('{"type":"floor_request","state":"yes"}')
    a.send('{"type":"floor_request","state":true,"who":"B"}')
    assert await wait_for(lambda: len(a.got("error")) == 2)
    assert {(e.code.value, e.ref) for e in a.got("error")} == {("bad_request", "floor_request")}


async def test_rosters_are_coalesced(station: Station, monkeypatch: pytest.MonkeyPatch) -> None:
    a = await station.operator("a")
    b = await station.operator("b")
    assert await wait_for(lambda: shows(a, ("A", False, False), ("B", False, False)))
    room = room_of(station)
    loop = asyncio.get_running_loop()
    sent_at: list[float] = []  # the room's own clock at each broadcast
    broadcast = room._broadcast_roster

    def recorded() -> None:
        sent_at.append(loop.time())
        broadcast()

    monkeypatch.setattr(room, "_broadcast_roster", recorded)
    before, received = room.roster_broadcasts, len(a.got("roster"))
    for _ in range(100):  # 200 changes as fast as the channel carries them, then one more
        b.send(ASK)
        b.send(WITHDRAW)
    b.send(ASK)
    changes = 201
    assert await wait_for(lambda: shows(a, ("A", False, False), ("B", False, True)))
    await asyncio.sleep(0.3)  # the last coalesced roster, if one was still due
    broadcasts = room.roster_broadcasts - before
    assert broadcasts == len(sent_at) >= 1
    # never two broadcasts within one interval (the room's clock; 1 ms for the timer's grain)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert all(gap >= ROSTER_INTERVAL_S - 0.001 for gap in gaps), gaps
    assert broadcasts < changes, f"{broadcasts} rosters for {changes} changes: not coalesced"
    assert len(a.got("roster")) - received == broadcasts
    assert shows(a, ("A", False, False), ("B", False, True))


async def test_the_holders_floor_carries_the_tx_limit(station: Station) -> None:
    a = await station.operator("a")
    b = await station.operator("b")
    a.send(PTT_ON)
    mine = protocol.Floor(holder="A", you=True, tx_limit_s=TX_TIMEOUT_S)
    assert await wait_for(lambda: mine in a.got("floor"))
    assert await wait_for(lambda: protocol.Floor(holder="A") in b.got("floor"))
    assert all(f.tx_limit_s is None for f in b.got("floor"))
    assert '"tx_limit_s":120' in next(m for m in a.inbox if '"holder":"A"' in m)
    a.send(PTT_OFF)
    assert await wait_for(lambda: protocol.Floor(holder=None) in a.got("floor"))
