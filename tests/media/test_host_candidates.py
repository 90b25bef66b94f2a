"""The SFU's host candidates behind a firewall and a 1:1 NAT: bound in the configured UDP port
range, announcing the configured public address, and media still flowing through them."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator

import pytest

from media.config import SfuConfig
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.peers import apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#: TEST-NET-2: never a real host.
ANNOUNCED = "198.51.100.7"
HOST_CANDIDATE = re.compile(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host")


def free_range(size: int) -> tuple[int, int]:
    """A run of `size` UDP ports free on 127.0.0.1 right now (bounded search)."""
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
        probe.close()
        if low + size > 65535:
            continue
        taken = []
        try:
            for port in range(low, low + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                taken.append(s)
                s.bind(("127.0.0.1", port))
            return low, low + size - 1
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
    raise AssertionError("no run of free UDP ports found")


@pytest.fixture
async def ranged() -> AsyncIterator[tuple[Sfu, tuple[int, int]]]:
    ports = free_range(8)
    server = Sfu(SfuConfig(ice_host_addresses=("127.0.0.1",), ice_port_range=ports))
    yield server, ports
    await server.close()
    aiortc_hooks.set_host_addresses(())


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    return [(m[1], int(m[2])) for m in HOST_CANDIDATE.finditer(sdp)]


async def test_host_candidates_bind_in_the_port_range_and_media_flows(
    ranged: tuple[Sfu, tuple[int, int]],
) -> None:
    sfu, (low, high) = ranged
    pc = peer()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("control")
    try:
        answer = await sfu.connect_agent(BOARD, "Station", await offer_sdp(pc))
        found = host_candidates(answer)
        assert found, answer
        assert all(host == "127.0.0.1" and low <= port <= high for host, port in found), found
        await apply_answer(pc, answer)
        assert await wait_for(lambda: sfu.station_online(BOARD), seconds=10)
    finally:
        await pc.close()


async def test_a_full_port_range_gives_no_host_candidate_and_says_so(
    ranged: tuple[Sfu, tuple[int, int]], caplog: pytest.LogCaptureFixture
) -> None:
    sfu, (low, high) = ranged
    held = []
    try:
        for port in range(low, high + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))
            held.append(s)
        pc = peer()
        pc.addTransceiver("audio", direction="sendrecv")
        pc.createDataChannel("control")
        try:
            answer = await sfu.connect_agent(BOARD, "Station", await offer_sdp(pc))
        finally:
            await pc.close()
        assert host_candidates(answer) == []
        assert f"no free UDP port in {low}-{high} on 127.0.0.1" in caplog.text
    finally:
        for s in held:
            s.close()


async def test_host_candidates_announce_the_public_address() -> None:
    sfu = Sfu(SfuConfig(ice_host_addresses=("127.0.0.1",), ice_announced_address=ANNOUNCED))
    pc = peer()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("control")
    try:
        answer = await sfu.connect_agent(BOARD, "Station", await offer_sdp(pc))
        assert {host for host, _ in host_candidates(answer)} == {ANNOUNCED}, answer
        assert "127.0.0.1" not in answer
    finally:
        await pc.close()
        await sfu.close()
        aiortc_hooks.set_host_addresses(())


async def test_other_connections_in_the_process_keep_aiortc_behaviour(
    ranged: tuple[Sfu, tuple[int, int]],
) -> None:
    """The policy is the SFU's: a client peer in the same process binds where it likes."""
    _, (low, high) = ranged
    pc = peer()
    pc.addTransceiver("audio", direction="sendrecv")
    try:
        offer = await offer_sdp(pc)
    finally:
        await pc.close()
    ports = [port for _, port in host_candidates(offer)]
    assert ports and not any(low <= port <= high for port in ports)
