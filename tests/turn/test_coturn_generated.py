"""A real coturn started with the configuration `radiocore turn config` renders: it grants
allocations to the credentials RadioCore issues (over UDP, TCP and TLS), relays between two
peers on the SFU's allowed address (an aiortc relay-only pair included), and refuses to relay
to any private, loopback or link-local address that is not allowed; and, in a private
network namespace where the relay has a public address, relays between public peers with
nothing allowed while refusing every internal address, over IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import aioice.stun
import aioice.turn
import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from radiocore import aiortc_hooks
from tests.support.components import missing
from tests.support.coturn import require_coturn
from tests.support.namespaces import namespace_command, run_check
from tests.support.waiting import wait_for
from tests.turn.generated import INTERNAL, GeneratedCoturn, self_signed_certificate
from turn.credentials import TurnCredentialIssuer
from turn.probe import probe_all

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parents[1]
RELAY_CHECK: Final = HERE / "relay_check.py"
# What relay_check.py does first, in a throw-away namespace.
NAMESPACE_PROBE: Final = (
    "ip link set lo up && ip addr add 11.0.0.1/32 dev lo && ip addr add 2a00:1::1/128 dev lo nodad"
)


@pytest.fixture(scope="module")
def relay_report() -> dict[str, Any]:
    """One run of relay_check.py in a private network namespace (only loopback)."""
    require_coturn()
    if shutil.which("ip") is None:
        missing("`ip` is not installed (Debian: iproute2)")
    namespace, why = namespace_command(NAMESPACE_PROBE)
    if namespace is None:
        missing(f"the relay check cannot run: {why}")
    return run_check(namespace, RELAY_CHECK, [], REPO_ROOT, 90)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_the_hardened_relay_carries_public_peers_and_refuses_every_internal_one(
    relay_report: dict[str, Any], family: str
) -> None:
    seen = relay_report[family]
    # two peers on public addresses, nothing allowed: relayed both ways
    assert seen["east_received"] == ["from-west"] and seen["west_received"] == ["from-east"], seen
    version = 4 if family == "ipv4" else 6
    internal = [a for a in INTERNAL if ipaddress.ip_address(a).version == version]
    assert sorted(seen["internal"]) == sorted(internal)
    admitted = {address: answer for address, answer in seen["internal"].items() if answer != 403}
    assert not admitted, f"coturn did not refuse (403) these peers: {admitted}"


@pytest.fixture
def allowed_coturn(tmp_path: Path) -> Iterator[GeneratedCoturn]:
    """The deployment's coturn with the SFU on 127.0.0.1 (as `allowed_peer_ips` or
    `ice.host_addresses` would make it), and a certificate for turns:."""
    require_coturn()
    relay = GeneratedCoturn(
        tmp_path, allowed_peer_ips=("127.0.0.1",), tls=self_signed_certificate(tmp_path)
    )
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def hardened_coturn(tmp_path: Path) -> Iterator[GeneratedCoturn]:
    """The rendered defaults: no address allowed beyond the public ones."""
    require_coturn()
    relay = GeneratedCoturn(tmp_path)
    relay.start()
    yield relay
    relay.stop()


class Peer(asyncio.DatagramProtocol):
    """One side of a TURN allocation: what it received, the errors of its sends."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.errors: list[Exception] = []
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


Allocation = tuple[aioice.turn.TurnTransport, Peer]


async def allocate(coturn: GeneratedCoturn, identity: str) -> Allocation:
    creds = TurnCredentialIssuer(coturn.secret, 600).issue(identity)
    return await aioice.turn.create_turn_endpoint(
        Peer, ("127.0.0.1", coturn.port), username=creds.username, password=creds.password
    )


@pytest.fixture
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Allocation, Allocation]]:
    coturn: GeneratedCoturn = request.getfixturevalue(request.param)
    first = await allocate(coturn, "peer-a")
    second = await allocate(coturn, "peer-b")
    yield first, second
    for relay, peer in (first, second):
        relay.close()
        await asyncio.wait_for(peer.closed, 5)


def relayed(allocation: Allocation) -> tuple[str, int]:
    address: tuple[str, int] = allocation[0].get_extra_info("sockname")
    return address


async def refusal(allocation: Allocation, peer_address: tuple[str, int]) -> int | None:
    """The STUN error coturn answers when `allocation` asks to relay to `peer_address`."""
    relay, peer = allocation
    before = len(peer.errors)
    relay.sendto(b"probe", peer_address)
    assert await wait_for(lambda: len(peer.errors) > before, 5), f"no answer for {peer_address}"
    error = peer.errors[-1]
    assert isinstance(error, aioice.stun.TransactionFailed), error
    return error.response.error_code


async def test_the_probe_is_granted_allocations_over_udp_tcp_and_tls(
    allowed_coturn: GeneratedCoturn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert allowed_coturn.settings.tls_cert_file is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(allowed_coturn.settings.tls_cert_file))
    issuer = TurnCredentialIssuer(allowed_coturn.secret, 600)
    results = await probe_all(allowed_coturn.settings.urls, issuer)
    assert [(r.transport, r.ok) for r in results] == [("udp", True), ("tcp", True), ("tls", True)]
    assert all(r.relayed_address and r.relayed_address.startswith("127.0.0.1:") for r in results)
    # a client that does not trust the certificate is told so, as a browser would be
    untrusted = tmp_path / "no-ca.pem"
    untrusted.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(untrusted))
    (tls,) = await probe_all([allowed_coturn.url("tls")], issuer)
    assert not tls.ok and "TLS handshake failed" in tls.detail and "certificate" in tls.detail


@pytest.mark.parametrize("pair", ["allowed_coturn"], indirect=True)
async def test_the_relay_carries_datagrams_to_the_allowed_address_and_nowhere_internal(
    pair: tuple[Allocation, Allocation],
) -> None:
    first, second = pair
    # each side permits the other (TURN drops what comes from a peer without a permission)
    for _ in range(20):  # bounded: datagrams may be sent before a channel is bound
        first[0].sendto(b"from-a", relayed(second))
        second[0].sendto(b"from-b", relayed(first))
        if await wait_for(lambda: first[1].received and second[1].received, 0.5):
            break
    assert b"from-a" in second[1].received and b"from-b" in first[1].received
    assert not first[1].errors and not second[1].errors
    # everything internal but the allowed address stays out of reach
    port = relayed(second)[1]
    for address in ("127.0.0.2", "10.1.2.3", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
        assert await refusal(first, (address, port)) == 403, address


@pytest.mark.parametrize("pair", ["hardened_coturn"], indirect=True)
async def test_without_an_allowance_even_the_relays_own_loopback_peers_are_refused(
    pair: tuple[Allocation, Allocation],
) -> None:
    first, second = pair
    assert await refusal(first, relayed(second)) == 403
    assert not second[1].received


async def test_an_aiortc_relay_only_pair_talks_through_the_generated_coturn(
    allowed_coturn: GeneratedCoturn,
) -> None:
    aiortc_hooks.set_host_addresses(("127.0.0.1",))
    issuer = TurnCredentialIssuer(allowed_coturn.secret, 600)

    def peer(identity: str) -> RTCPeerConnection:
        creds = issuer.issue(identity)
        server = RTCIceServer(
            urls=[allowed_coturn.url("udp")], username=creds.username, credential=creds.password
        )
        return RTCPeerConnection(
            RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
        )

    caller, callee = peer("caller"), peer("callee")
    heard: list[str] = []
    try:
        channel = caller.createDataChannel("control")
        channel.on("message", heard.append)

        @callee.on("datachannel")
        def on_channel(remote: object) -> None:
            remote.on("message", lambda message: remote.send(f"echo {message}"))  # type: ignore[attr-defined]

        await caller.setLocalDescription(await caller.createOffer())
        await callee.setRemoteDescription(caller.localDescription)
        await callee.setLocalDescription(await callee.createAnswer())
        await caller.setRemoteDescription(callee.localDescription)
        for sdp in (caller.localDescription.sdp, callee.localDescription.sdp):
            types = {line.split()[7] for line in sdp.splitlines() if "a=candidate:" in line}
            assert types == {"relay"}, sdp
        assert await wait_for(lambda: channel.readyState == "open", 20)
        channel.send("ping")
        assert await wait_for(lambda: heard, 10)
        assert heard == ["echo ping"]
        pair = aiortc_hooks.nominated_pair(caller.sctp.transport)  # type: ignore[union-attr]
        assert pair is not None and pair.local_candidate.type == "relay"
        assert pair.remote_candidate.type == "relay"
    finally:
        await caller.close()
        await callee.close()
        aiortc_hooks.set_host_addresses(())
