"""A listener on a relayed path gets a bounded queue that drops its oldest packets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from media.forwarder import ListenerQueue


@dataclass
class SlowProtocol:
    """Stands in for aioice's TURN protocol: each send waits until the test lets it go."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[bytes] = field(default_factory=list)

    async def send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        await self.gate.wait()
        self.sent.append(data)


@dataclass
class Pair:
    protocol: SlowProtocol
    remote_addr: tuple[str, int] = ("192.0.2.1", 3478)


async def test_a_stalled_relay_keeps_only_the_newest_packets() -> None:
    protocol = SlowProtocol()
    queue = ListenerQueue(Pair(protocol), maxlen=4)
    for n in range(10):
        queue.push(bytes([n]))
    await asyncio.sleep(0)  # the drain task starts: it takes packet 6 (0-5 were dropped)
    for n in range(10, 20):
        queue.push(bytes([n]))
    protocol.gate.set()
    for _ in range(100):
        if len(protocol.sent) >= 5:
            break
        await asyncio.sleep(0.01)
    queue.close()
    # what was in flight, then the 4 newest: a slow listener hears the present, not the past
    assert protocol.sent == [bytes([6]), bytes([16]), bytes([17]), bytes([18]), bytes([19])]
    assert queue.dropped == 15
