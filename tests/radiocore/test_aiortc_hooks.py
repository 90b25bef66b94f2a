"""The forwarding hook relies on aiortc/aioice internals; this fails loudly when they move."""

from __future__ import annotations

import asyncio

import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from radiocore import aiortc_hooks
from radiocore.aiortc_hooks import HookError


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
        assert aioice.ice.get_host_addresses is original
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
