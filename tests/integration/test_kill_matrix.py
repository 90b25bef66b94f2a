"""The kill matrix: while an operator transmits, the operator, the server or the agent is
killed (SIGKILL), frozen (SIGSTOP, then resumed) or stopped (SIGTERM). Each time the rig — read
from rigctld on its own connection — is released within 1.5 s, does not key again when the
fault heals, and another operator can then key and release it.

It runs the same rounds as `radiocore bench faults` (bench/faults.py), against one station of
real processes shared by the whole module: rigctld's dummy rig, `radiocore serve`, the agent
with `--rig rigctld` (its PTT guard included) and an operator process per round.
The operator's network cut silently is in test_network_cut.py.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.faults import FAULTS, WATCH_AFTER_HEAL_S, Station, fault_round, keyed_operator
from tests.integration.harness import tx_log
from tests.support.rigctld import require_rigctld

RELEASE_BOUND_S = 1.5


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    require_rigctld()
    rigctld = shutil.which("rigctld")
    assert rigctld is not None
    running = Station(tmp_path_factory.mktemp("kill-matrix"), rigctld)
    try:
        yield running
    finally:
        running.close()


def agent_log(station: Station) -> str:
    log = Path(station.data_dir) / "agent.log"
    return log.read_text()[-3000:] if log.exists() else "(no agent log)"


@pytest.mark.parametrize("fault", FAULTS)
def test_the_rig_is_released_and_the_station_usable_after(station: Station, fault: str) -> None:
    release_s, rekeyed = fault_round(station, fault)
    assert release_s <= RELEASE_BOUND_S, (
        f"{fault}: the rig was released {release_s:.2f} s after the fault\n{agent_log(station)}"
    )
    assert not rekeyed, f"{fault}: the rig keyed again when the fault healed"
    # another operator (a new connection) can key and release the station afterwards
    second = keyed_operator(station)
    try:
        released = second.release(station)
        assert released is not None and released < 2.0, f"{fault}: the second operator's release"
    finally:
        second.close()


async def keyed_once_the_rig_is_back(station: Station) -> Any:
    """A keyed operator, retried while the agent has not reconnected to rigctld yet (its
    back-off is at most `rig_reconnect_max_s`, 5 s)."""
    for attempt in range(4):
        try:
            return await asyncio.to_thread(keyed_operator, station)
        except RuntimeError:
            if attempt == 3:
                raise
            await asyncio.sleep(2.0)
    raise AssertionError("unreachable")


async def test_rigctld_killed_while_keyed_ends_the_transmission_and_comes_back_unkeyed(
    station: Station,
) -> None:
    """rigctld dies while the rig is keyed (the dummy rig's state dies with it; a real rig's
    serial PTT line drops when its port closes): the station ends the transmission at once,
    and when rigctld is back the rig is not keyed again and can be used."""
    holder = await asyncio.to_thread(keyed_operator, station)
    try:
        killed_at = datetime.now(UTC)
        station.rig_process.send_signal(signal.SIGKILL)
        station.rig_process.wait(5)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(station.restart_rigctld)
        assert not station.rig.ptt(), "rigctld came back keyed"
        ended: list[dict[str, Any]] = []

        async def transmission_ended() -> bool:
            ended[:] = [
                s
                for s in (await tx_log(station.url, station.token, station.board_id))[:1]
                if s["ended_at"] is not None
            ]
            return bool(ended)

        for _ in range(40):  # bounded: 10 s
            if await transmission_ended():
                break
            await asyncio.sleep(0.25)
        assert ended and ended[0]["reason"] == "rig_error", ended
        release_s = (datetime.fromisoformat(ended[0]["ended_at"]) - killed_at).total_seconds()
        assert release_s <= RELEASE_BOUND_S, f"the server released {release_s:.2f} s after"
        rekeyed = await asyncio.to_thread(
            station.rig.wait_until, lambda r: r.ptt(), WATCH_AFTER_HEAL_S
        )
        assert rekeyed is None, "the rig keyed again when rigctld came back"
    finally:
        await asyncio.to_thread(holder.close)
    second = await keyed_once_the_rig_is_back(station)
    try:
        released = await asyncio.to_thread(second.release, station)
        assert released is not None and released < 2.0, "the second operator's release"
    finally:
        await asyncio.to_thread(second.close)
