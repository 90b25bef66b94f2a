"""Trickled ICE candidates: what aiortc cannot parse, or what names no m-line of the
connection's offer, is refused with `bad_request`; good ones are applied."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from media.errors import MediaError
from media.participant import AGENT_KEY
from media.sfu import Sfu
from radiocore_protocol import ErrorCode
from tests.media.peers import apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
GOOD = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"


@pytest.fixture
async def agent(sfu: Sfu) -> AsyncIterator[RTCPeerConnection]:
    """A station whose offer has two m-lines: audio (index 0, mid "0") and data (1, "1")."""
    pc = peer()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("control")
    await apply_answer(pc, await sfu.connect_agent(BOARD, "Station", await offer_sdp(pc)))
    assert await wait_for(lambda: sfu.station_online(BOARD))
    yield pc
    await pc.close()


async def refusal(sfu: Sfu, candidate: str, mid: str | None, index: int | None) -> ErrorCode:
    with pytest.raises(MediaError) as raised:
        await sfu.add_candidate(BOARD, AGENT_KEY, candidate, mid, index)
    return raised.value.code


@pytest.mark.parametrize(
    "candidate",
    [
        "candidate:garbage",
        "candidate:1 1 udp notanumber 127.0.0.1 9 typ host",
        "candidate:1 1 udp 2130706431 127.0.0.1 port typ host",
        "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host rport x",
    ],
)
async def test_an_unparsable_candidate_is_a_bad_request(
    sfu: Sfu, agent: RTCPeerConnection, candidate: str
) -> None:
    assert await refusal(sfu, candidate, None, 0) is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(("mid", "index"), [(None, -1), (None, 2), (None, 15), ("7", None)])
async def test_a_candidate_for_no_m_line_of_the_offer_is_refused(
    sfu: Sfu, agent: RTCPeerConnection, mid: str | None, index: int | None
) -> None:
    assert await refusal(sfu, GOOD, mid, index) is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    ("mid", "index"), [(None, 0), (None, 1), ("0", None), ("1", 1), (None, None)]
)
async def test_a_candidate_for_an_m_line_of_the_offer_is_applied(
    sfu: Sfu, agent: RTCPeerConnection, mid: str | None, index: int | None
) -> None:
    assert await sfu.add_candidate(BOARD, AGENT_KEY, GOOD, mid, index)
    assert await sfu.add_candidate(BOARD, AGENT_KEY, "candidate:", mid, index)  # end of candidates
    assert sfu.station_online(BOARD)
