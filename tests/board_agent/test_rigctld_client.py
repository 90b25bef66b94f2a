"""RigClient against a real rigctld (Hamlib's dummy rig): commands, replies, errors, time-outs,
connection loss and reconnection. Values are read back over a separate raw connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from board_agent.errors import RigError, RigOfflineError, RigTimeoutError
from board_agent.rigctld import FRESH_ATTEMPTS, RigCaps, RigClient, describe_code
from tests.support.rigctld import (
    RigctldServer,
    free_port,
    raw_query,
    rig_freq,
    rig_mode,
    rig_power,
    rig_ptt,
)


@pytest.fixture
async def client(rigctld: RigctldServer) -> AsyncIterator[RigClient]:
    rig = RigClient("127.0.0.1", rigctld.port, timeout_s=1.0)
    try:
        yield rig
    finally:
        await rig.close()


async def test_set_and_get_freq_mode_ptt_power(rigctld: RigctldServer, client: RigClient) -> None:
    await client.set_freq(7_074_000)
    assert await rig_freq(rigctld.port) == 7_074_000
    assert await client.get_freq() == 7_074_000

    await client.set_mode("LSB", 1800)
    assert await rig_mode(rigctld.port) == "LSB"
    assert await client.get_mode() == ("LSB", 1800)
    await client.set_mode("USB")  # passband 0 (the dummy keeps the width it had)
    assert await rig_mode(rigctld.port) == "USB"

    await client.set_ptt(True)
    assert await rig_ptt(rigctld.port) is True
    assert await client.get_ptt() is True
    await client.set_ptt(False)
    assert await rig_ptt(rigctld.port) is False

    await client.set_level("RFPOWER", 0.5)
    assert await rig_power(rigctld.port) == 0.5
    assert await client.get_level("RFPOWER") == 0.5

    strength = await client.get_level("STRENGTH")  # the dummy's S-meter wanders below S9
    assert -60 <= strength <= 60 and strength == int(strength)
    assert isinstance(await client.get_dcd(), bool)
    assert client.generation == 1  # all on one connection


async def test_dump_caps_of_the_dummy_rig(client: RigClient) -> None:
    caps = await client.dump_caps()
    assert caps.model == "Hamlib Dummy"
    assert caps.modes == ("AM", "CW", "USB", "LSB", "RTTY", "FM", "WFM", "CWR", "RTTYR")
    assert caps.rx_ranges == ((150_000, 1_500_000_000),)  # two identical ITU regions, merged
    assert {"STRENGTH", "RFPOWER"} <= caps.get_levels
    assert "RFPOWER" in caps.set_levels and "STRENGTH" not in caps.set_levels
    assert caps.can_get_dcd


def test_caps_parse_merges_and_sorts_ranges() -> None:
    text = (
        "Model name:\tX\nMode list: USB LSB \nRX ranges #1 for A:\n"
        "\t144000000 Hz - 146000000 Hz\n\t\tMode list: FM\n\t1800000 Hz - 2000000 Hz\n"
        "TX ranges #1 for A:\n\t7000000 Hz - 7200000 Hz\nRX ranges #2 for B:\n"
        "\t1900000 Hz - 3800000 Hz\nRX ranges #1 status for A:\tOK (0)\nCan get DCD:\tN\n"
    )
    caps = RigCaps.parse(tuple(text.splitlines()))
    assert caps.rx_ranges == ((1_800_000, 3_800_000), (144_000_000, 146_000_000))
    assert caps.modes == ("USB", "LSB") and caps.model == "X"
    assert not caps.can_get_dcd and caps.get_levels == frozenset()


async def test_an_error_reply_is_a_clear_rig_error(
    rigctld: RigctldServer, client: RigClient
) -> None:
    await client.get_freq()  # connected (rigctld 4.5 may drop a fresh connection once)
    connection = client.generation
    with pytest.raises(RigError, match=r"RPRT -1 \(RIG_EINVAL: invalid parameter\)") as info:
        await client.request("set_freq", "abc")
    assert info.value.code == -1
    assert type(info.value) is RigError
    assert "'set_freq abc'" in str(info.value)
    with pytest.raises(RigError, match=r"RPRT -11 \(RIG_ENAVAIL") as info:
        await client.set_level("NOSUCHLEVEL", 1)
    assert info.value.code == -11
    # the connection stays in step after an error
    assert await client.get_level("RFPOWER") == await rig_power(rigctld.port)
    assert client.generation == connection
    assert describe_code(-11) == "RPRT -11 (RIG_ENAVAIL: function not available)"
    assert describe_code(-99) == "RPRT -99 (unknown: unknown Hamlib error)"


async def test_commands_are_checked_before_sending(client: RigClient) -> None:
    with pytest.raises(ValueError, match="not a rigctld command"):
        await client.request("set_freq", "7074000\n+\\set_ptt 1")
    with pytest.raises(ValueError, match="not a rigctld command"):
        await client.set_mode("USB LSB")
    assert not client.connected  # nothing was sent


async def test_no_rigctld_is_offline() -> None:
    client = RigClient("127.0.0.1", free_port(), timeout_s=0.5)
    with pytest.raises(RigOfflineError, match=r"cannot connect to rigctld at 127\.0\.0\.1"):
        await client.get_freq()
    with pytest.raises(RigOfflineError, match="not connected"):
        await client.get_freq(reconnect=False)


async def test_a_silent_peer_times_out_and_the_connection_is_dropped() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RigClient("127.0.0.1", port, timeout_s=0.3)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RigTimeoutError, match=r"did not answer 'get_freq' within 0.3 s"):
            await client.get_freq()
        assert 0.25 <= loop.time() - started <= 0.8
        assert not client.connected  # a late reply must not answer the next request
    finally:
        await client.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_rigctld_killed_then_back_reconnects_on_demand(
    rigctld: RigctldServer, client: RigClient
) -> None:
    await client.set_freq(10_000_000)
    rigctld.kill()
    with pytest.raises(RigOfflineError):
        await client.get_freq()  # EOF on the old connection
    assert not client.connected
    await asyncio.wait_for(client.wait_closed(), 1)
    with pytest.raises(RigOfflineError, match="cannot connect"):
        await client.get_freq()
    await asyncio.to_thread(rigctld.start)
    assert await client.get_freq() == 145_000_000  # a fresh dummy rig
    assert client.generation >= 2  # (3 if rigctld dropped the first new connection)


async def test_cancelling_a_request_drops_the_connection(client: RigClient) -> None:
    task = asyncio.create_task(client.set_freq(7_000_000))  # the dummy takes ~20 ms
    await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not client.connected
    assert await client.get_freq() in (7_000_000, 145_000_000)
    assert await raw_query(client.port, "get_powerstat") == ["Power Status: 1"]


class ScriptedRigctld:
    """A stand-in for rigctld's socket that answers each connection from a script: a list of
    replies per connection, None meaning "close the connection instead"."""

    def __init__(self, connections: list[list[str | None]]) -> None:
        self.connections = connections
        self.received: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies = self.connections.pop(0) if self.connections else []
        try:
            for reply in replies:
                line = await reader.readline()
                self.received.append(line.decode().strip())
                if reply is None:
                    break
                writer.write(reply.encode())
                await writer.drain()
        finally:
            writer.close()


async def test_a_new_connection_closed_at_once_is_retried_on_another() -> None:
    script: list[list[str | None]] = [
        [None],  # rigctld 4.5's race: the new connection closes without a reply
        [None],  # and the next one too (a busy machine)
        ["get_freq:\nFrequency: 7074000\nRPRT 0\n"],
    ]
    async with ScriptedRigctld(script) as port:
        client = RigClient("127.0.0.1", port)
        assert await client.get_freq() == 7_074_000
        assert client.generation == FRESH_ATTEMPTS
        await client.close()


async def test_a_rigctld_that_closes_every_new_connection_is_offline_after_a_bound() -> None:
    script: list[list[str | None]] = [[None]] * (FRESH_ATTEMPTS + 1)
    async with ScriptedRigctld(script) as port:
        client = RigClient("127.0.0.1", port)
        with pytest.raises(RigOfflineError, match="during 'get_freq'"):
            await client.get_freq()
        assert client.generation == FRESH_ATTEMPTS  # tried that many connections, no more
        await client.close()


async def test_a_reply_out_of_step_drops_the_connection() -> None:
    stray = "set_ptt: 0\nRPRT 0\n"  # an answer, but not to this request
    script: list[list[str | None]] = [
        ["set_ptt: 0\nRPRT 0\n", stray],
        ["get_freq:\nFrequency: 145000000\nRPRT 0\n"],
    ]
    async with ScriptedRigctld(script) as port:
        client = RigClient("127.0.0.1", port)
        await client.set_ptt(False)
        with pytest.raises(RigOfflineError, match="the reply starts with 'set_ptt: 0'"):
            await client.get_freq()  # an answered connection: not retried, dropped
        assert not client.connected
        assert await client.get_freq() == 145_000_000  # a new connection
        await client.close()


@pytest.mark.parametrize(
    ("reply", "read"),
    [
        ("get_freq:\nFrequency: inf\nRPRT 0\n", lambda c: c.get_freq()),
        ("get_mode:\nMode: USB\nPassband: nan\nRPRT 0\n", lambda c: c.get_mode()),
        ("get_level: STRENGTH\n1e999\nRPRT 0\n", lambda c: c.get_level("STRENGTH")),
        ("get_level: RFPOWER\nNaN\nRPRT 0\n", lambda c: c.get_level("RFPOWER")),
    ],
    ids=["freq-inf", "passband-nan", "strength-overflow", "power-nan"],
)
async def test_a_reading_that_is_not_a_finite_number_is_a_rig_error(
    reply: str, read: Callable[[RigClient], Awaitable[object]]
) -> None:
    """`float()` reads inf and nan; `round()` of them raised OverflowError/ValueError past the
    station's `except RigError` (found by `radiocore bench fuzz`)."""
    async with ScriptedRigctld([[reply]]) as port:
        client = RigClient("127.0.0.1", port)
        try:
            with pytest.raises(RigError, match="is not a number"):
                await read(client)
        finally:
            await client.close()


def test_caps_parse_skips_a_range_no_float_holds() -> None:
    text = (
        "Mode list: USB\nRX ranges #1 for A:\n\t" + "9" * 400 + " Hz - " + "9" * 401 + " Hz\n"
        "\t1800000 Hz - 2000000 Hz\n"
    )
    caps = RigCaps.parse(tuple(text.splitlines()))  # round(inf) raised OverflowError
    assert caps.rx_ranges == ((1_800_000, 2_000_000),)
