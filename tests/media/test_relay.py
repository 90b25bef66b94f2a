"""Cascaded rooms (`media.relay`): a station's listeners on another node's SFU, served through
one relay connection to the station's SFU. Two SFUs in one process stand for two nodes; the
relay's offer reaches the home SFU directly (between nodes it is `signaling.nodelink`)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.rtp import RtpPacket

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.errors import StationOfflineError
from media.participant import MediaFailure, ParticipantIdentity, Role
from media.relay import UPSTREAM_LOST
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.peers import TonePacketTrack, apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
STATUS = protocol.Status(ptt=False, freq=7_074_000, mode="USB", smeter=-73)


def operator(key: str, can_transmit: bool = False) -> ParticipantIdentity:
    return ParticipantIdentity(
        key=key, role=Role.OPERATOR, callsign=key.upper(), user_id=key, can_transmit=can_transmit
    )


@dataclass
class Client:
    """A peer of one of the SFUs: what it heard and what its control channel received."""

    pc: RTCPeerConnection
    channel: RTCDataChannel
    packets: list[RtpPacket] = field(default_factory=list)
    inbox: list[dict[str, object]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, object]]:
        return [m for m in self.inbox if m.get("type") == kind]

    def send(self, message: protocol.OperatorMessage) -> None:
        self.channel.send(protocol.encode(message).decode())


def client(track: TonePacketTrack | None = None) -> Client:
    pc = peer()
    pc.addTransceiver(track or "audio", direction="sendrecv" if track else "recvonly")
    channel = pc.createDataChannel("control")
    made = Client(pc, channel)
    channel.on("message", lambda m: made.inbox.append(json.loads(m)))
    return made


@dataclass
class Nodes:
    home: Sfu
    edge: Sfu
    track: TonePacketTrack
    station: Client
    relay_offers: int = 0
    peers: list[RTCPeerConnection] = field(default_factory=list)

    async def open_upstream(self, sdp: str) -> str:
        """The home node's answer to the edge's relay (counted)."""
        self.relay_offers += 1
        return await self.home.connect_relay(BOARD, "edge", sdp)

    async def relayed_listener(self, key: str) -> Client:
        listener = client()
        self.peers.append(listener.pc)
        answer = await self.edge.connect_relayed(
            BOARD, operator(key), await offer_sdp(listener.pc), self.open_upstream
        )
        await apply_answer(listener.pc, answer)
        aiortc_hooks.tap_receiver(
            listener.pc.getTransceivers()[0].receiver, listener.packets.append
        )
        return listener

    async def home_operator(self, key: str, track: TonePacketTrack | None = None) -> Client:
        joined = client(track)
        self.peers.append(joined.pc)
        identity = operator(key, can_transmit=track is not None)
        answer = await self.home.connect_operator(BOARD, identity, await offer_sdp(joined.pc))
        await apply_answer(joined.pc, answer)
        aiortc_hooks.tap_receiver(joined.pc.getTransceivers()[0].receiver, joined.packets.append)
        return joined


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    config = SfuConfig(ice_host_addresses=("127.0.0.1",), latency_sample_every=1)
    home, edge = Sfu(config), Sfu(config)
    track = TonePacketTrack()
    station = client(track)
    answer = await home.connect_agent(BOARD, "Station", await offer_sdp(station.pc))
    await apply_answer(station.pc, answer)
    assert await wait_for(lambda: home.station_online(BOARD))
    running = Nodes(home, edge, track, station)
    try:
        yield running
    finally:
        for pc in running.peers:
            await pc.close()
        await station.pc.close()
        await edge.close()
        await home.close()
        aiortc_hooks.set_host_addresses(())


async def test_relayed_listeners_hear_the_station_payload_identical_through_one_relay(
    nodes: Nodes,
) -> None:
    direct = await nodes.home_operator("direct")
    relayed = list(await asyncio.gather(*(nodes.relayed_listener(f"r{i}") for i in range(3))))

    assert await wait_for(lambda: all(len(c.packets) >= 50 for c in [direct, *relayed]), 15)
    assert nodes.relay_offers == 1, "listeners joining at once share one relay connection"
    room = nodes.home.room(BOARD)
    assert room is not None
    assert list(room.relays) == ["relay:edge"] and list(room.operators) == ["direct"]
    assert len(room.rx.targets) == 2, "the home node sends one stream to the edge, not three"

    sent = set(nodes.track.sent)
    direct_payloads = [p.payload for p in direct.packets]
    for listener in relayed:
        payloads = [p.payload for p in listener.packets]
        assert set(payloads) <= sent, "a relayed payload was altered"
        # the same packets, in the same order, as the home node's own listener heard
        start = direct_payloads.index(payloads[0])
        overlap = min(len(payloads), len(direct_payloads) - start)
        assert overlap >= 20
        assert payloads[:overlap] == direct_payloads[start : start + overlap]
        seqs = [p.sequence_number for p in listener.packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        stamps = [p.timestamp for p in listener.packets]
        assert all((b - a) & 0xFFFFFFFF == 960 for a, b in itertools.pairwise(stamps))
    assert len({c.packets[0].ssrc for c in relayed}) == 3, "each listener has its own SSRC"
    relayed_stats = nodes.edge.stats()
    assert relayed_stats.participants == 3 and relayed_stats.packets_forwarded >= 150


async def test_relayed_listeners_see_status_floor_and_roster_but_may_not_transmit(
    nodes: Nodes,
) -> None:
    early = await nodes.relayed_listener("early")
    assert await wait_for(lambda: early.channel.readyState == "open")
    nodes.station.channel.send(protocol.encode(STATUS).decode())
    assert await wait_for(lambda: early.of_type("status"), 10), "the station's status"
    assert early.of_type("status")[-1]["freq"] == 7_074_000
    # a listener joining later is given what the home node's operators were told so far
    late = await nodes.relayed_listener("late")
    assert await wait_for(lambda: late.of_type("status") and late.of_type("floor"), 10)

    # an operator of the home node keys: the relayed listeners see who holds the floor
    mic = TonePacketTrack(frequency=600.0)
    talker = await nodes.home_operator("talker", mic)
    assert await wait_for(lambda: talker.channel.readyState == "open")
    talker.send(protocol.Ptt(state=True))
    for listener in (early, late):
        assert await wait_for(
            lambda listener=listener: any(
                m["holder"] == "TALKER" and not m.get("you") for m in listener.of_type("floor")
            ),
            10,
        ), "the relayed listener was not told who transmits"
    # the roster names the home node's operators, never the relay itself, and counts the
    # listeners the relay serves: the talker and the two relayed listeners
    assert await wait_for(lambda: any(m["count"] == 3 for m in late.of_type("roster")), 10), (
        late.of_type("roster")
    )
    listed = [e["callsign"] for e in late.of_type("roster")[-1]["listeners"]]  # type: ignore[union-attr]
    assert listed == ["TALKER"]
    assert all(m["count"] == 3 for m in talker.of_type("roster")[-1:]), talker.of_type("roster")

    # a relayed listener pressing PTT is refused, and the station hears nothing of it
    late.send(protocol.Ptt(state=True))
    assert await wait_for(lambda: late.of_type("error"), 10)
    error = late.of_type("error")[-1]
    assert error["code"] == "forbidden" and "may listen but not transmit" in str(error["message"])
    talker.send(protocol.Ptt(state=False))
    assert await wait_for(
        lambda: any(m["holder"] is None for m in late.of_type("floor")[1:]), 10
    ), "the relayed listener was not told the transmission ended"


async def test_the_relay_closes_with_its_last_listener(nodes: Nodes) -> None:
    first = await nodes.relayed_listener("first")
    second = await nodes.relayed_listener("second")
    assert await wait_for(lambda: len(first.packets) >= 10 and len(second.packets) >= 10, 15)
    direct = await nodes.home_operator("direct")
    assert await wait_for(lambda: any(m["count"] == 3 for m in direct.of_type("roster")), 10)
    await nodes.edge.disconnect(BOARD, "first")
    room = nodes.home.room(BOARD)
    assert room is not None and list(room.relays) == ["relay:edge"], "one listener remains"
    # the home node's roster counts the relayed listener who left no more
    assert await wait_for(lambda: direct.of_type("roster")[-1]["count"] == 2, 10)
    heard = len(second.packets)
    assert await wait_for(lambda: len(second.packets) >= heard + 10, 10)

    await nodes.edge.disconnect(BOARD, "second")
    assert nodes.edge.relay_rooms() == ()
    assert await wait_for(lambda: not room.relays, 10), "the home node kept the relay"
    assert len(room.rx.targets) == 1, "only the home node's own listener is left"
    assert await wait_for(lambda: direct.of_type("roster")[-1]["count"] == 1, 10)


async def test_a_lost_relay_tells_each_relayed_listener_to_join_again(nodes: Nodes) -> None:
    failures: list[tuple[str, str, MediaFailure]] = []
    nodes.edge.on_media_failed(lambda board, key, failure: failures.append((board, key, failure)))
    listeners = [await nodes.relayed_listener(key) for key in ("a", "b")]
    assert await wait_for(lambda: all(len(c.packets) >= 10 for c in listeners), 15)

    await nodes.home.disconnect(BOARD, "relay:edge")  # as when the home node dies

    assert await wait_for(lambda: len(failures) == 2, 15), failures
    assert {key for _, key, _ in failures} == {"a", "b"}
    assert all(f.message == UPSTREAM_LOST and f.reason == "ice" for _, _, f in failures)
    assert await wait_for(lambda: nodes.edge.relay_rooms() == (), 10)
    # joining again makes a new relay
    again = await nodes.relayed_listener("a")
    assert await wait_for(lambda: len(again.packets) >= 10, 15)
    assert nodes.relay_offers == 2


async def test_a_relay_to_an_offline_station_is_refused_and_leaves_nothing(nodes: Nodes) -> None:
    await nodes.station.pc.close()
    assert await wait_for(lambda: not nodes.home.station_online(BOARD), 10)
    with pytest.raises(StationOfflineError):
        await nodes.relayed_listener("late")
    assert nodes.edge.relay_rooms() == ()
    assert nodes.edge.stats().participants == 0
