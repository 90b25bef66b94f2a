"""The SFU forwards the publisher's Opus packets unchanged to every listener, and back — on the
pure-Python forwarding lane and on the compiled one (media/lane.py)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.clock import current_ntp_time
from aiortc.rtp import RtcpSrPacket, RtpPacket

import radiocore_protocol as protocol
from media.config import SfuConfig
from media.participant import ParticipantIdentity, Role
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.lanes import KINDS, lane_of
from tests.media.peers import TonePacketTrack, apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"


@pytest.fixture(autouse=True, params=KINDS)
def lane_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the pure-Python lane and on the compiled one."""
    kind: str = request.param
    monkeypatch.setattr("media.forwarder.Lane", lane_of(kind))
    return kind


def operator(key: str, can_transmit: bool = False) -> ParticipantIdentity:
    return ParticipantIdentity(
        key=key, role=Role.OPERATOR, callsign=key.upper(), user_id=key, can_transmit=can_transmit
    )


async def test_rx_packets_reach_every_listener_byte_identical(sfu: Sfu) -> None:
    track = TonePacketTrack()
    agent = await connect_station(sfu, track)

    listeners = []
    captured: list[list[RtpPacket]] = []
    for i in range(3):
        pc = peer()
        pc.addTransceiver("audio", direction="recvonly")
        pc.createDataChannel("control")
        answer = await sfu.connect_operator(BOARD, operator(f"op{i}"), await offer_sdp(pc))
        await apply_answer(pc, answer)
        packets: list[RtpPacket] = []
        aiortc_hooks.tap_receiver(pc.getTransceivers()[0].receiver, packets.append)
        listeners.append(pc)
        captured.append(packets)

    assert await wait_for(lambda: all(len(p) >= 50 for p in captured), seconds=15)
    sent = set(track.sent)
    for packets in captured:
        payloads = [p.payload for p in packets]
        assert all(payload in sent for payload in payloads), "a payload was altered"
        seqs = [p.sequence_number for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        stamps = [p.timestamp for p in packets]
        assert all((b - a) & 0xFFFFFFFF == 960 for a, b in itertools.pairwise(stamps))
    assert len({p[0].ssrc for p in captured}) == 3, "each listener has its own SSRC"
    stats = sfu.stats()
    assert stats.packets_forwarded >= 150
    assert stats.latency_ms_p99 is not None

    for pc in [agent, *listeners]:
        await pc.close()


async def test_listener_decodes_the_tone(sfu: Sfu) -> None:
    track = TonePacketTrack(frequency=1000.0)
    agent = await connect_station(sfu, track)

    listener = peer()
    listener.addTransceiver("audio", direction="recvonly")
    await apply_answer(
        listener, await sfu.connect_operator(BOARD, operator("op"), await offer_sdp(listener))
    )
    remote = listener.getTransceivers()[0].receiver.track
    chunks = []
    for _ in range(100):  # 2 s of audio
        frame = await asyncio.wait_for(remote.recv(), timeout=5)
        chunks.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
    pcm = np.concatenate(chunks[25:]).astype(np.float64)  # skip the start-up
    rms = float(np.sqrt(np.mean(pcm**2)))
    spectrum = np.abs(np.fft.rfft(pcm))
    peak_hz = float(np.argmax(spectrum) * 48000 / len(pcm))
    assert rms > 1000, f"no audio energy (rms {rms:.0f})"
    assert abs(peak_hz - 1000.0) < 20, f"tone at {peak_hz:.0f} Hz"
    await agent.close()
    await listener.close()


async def test_tx_audio_only_from_the_floor_holder(sfu: Sfu) -> None:
    agent = peer()
    agent_tx = TonePacketTrack()
    agent.addTransceiver(agent_tx, direction="sendrecv")
    agent_channel = agent.createDataChannel("control")
    agent_messages: list[str] = []
    agent_channel.on("message", agent_messages.append)
    await apply_answer(agent, await sfu.connect_agent(BOARD, "Station", await offer_sdp(agent)))
    assert await wait_for(lambda: sfu.station_online(BOARD))
    to_agent: list[RtpPacket] = []
    aiortc_hooks.tap_receiver(agent.getTransceivers()[0].receiver, to_agent.append)

    ops = {}
    for name, tone in (("alice", 600.0), ("bob", 750.0)):  # distinct tones: distinct payloads
        pc = peer()
        mic = TonePacketTrack(frequency=tone)
        pc.addTransceiver(mic, direction="sendrecv")
        channel = pc.createDataChannel("control")
        inbox: list[str] = []
        channel.on("message", inbox.append)
        answer = await sfu.connect_operator(BOARD, operator(name, True), await offer_sdp(pc))
        await apply_answer(pc, answer)
        ops[name] = (pc, mic, channel, inbox)

    assert await wait_for(lambda: all(o[2].readyState == "open" for o in ops.values()))
    await asyncio.sleep(1.0)
    assert to_agent == [], "audio reached the station without anyone holding the floor"

    _, alice_mic, alice_channel, _ = ops["alice"]
    _, bob_mic, bob_channel, bob_inbox = ops["bob"]
    alice_channel.send(protocol.encode(protocol.Ptt(state=True)).decode())
    assert await wait_for(lambda: len(to_agent) >= 25)
    bob_channel.send(protocol.encode(protocol.Ptt(state=True)).decode())
    assert await wait_for(lambda: any("floor_busy" in m for m in bob_inbox))
    payloads = {p.payload for p in to_agent}
    assert payloads <= set(alice_mic.sent)
    assert not payloads & set(bob_mic.sent), "audio from a non-holder reached the station"
    assert any('"ptt","state":true' in m for m in agent_messages)

    alice_channel.send(protocol.encode(protocol.Ptt(state=False)).decode())
    assert await wait_for(lambda: any('"ptt","state":false' in m for m in agent_messages))
    await asyncio.sleep(0.2)
    count = len(to_agent)
    await asyncio.sleep(0.5)
    assert len(to_agent) == count, "audio kept flowing after the floor was released"

    for pc, *_ in ops.values():
        await pc.close()
    await agent.close()


async def connect_station(server: Sfu, track: TonePacketTrack | None = None) -> RTCPeerConnection:
    """A station peer (sending `track`, or nothing) whose control channel is open."""
    agent = peer()
    agent.addTransceiver(track or "audio", direction="sendrecv")
    agent.createDataChannel("control")
    await apply_answer(agent, await server.connect_agent(BOARD, "Station", await offer_sdp(agent)))
    assert await wait_for(lambda: server.station_online(BOARD))
    return agent


async def connect_listener(server: Sfu, key: str) -> tuple[RTCPeerConnection, list[RtpPacket]]:
    """A receive-only operator and the RTP packets it receives (tapped after decryption)."""
    pc = peer()
    pc.addTransceiver("audio", direction="recvonly")
    pc.createDataChannel("control")
    await apply_answer(pc, await server.connect_operator(BOARD, operator(key), await offer_sdp(pc)))
    packets: list[RtpPacket] = []
    aiortc_hooks.tap_receiver(pc.getTransceivers()[0].receiver, packets.append)
    return pc, packets


async def test_a_listener_follows_a_newly_nominated_ice_pair(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Sfu(SfuConfig(ice_host_addresses=("127.0.0.1", "127.0.0.2")))
    peers: list[RTCPeerConnection] = []
    try:
        peers.append(await connect_station(server, TonePacketTrack()))
        listener, packets = await connect_listener(server, "op")
        peers.append(listener)
        assert await wait_for(lambda: len(packets) >= 25)
        room = server.room(BOARD)
        participant = room.participant("op") if room is not None else None
        assert participant is not None
        dtls = participant.pc.getTransceivers()[0].sender.transport
        pair = aiortc_hooks.nominated_pair(dtls)
        assert pair is not None
        other = "127.0.0.2" if pair.local_addr[0] == "127.0.0.1" else "127.0.0.1"
        caplog.set_level(logging.INFO, logger="media.forwarder")
        aiortc_hooks.select_local_address(dtls, other)  # what ICE does when it renominates
        heard = len(packets)
        assert await wait_for(lambda: len(packets) >= heard + 25, seconds=5), "listener went deaf"
        seqs = [p.sequence_number for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
        changes = [r for r in caplog.records if "ICE pair" in r.getMessage()]
        assert len(changes) == 1 and changes[0].levelno == logging.INFO
    finally:
        for pc in peers:
            await pc.close()
        await server.close()
        aiortc_hooks.set_host_addresses(())


async def test_a_reordered_packet_before_a_source_change_duplicates_no_sequence_number(
    sfu: Sfu,
) -> None:
    agent = await connect_station(sfu)  # sends no audio: the test feeds the room's fan-out
    listener, packets = await connect_listener(sfu, "op")
    room = sfu.room(BOARD)
    assert room is not None

    def forward(ssrc: int, seq: int) -> None:
        room.rx.forward(
            RtpPacket(
                payload_type=111,
                sequence_number=seq,
                timestamp=seq * 960,
                ssrc=ssrc,
                payload=bytes([seq & 0xFF]) * 20,
            )
        )

    for seq in range(1000, 1100):  # until the listener's path is up
        forward(1, seq)
        await asyncio.sleep(0.02)
        if packets:
            break
    assert packets, "the listener never heard the source"
    heard = len(packets)
    for seq in (1101, 1103, 1102):  # 1102 arrives late
        forward(1, seq)
    for seq in (5000, 5001, 5002):  # then another source takes over
        forward(2, seq)
    # a reused sequence number would be discarded by the listener's SRTP replay protection
    assert await wait_for(lambda: len(packets) >= heard + 6, seconds=5), "a packet was lost"
    await asyncio.sleep(0.1)
    seqs = [p.sequence_number for p in packets]
    assert len(seqs) == len(set(seqs)), f"duplicate sequence numbers: {seqs[-8:]}"
    await listener.close()
    await agent.close()


async def test_sender_reports_count_what_the_listener_received(
    sfu: Sfu, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each RTCP sender report a listener gets states the packets and payload bytes sent to it so
    far and the RTP timestamp of the last of them (on loopback nothing is lost or reordered, so
    they are exactly what it had received when the report came), with a current NTP time."""
    monkeypatch.setattr(aiortc_hooks, "FORWARDED_REPORT_INTERVAL_S", 0.3)
    agent = await connect_station(sfu, TonePacketTrack())
    listener, packets = await connect_listener(sfu, "op")
    receiver = listener.getTransceivers()[0].receiver
    reports: list[tuple[RtcpSrPacket, int, int, int]] = []
    handle = receiver._handle_rtcp_packet

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket) and packets:
            received = len(packets)
            octets = sum(len(p.payload) for p in packets)
            reports.append((packet, received, octets, packets[-1].timestamp))
        await handle(packet)

    receiver._handle_rtcp_packet = on_rtcp
    assert await wait_for(lambda: len(reports) >= 3, seconds=15)
    for report, received, octets, last_timestamp in reports:
        info = report.sender_info
        assert (info.packet_count, info.octet_count) == (received, octets)
        assert info.rtp_timestamp == last_timestamp
        assert abs(info.ntp_timestamp / 2**32 - current_ntp_time() / 2**32) < 30
    assert reports[-1][1] > reports[0][1]  # counting on, not a stale copy
    for pc in (agent, listener):
        await pc.close()
