"""Fixtures for SFU tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from media.config import SfuConfig
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.lanes import KINDS, MungerType, munger_of


@pytest.fixture
async def sfu() -> AsyncIterator[Sfu]:
    server = Sfu(SfuConfig(ice_host_addresses=("127.0.0.1",), latency_sample_every=1))
    yield server
    await server.close()
    aiortc_hooks.set_host_addresses(())


@pytest.fixture(params=KINDS)
def munger_type(request: pytest.FixtureRequest) -> MungerType:
    """RtpMunger, and the compiled lane's munger: the same rules, the same tests."""
    return munger_of(request.param)
