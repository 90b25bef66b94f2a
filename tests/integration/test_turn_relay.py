"""Through coturn: with the server's policy `relay`, the station's agent and an operator reach
the SFU only through a real `turnserver` (use-auth-secret, the credentials RadioCore issues per
peer); audio and the control channel flow, PTT reaches the rig side, coturn's log shows each
peer's allocation, and forged or expired credentials are refused by coturn itself."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioice.turn
import pytest

from radiocore import aiortc_hooks
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    sfu_of,
    start_server,
    stop_server,
    tone_of,
)
from tests.support.coturn import Coturn, require_coturn
from tests.support.waiting import wait_for


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    require_coturn()
    relay = Coturn(tmp_path)
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
async def relayed(tmp_path: Path, coturn: Coturn) -> AsyncIterator[LiveServer]:
    server = await start_server(
        tmp_path,
        env={"RADIOCORE_TURN__SECRET": coturn.secret},
        config={"turn.urls": (coturn.url("udp"),), "ice.transport_policy": "relay"},
    )
    yield server
    await stop_server(server)
    aiortc_hooks.set_host_addresses(())


async def test_agent_and_operator_meet_through_the_relay(
    relayed: LiveServer, coturn: Coturn, tmp_path: Path
) -> None:
    agent = AgentProcess(relayed, sink=tmp_path / "tx.raw", tone_hz=800)
    agent.start()
    operator = Operator(relayed, await relayed.token(relayed.owner), mic_hz=1500)
    try:
        online = await wait_for(lambda: sfu_of(relayed).station_online(relayed.board_id), 30)
        assert online, agent.log.read_text()[-3000:] if agent.log else "no agent log"
        await operator.connect()
        answered = await operator.join_and_listen(relayed.board_id)
        assert answered["ok"], answered
        joined = operator.joined
        assert joined["ice_transport_policy"] == "relay"
        (turn,) = joined["ice_servers"]  # no STUN configured: one TURN entry
        assert turn["urls"] == [coturn.url("udp")]
        assert turn["username"].endswith(":" + relayed.owner.user_id)
        assert coturn.secret not in str(joined)
        # audio through the relay, both ways, and the control channel
        assert await wait_for(lambda: len(operator.frames) >= 100, seconds=20)
        rms, peak = tone_of(operator.pcm(50))
        assert rms > 500 and abs(peak - 800) < 15, (rms, peak)
        assert await wait_for(lambda: len(operator.messages("status")) >= 1)
        operator.key()
        assert await wait_for(lambda: len(agent.tx_pcm()) >= 48000, seconds=15)
        operator.unkey()
        # the operator's media goes through its relay candidate, not a host one
        assert operator.pc is not None
        dtls = operator.pc.getTransceivers()[0].sender.transport
        pair = aiortc_hooks.nominated_pair(dtls)
        assert pair is not None and pair.local_candidate.type == "relay", pair
        # each peer made its own allocation, with credentials issued for it
        assert coturn.allocations_of(relayed.board_id) >= 1, coturn.log_text()[-2000:]
        assert coturn.allocations_of(relayed.owner.user_id) >= 1, coturn.log_text()[-2000:]
    finally:
        await operator.close()
        await asyncio.to_thread(agent.stop)


def _password(secret: str, username: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()


@pytest.mark.parametrize("case", ["forged", "expired", "right"])
async def test_coturn_refuses_forged_and_expired_credentials(coturn: Coturn, case: str) -> None:
    expiry = int(time.time()) + (-30 if case == "expired" else 600)
    username = f"{expiry}:probe"
    password = "not-the-hmac" if case == "forged" else _password(coturn.secret, username)
    try:
        transport, _ = await aioice.turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=("127.0.0.1", coturn.port),
            username=username,
            password=password,
        )
    except aioice.stun.TransactionFailed as exc:
        assert case != "right", exc
        assert "401" in str(exc)
        return
    transport.close()
    assert case == "right", f"coturn granted an allocation to {case} credentials"


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1


async def test_a_relay_in_use_outlives_its_credentials(coturn: Coturn) -> None:
    """coturn checks use-auth-secret credentials when an allocation is made, not while it is in
    use: a session that outlives its credentials keeps relaying (coturn/coturn#774). New
    allocations with the same credentials are refused once they expired."""
    loop = asyncio.get_running_loop()
    expiry = int(time.time()) + 2
    username = f"{expiry}:long-session"
    password = _password(coturn.secret, username)
    peer_transport, peer = await loop.create_datagram_endpoint(
        _Counter, local_addr=("127.0.0.1", 0)
    )
    relay, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", coturn.port),
        username=username,
        password=password,
    )
    try:
        peer_address = peer_transport.get_extra_info("sockname")
        for _ in range(40):  # bounded: until 2 s past the expiry
            relay.sendto(b"still here", peer_address)
            await asyncio.sleep(0.1)
            if time.time() > expiry + 2:
                break
        before = peer.received
        relay.sendto(b"after expiry", peer_address)
        assert await wait_for(lambda: peer.received > before, seconds=3), (
            "the relay stopped when its credentials expired"
        )
        with pytest.raises(aioice.stun.TransactionFailed, match="401"):
            late, _ = await aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=("127.0.0.1", coturn.port),
                username=username,
                password=password,
            )
            late.close()
    finally:
        relay.close()
        peer_transport.close()
