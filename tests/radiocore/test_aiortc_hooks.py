"""The forwarding hook relies on aiortc/aioice internals; this fails loudly when they move."""

from __future__ import annotations

import asyncio
from typing import Any

import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCIceGatherer, RTCIceTransport, RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate, RTCDtlsTransport
from OpenSSL import SSL

from radiocore import aiortc_hooks
from radiocore.aiortc_hooks import HookError
from tests.support.certificates import rsa_certificate, rsa_peer


def test_pinned_versions_are_installed() -> None:
    # radiocore/aiortc_hooks.py was written against exactly these; re-check the hooks on upgrade
    assert aiortc.__version__ == "1.16.0"
    assert aioice.__version__ == "0.13.0"


def test_every_private_attribute_the_hooks_use_exists() -> None:
    aiortc_hooks.check_hooks()


def test_check_hooks_notices_a_missing_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice.StunProtocol, "send_data")
    with pytest.raises(HookError, match=r"StunProtocol\.send_data"):
        aiortc_hooks.check_hooks()


def test_host_addresses_are_configurable_and_restorable() -> None:
    original = aioice.ice.get_host_addresses
    try:
        aiortc_hooks.set_host_addresses(["127.0.0.1", "10.1.2.3", "::1", "fd00::5"])
        gather = aioice.ice.get_host_addresses
        assert gather(use_ipv4=True, use_ipv6=False) == ["127.0.0.1", "10.1.2.3"]
        assert gather(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "10.1.2.3", "::1", "fd00::5"]
        assert gather(use_ipv4=False, use_ipv6=True) == ["::1", "fd00::5"]
        aiortc_hooks.set_host_addresses([])
        # aioice's own, whatever an earlier test in this process had set
        assert aioice.ice.get_host_addresses is aiortc_hooks._AIOICE_GET_HOST_ADDRESSES
        assert aioice.ice.get_host_addresses.__module__ == "aioice.ice"
    finally:
        aioice.ice.get_host_addresses = original


async def test_send_ahead_overtakes_waiting_messages_but_never_the_one_it_must_follow() -> None:
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    sender, receiver = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    try:
        channel = sender.createDataChannel("control")
        received: list[str] = []
        receiver.on("datachannel", lambda ch: ch.on("message", received.append))
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        for _ in range(200):
            if channel.readyState == "open":
                break
            await asyncio.sleep(0.05)
        pair = aiortc_hooks.nominated_pair(receiver.sctp.transport)
        assert pair is not None
        pair.protocol.transport.pause_reading()  # the receiver stops acknowledging
        before = [f"before {n:03d} " + "." * 40 for n in range(300)]
        after = [f"after {n:03d}" for n in range(20)]
        for text in [*before, "key", *after]:
            channel.send(text)
        await asyncio.sleep(0.1)
        assert channel.bufferedAmount > 0, "nothing is waiting: the test would prove nothing"
        aiortc_hooks.send_ahead(channel, "release", behind="key")
        aiortc_hooks.send_ahead(channel, "urgent", behind="nothing waiting is like this")
        pair.protocol.transport.resume_reading()
        for _ in range(200):
            if after[-1] in received:
                break
            await asyncio.sleep(0.05)
        assert set(received) == {*before, "key", *after, "release", "urgent"}
        position = received.index
        assert position("urgent") < position(before[-1])  # ahead of what was waiting
        assert position("key") < position("release") < position(after[0])  # but behind "key"
        for _ in range(100):
            if channel.bufferedAmount == 0:
                break
            await asyncio.sleep(0.05)
        assert channel.bufferedAmount == 0  # counted in, and out, like any message
    finally:
        await sender.close()
        await receiver.close()
        aiortc_hooks.set_host_addresses([])


# -- DTLS: peers with RSA certificates, and the reason a handshake failed ----------------------


def test_check_hooks_notices_a_changed_dtls_handshake(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handshake_without_pyopenssl(self: RTCDtlsTransport) -> None:
        pass

    monkeypatch.setattr(aiortc_hooks, "_AIORTC_DO_HANDSHAKE", handshake_without_pyopenssl)
    with pytest.raises(HookError, match=r"_do_handshake uses self\._ssl\.do_handshake\(\)"):
        aiortc_hooks.check_hooks()


def _ciphers(accept_rsa_certificates: bool) -> list[str]:
    """The cipher suites a DTLS connection offers once `setup_dtls` ran (TLS 1.2 ones: DTLS)."""
    aiortc_hooks.setup_dtls(accept_rsa_certificates=accept_rsa_certificates)
    context = RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES)
    return [c for c in SSL.Connection(context).get_cipher_list() if not c.startswith("TLS_")]


def test_dtls_offers_ecdhe_rsa_suites_beside_aiortcs_own() -> None:
    try:
        aiortcs_own = _ciphers(accept_rsa_certificates=False)
        assert aiortcs_own and all(c.startswith("ECDHE-ECDSA-") for c in aiortcs_own)
        ours = _ciphers(accept_rsa_certificates=True)
        assert ours == list(aiortc_hooks.DTLS_CIPHERS)
        assert set(aiortcs_own) < set(ours)
        assert {
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305",
        } < set(ours)
    finally:
        aiortc_hooks.setup_dtls()  # as the SFU and the agent leave it


async def _connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    """Offer/answer between two local peers (the answerer is the DTLS client: aiortc answers
    `a=setup:active`), then wait until both are connected or either failed."""
    offerer.createDataChannel("control")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    assert "a=setup:active" in answerer.localDescription.sdp
    for _ in range(200):  # bounded: 10 s
        states = {offerer.connectionState, answerer.connectionState}
        if states == {"connected"} or "failed" in states:
            return
        await asyncio.sleep(0.05)


def _failed_dtls(pc: RTCPeerConnection) -> RTCDtlsTransport:
    transport: RTCDtlsTransport = pc.sctp.transport
    assert transport.state == "failed"
    return transport


async def test_a_peer_with_an_rsa_certificate_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RSA side offers (`actpass`) so aiortc answering is the DTLS client, as the SFU is
    with webrtcbin: the client's cipher list decides."""
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    aiortc_hooks.setup_dtls()
    rsa_side, fingerprint = rsa_peer(monkeypatch)
    ecdsa_side = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await _connect(rsa_side, ecdsa_side)
        assert f"a=fingerprint:sha-256 {fingerprint}" in rsa_side.localDescription.sdp
        assert (rsa_side.connectionState, ecdsa_side.connectionState) == ("connected",) * 2
    finally:
        await rsa_side.close()
        await ecdsa_side.close()
        aiortc_hooks.set_host_addresses([])


async def test_a_failed_handshake_keeps_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """With aiortc's own ECDSA-only list (what webrtcbin met before), an RSA server finds no
    shared cipher and says so with an alert: each side keeps its own reason."""
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    aiortc_hooks.setup_dtls(accept_rsa_certificates=False)
    rsa_side, _ = rsa_peer(monkeypatch)
    ecdsa_side = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await _connect(rsa_side, ecdsa_side)
        assert "failed" in {rsa_side.connectionState, ecdsa_side.connectionState}
        for _ in range(100):  # the other side fails on the alert, or when it times out
            if {rsa_side.connectionState, ecdsa_side.connectionState} == {"failed"}:
                break
            await asyncio.sleep(0.05)
        assert aiortc_hooks.dtls_failure(_failed_dtls(rsa_side)) == "no shared cipher"
        client = aiortc_hooks.dtls_failure(_failed_dtls(ecdsa_side))
        assert client.startswith("the peer refused it (") and "handshake failure" in client
    finally:
        await rsa_side.close()
        await ecdsa_side.close()
        aiortc_hooks.setup_dtls()
        aiortc_hooks.set_host_addresses([])


def test_failures_without_an_openssl_error_are_told_apart() -> None:
    """No handshake at all (nothing kept): said so, not a guess."""
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [rsa_certificate()])
    assert aiortc_hooks.dtls_failure(transport) == "the handshake did not complete"


def _fingerprint(pc: RTCPeerConnection) -> str:
    return next(
        line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=fingerprint")
    )


async def test_the_servers_peer_connections_share_one_certificate_and_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two server connections (`server_peer_connection`) connect to two clients with one
    certificate and one OpenSSL context between them; other connections keep their own; an old
    shared certificate is replaced for new connections."""
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    aiortc_hooks.setup_dtls()
    config = RTCConfiguration(iceServers=[])
    servers = [aiortc_hooks.server_peer_connection(config) for _ in range(2)]
    clients = [RTCPeerConnection(config) for _ in range(2)]
    try:
        for client, server in zip(clients, servers, strict=True):
            await _connect(client, server)
            assert (client.connectionState, server.connectionState) == ("connected",) * 2
        assert _fingerprint(servers[0]) == _fingerprint(servers[1])
        assert len({_fingerprint(p) for p in [servers[0], *clients]}) == 3
        contexts = [p.sctp.transport._ssl.get_context() for p in [*servers, *clients]]
        assert contexts[0] is contexts[1]
        assert len({id(c) for c in contexts}) == 3
        monkeypatch.setattr(aiortc_hooks, "SHARED_CERTIFICATE_MAX_AGE_S", -1.0)
        newer = aiortc_hooks.server_peer_connection(config)
        newer.createDataChannel("control")
        await newer.setLocalDescription(await newer.createOffer())
        assert _fingerprint(newer) != _fingerprint(servers[0])
        await newer.close()
    finally:
        for pc in [*servers, *clients]:
            await pc.close()
        aiortc_hooks.set_host_addresses([])


async def test_dtls_connections_release_their_buffers_and_still_carry_every_message() -> None:
    """`setup_dtls` contexts release the record buffers between records (the memory a
    listener's connection keeps); messages of every size up to what a station sends still
    arrive whole and in order both ways."""
    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    aiortc_hooks.setup_dtls()
    config = RTCConfiguration(iceServers=[])
    server = aiortc_hooks.server_peer_connection(config)
    client = RTCPeerConnection(config)
    received: dict[str, list[str]] = {"server": [], "client": []}
    channels: dict[str, Any] = {}

    @server.on("datachannel")
    def on_datachannel(channel: Any) -> None:
        if channel.label == "bulk":
            channels["server"] = channel
            channel.on("message", received["server"].append)

    channels["client"] = client.createDataChannel("bulk")
    channels["client"].on("message", received["client"].append)
    try:
        await _connect(client, server)
        assert (client.connectionState, server.connectionState) == ("connected",) * 2
        for pc in (server, client):
            # SSL_set_mode ORs in its argument and returns the mode: 0 reads it
            mode = SSL._lib.SSL_set_mode(pc.sctp.transport._ssl._ssl, 0)
            assert mode & SSL.MODE_RELEASE_BUFFERS
        for _ in range(100):  # bounded: 5 s
            if "server" in channels and channels["server"].readyState == "open":
                break
            await asyncio.sleep(0.05)
        sizes = [1, 100, 1200, 4000, 16_000, 60_000, 3, 9000]
        sent = [f"{n}:" + "x" * n for n in sizes]
        for message in sent:
            channels["client"].send(message)
            channels["server"].send(message[::-1])
        for _ in range(200):  # bounded: 10 s
            if len(received["server"]) == len(received["client"]) == len(sent):
                break
            await asyncio.sleep(0.05)
        assert received["server"] == sent
        assert received["client"] == [m[::-1] for m in sent]
    finally:
        await server.close()
        await client.close()
        aiortc_hooks.set_host_addresses([])


def _has_stats(pc: RTCPeerConnection, kind: str) -> Any:
    async def check() -> bool:
        report = await pc.getStats()
        return any(stat.type == kind for stat in report.values())

    return check


async def test_receiver_reports_are_dropped_and_sender_reports_still_read() -> None:
    """With `skip_receiver_reports` on the server's transport, the client's receiver reports on
    the server's audio never reach aiortc (no remote-inbound-rtp stats), while the client's
    sender reports on its own audio still do (remote-outbound-rtp); without it both arrive."""
    from aiortc.mediastreams import AudioStreamTrack

    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    config = RTCConfiguration(iceServers=[])
    try:
        for skipping in (True, False):
            server, client = RTCPeerConnection(config), RTCPeerConnection(config)
            try:
                client.addTrack(AudioStreamTrack())
                await client.setLocalDescription(await client.createOffer())
                await server.setRemoteDescription(client.localDescription)
                server.getTransceivers()[0].sender.replaceTrack(AudioStreamTrack())
                server.getTransceivers()[0].direction = "sendrecv"
                if skipping:
                    aiortc_hooks.skip_receiver_reports(server.getTransceivers()[0].sender.transport)
                await server.setLocalDescription(await server.createAnswer())
                await client.setRemoteDescription(server.localDescription)
                sender_reports = _has_stats(server, "remote-outbound-rtp")
                receiver_reports = _has_stats(server, "remote-inbound-rtp")
                for _ in range(100):  # bounded: 10 s; aiortc reports every 0.5-1.5 s
                    if await sender_reports() and (skipping or await receiver_reports()):
                        break
                    await asyncio.sleep(0.1)
                assert await sender_reports()
                if skipping:
                    await asyncio.sleep(3.0)  # two receiver reports or more have gone
                    assert not await receiver_reports()
                else:
                    assert await receiver_reports()
            finally:
                await server.close()
                await client.close()
    finally:
        aiortc_hooks.set_host_addresses([])


def test_a_certificates_fingerprints_are_computed_once_and_are_aiortcs() -> None:
    """The cached fingerprints are what aiortc computes, per certificate, and a caller that
    changes the list it got changes nothing kept."""
    from aiortc.rtcdtlstransport import certificate_digest

    first, second = RTCCertificate.generateCertificate(), RTCCertificate.generateCertificate()
    for certificate in (first, second):
        fingerprints = certificate.getFingerprints()
        assert [(f.algorithm, f.value) for f in fingerprints] == [
            (f.algorithm, certificate_digest(certificate._cert, f.algorithm)) for f in fingerprints
        ]
        assert {f.algorithm for f in fingerprints} >= {"sha-256"}
        fingerprints.clear()
        assert tuple(certificate.getFingerprints()) == aiortc_hooks._FINGERPRINTS[certificate]
        assert len(certificate.getFingerprints()) == 3
    assert first.getFingerprints()[0].value != second.getFingerprints()[0].value


async def test_a_receiver_that_does_not_receive_gives_up_its_decoder_queue() -> None:
    """A listener's receiver (the client only receives: the server only sends on it) drops
    aiortc's decoder queue for good; one whose peer sends (receive() called after the drop)
    gets a queue back and decodes: the client's audio arrives as frames on the server's track."""
    from aiortc.mediastreams import AudioStreamTrack

    aiortc_hooks.set_host_addresses(["127.0.0.1"])
    config = RTCConfiguration(iceServers=[])
    queue_attr = "_RTCRtpReceiver__decoder_queue"
    peers: list[RTCPeerConnection] = []
    try:
        receivers = []
        for client_sends in (False, True):
            server, client = RTCPeerConnection(config), RTCPeerConnection(config)
            peers += [server, client]
            if client_sends:
                client.addTrack(AudioStreamTrack())
            else:
                client.addTransceiver("audio", direction="recvonly")
            await client.setLocalDescription(await client.createOffer())
            await server.setRemoteDescription(client.localDescription)
            if not client_sends:
                server.getTransceivers()[0].sender.replaceTrack(AudioStreamTrack())
            receiver = server.getTransceivers()[0].receiver
            aiortc_hooks.release_idle_decoder_queue(receiver)
            assert getattr(receiver, queue_attr) is None
            await server.setLocalDescription(await server.createAnswer())
            await client.setRemoteDescription(server.localDescription)
            receivers.append(receiver)
        listening, receiving = receivers
        frame = await asyncio.wait_for(receiving.track.recv(), timeout=10)  # once connected
        assert frame.samples > 0
        assert getattr(receiving, queue_attr) is not None
        assert getattr(listening, queue_attr) is None  # never received: nothing kept
        aiortc_hooks.release_idle_decoder_queue(receiving)  # receiving: left alone
        assert getattr(receiving, queue_attr) is not None
    finally:
        for pc in peers:
            await pc.close()
        aiortc_hooks.set_host_addresses([])
