"""HamlibStation against a real rigctld (Hamlib's dummy rig): commands reach the rig, its own
checks refuse what the rig must not get, and a lost rig goes offline, counts as unkeyed and is
unkeyed first when it answers again. The rig's state is read back over a raw connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from board_agent.errors import InvalidCommandError, RigOfflineError
from board_agent.hamlib_station import HamlibStation
from board_agent.rigctld import RigClient, RigReply
from radiocore_protocol import (
    Capabilities,
    FrequencyRange,
    Keepalive,
    Ptt,
    RigMode,
    SetFrequency,
    SetMode,
    SetPower,
    Status,
)
from tests.support.rigctld import (
    CuttableLink,
    RigctldServer,
    raw_query,
    rig_freq,
    rig_mode,
    rig_power,
    rig_ptt,
)


class RecordingClient(RigClient):
    """A RigClient that notes every request it makes, with the connection it used."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 1.0) -> None:
        super().__init__(host, port, timeout_s=timeout_s)
        self.sent: list[tuple[int, str]] = []

    async def request(self, command: str, *args: str, reconnect: bool = True) -> RigReply:
        try:
            return await super().request(command, *args, reconnect=reconnect)
        finally:
            self.sent.append((self.generation, " ".join((command, *args))))

    def commands(self) -> list[str]:
        return [text for _, text in self.sent]


async def open_station(port: int, **options: object) -> tuple[HamlibStation, RecordingClient]:
    client = RecordingClient("127.0.0.1", port, timeout_s=1.0)
    station = HamlibStation(client, reconnect_max_s=0.3, **options)  # type: ignore[arg-type]
    await station.open()
    return station, client


@pytest.fixture
async def station(rigctld: RigctldServer) -> AsyncIterator[HamlibStation]:
    station, _ = await open_station(rigctld.port)
    try:
        yield station
    finally:
        await station.close()


async def wait_online(station: HamlibStation, state: bool, within: float) -> Status:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        status = await station.status()
        if status.rig_online is state:
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"rig_online did not become {state} within {within} s")


async def test_commands_reach_the_rig(rigctld: RigctldServer, station: HamlibStation) -> None:
    port = rigctld.port
    await station.apply(SetFrequency(value=7_074_000))
    assert await rig_freq(port) == 7_074_000
    await station.apply(SetMode(value="LSB"))
    assert await rig_mode(port) == "LSB"
    await station.apply(SetPower(value=50))
    assert await rig_power(port) == 0.5
    await station.apply(Ptt(state=True))
    assert await rig_ptt(port) is True
    await station.apply(Keepalive())  # not a rig command: ignored
    await station.apply(Ptt(state=False))
    assert await rig_ptt(port) is False

    status = await station.status()
    assert (status.freq, status.mode, status.power, status.ptt) == (7_074_000, "LSB", 50, False)
    assert status.rig_online is True
    assert isinstance(status.squelch, bool)  # the dummy's DCD
    # the dummy's STRENGTH (dB over S9) wanders, by a few dB around a level that depends on
    # the frequency (-38 … -35 at 145 MHz, -17 … +2 at 7 MHz); dBm = strength - 73
    assert status.smeter is not None and -73 - 60 <= status.smeter <= -73 + 60


async def test_smeter_is_strength_over_s9_in_dbm(rigctld: RigctldServer) -> None:
    class FixedStrength(RecordingClient):
        async def get_level(self, name: str, *, reconnect: bool = True) -> float:
            value = await super().get_level(name, reconnect=reconnect)
            return 12.0 if name == "STRENGTH" else value

    station = HamlibStation(FixedStrength("127.0.0.1", rigctld.port))
    await station.open()
    try:
        assert (await station.status()).smeter == -61  # S9 + 12 dB
    finally:
        await station.close()


async def test_capabilities_come_from_dump_caps(station: HamlibStation) -> None:
    assert await station.capabilities() == Capabilities(
        modes=["USB", "LSB", "CW", "CWR", "AM", "FM", "WFM", "RTTY", "RTTYR"],
        freq_ranges=[FrequencyRange(low=150_000, high=1_500_000_000)],
    )


async def test_config_narrows_the_rigs_capabilities(rigctld: RigctldServer) -> None:
    station, _ = await open_station(
        rigctld.port,
        freq_ranges=((100_000, 200_000), (7_000_000, 7_200_000), (2_000_000_000, 2_100_000_000)),
        modes=("LSB", "USB", "PKTUSB"),
    )
    try:
        assert await station.capabilities() == Capabilities(
            modes=["USB", "LSB"],  # the dummy has no PKTUSB
            freq_ranges=[
                FrequencyRange(low=150_000, high=200_000),
                FrequencyRange(low=7_000_000, high=7_200_000),
            ],
        )
        with pytest.raises(InvalidCommandError, match="outside the rig's frequency ranges"):
            await station.apply(SetFrequency(value=14_074_000))  # the rig could, the owner not
    finally:
        await station.close()


async def test_refused_commands_never_reach_the_rig(rigctld: RigctldServer) -> None:
    port = rigctld.port
    station, client = await open_station(port)
    try:
        await station.apply(SetFrequency(value=14_205_000))
        await station.apply(SetMode(value="USB"))
        await station.apply(SetPower(value=30))
        before = len(client.sent)
        refusals = [
            (SetFrequency(value=2_000_000_000), "2000000000 Hz is outside .*0.15 … 1500 MHz"),
            (SetFrequency(value=100_000), "outside the rig's frequency ranges"),
            (SetMode(value="PKTUSB"), "the rig has no mode PKTUSB"),  # the dummy would take it
            (SetMode(value="FOO"), "unknown mode 'FOO'"),  # built in code: never decoded
            (SetPower(value=101), r"power 101 is not 0 … 100 %"),
            (SetPower(value=-1), r"power -1 is not 0 … 100 %"),
        ]
        for message, reason in refusals:
            with pytest.raises(InvalidCommandError, match=reason):
                await station.apply(message)  # type: ignore[arg-type]
        assert client.sent[before:] == []  # not one request
        assert await rig_freq(port) == 14_205_000
        assert await rig_mode(port) == "USB"
        assert await rig_power(port) == 0.3
    finally:
        await station.close()


async def test_rigctld_killed_goes_offline_then_recovers_unkeying_first(
    rigctld: RigctldServer,
) -> None:
    port = rigctld.port
    station, client = await open_station(port)
    try:
        await station.apply(SetFrequency(value=7_100_000))
        await station.apply(Ptt(state=True))
        assert (await station.status()).ptt is True

        rigctld.kill()
        status = await wait_online(station, False, 2)
        # the last known values, PTT considered released
        assert (status.freq, status.ptt, status.rig_online) == (7_100_000, False, False)
        with pytest.raises(RigOfflineError, match="the rig is offline"):
            await station.apply(SetFrequency(value=7_000_000))
        with pytest.raises(RigOfflineError):  # unkeying is always attempted
            await station.apply(Ptt(state=False))
        assert client.sent[-1][1] == "set_ptt 0"
        await asyncio.sleep(0.5)  # a few reconnect attempts fail meanwhile
        assert (await station.status()).rig_online is False

        await asyncio.to_thread(rigctld.start)
        status = await wait_online(station, True, 3)
        assert status.freq == 145_000_000  # the fresh dummy's
        generation = client.generation
        first = next(text for gen, text in client.sent if gen == generation)
        assert first == "set_ptt 0"  # before anything else
        assert station.outages == 1
        await station.apply(SetFrequency(value=7_000_000))
        assert await rig_freq(port) == 7_000_000
    finally:
        await station.close()


async def test_a_rig_left_keyed_by_a_broken_link_is_unkeyed_when_the_link_returns(
    rigctld: RigctldServer,
) -> None:
    link = CuttableLink(rigctld.port)
    await link.open()
    station, _ = await open_station(link.port)
    try:
        await station.apply(Ptt(state=True))
        assert await rig_ptt(rigctld.port) is True
        await link.cut()
        status = await wait_online(station, False, 2)
        assert status.ptt is False  # considered released …
        assert await rig_ptt(rigctld.port) is True  # … though the rig, unreachable, is keyed
        await link.open()
        await wait_online(station, True, 3)
        assert await rig_ptt(rigctld.port) is False
    finally:
        await station.close()
        await link.cut()


async def test_close_unkeys_and_disconnects(rigctld: RigctldServer) -> None:
    station, client = await open_station(rigctld.port)
    await station.apply(Ptt(state=True))
    await station.close()
    assert await rig_ptt(rigctld.port) is False
    assert not client.connected
    assert await raw_query(rigctld.port, "get_powerstat") == ["Power Status: 1"]


async def test_a_rig_that_is_not_there_yet_is_offline_not_an_error(
    rigctld: RigctldServer,
) -> None:
    rigctld.stop()
    station, _ = await open_station(rigctld.port, freq_ranges=((7_000_000, 7_300_000),))
    try:
        status = await station.status()
        assert status.rig_online is False and status.ptt is False
        capabilities = await station.capabilities()  # the config's alone, until the rig answers
        assert capabilities.freq_ranges == [FrequencyRange(low=7_000_000, high=7_300_000)]
        assert capabilities.modes == []
        await asyncio.to_thread(rigctld.start)
        await wait_online(station, True, 3)
        mode: RigMode = "CW"
        await station.apply(SetMode(value=mode))
        assert await rig_mode(rigctld.port) == "CW"
    finally:
        await station.close()
