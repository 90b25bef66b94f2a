"""SimulatedStation: applies every valid operator message within its capabilities (HF, 6 m,
2 m; every protocol mode), refuses the rest, reports a protocol `status`."""

from __future__ import annotations

import random

import pytest

from board_agent.errors import InvalidCommandError
from board_agent.station import SimulatedStation, StationDriver
from radiocore_protocol import (
    RIG_MODES,
    Capabilities,
    FrequencyRange,
    Keepalive,
    Ptt,
    SetFrequency,
    SetMode,
    SetPower,
    Status,
    decode_operator_message,
    decode_station_message,
    encode,
)


async def test_initial_status_matches_the_seed() -> None:
    station = SimulatedStation(rng=random.Random(0))
    assert isinstance(station, StationDriver)
    status = await station.status()
    assert (status.freq, status.mode, status.power, status.ptt, status.squelch) == (
        14_205_000,
        "USB",
        50,
        False,
        True,
    )
    assert status.smeter is not None and abs(status.smeter - -73) <= 1


async def test_applies_every_valid_message() -> None:
    station = SimulatedStation(rng=random.Random(0))
    for mode in RIG_MODES:
        await station.apply(decode_operator_message(f'{{"type":"mode","value":"{mode}"}}'))
        assert (await station.status()).mode == mode
    for freq in (100_000, 7_074_000, 30_000_000, 50_100_000, 145_500_000):
        await station.apply(SetFrequency(value=freq))
        assert (await station.status()).freq == freq
    for power in (0, 1, 100):
        await station.apply(SetPower(value=power))
        assert (await station.status()).power == power
    await station.apply(Ptt(state=True))
    assert (await station.status()).ptt is True
    await station.apply(Ptt(state=True))  # idempotent
    await station.apply(Ptt(state=False))
    assert (await station.status()).ptt is False
    await station.apply(SetMode(value="CW"))
    assert (await station.status()).mode == "CW"


async def test_smeter_wanders_around_s9_within_bounds() -> None:
    station = SimulatedStation(rng=random.Random(3))
    readings = [(await station.status()).smeter for _ in range(2000)]
    assert all(r is not None and -79 <= r <= -67 for r in readings)
    assert len(set(readings)) > 3  # it does wander


async def test_status_is_a_valid_protocol_message() -> None:
    status = await SimulatedStation(rng=random.Random(0)).status()
    decoded = decode_station_message(encode(status))
    assert isinstance(decoded, Status)
    assert decoded == status


async def test_capabilities_and_refusals() -> None:
    station = SimulatedStation(rng=random.Random(0))
    capabilities = await station.capabilities()
    assert capabilities.modes == list(RIG_MODES)
    assert FrequencyRange(low=144_000_000, high=148_000_000) in capabilities.freq_ranges
    assert isinstance(capabilities, Capabilities)
    for message in (
        SetFrequency(value=1),
        SetFrequency(value=40_000_000),
        SetFrequency(value=300_000_000_000),
        SetMode(value="SSB"),  # type: ignore[arg-type]  # built in code, never decoded
        SetPower(value=101),
    ):
        with pytest.raises(InvalidCommandError):
            await station.apply(message)
    await station.apply(Keepalive())  # nothing to do
    status = await station.status()
    assert (status.freq, status.mode, status.power, status.ptt) == (14_205_000, "USB", 50, False)
