"""A station is online when its media is up and it can take commands: the agent's peer
connection is in the room and its control channel is open. The SFU reports each change."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.config import SfuConfig
from media.errors import StationOfflineError
from media.participant import ParticipantIdentity, Role
from media.sfu import Sfu
from radiocore import aiortc_hooks
from tests.media.peers import apply_answer, offer_sdp, peer
from tests.support.waiting import wait_for

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
OPERATOR = ParticipantIdentity(key="op", role=Role.OPERATOR, callsign="OP", user_id="op")


@dataclass
class Presence:
    events: list[tuple[str, str]] = field(default_factory=list)

    def station_up(self, board_id: str) -> None:
        self.events.append(("up", board_id))

    def station_down(self, board_id: str) -> None:
        self.events.append(("down", board_id))


def server(presence: Presence) -> Sfu:
    return Sfu(SfuConfig(ice_host_addresses=("127.0.0.1",)), station_observer=presence)


async def refused(sfu: Sfu) -> bool:
    listener = peer()
    listener.addTransceiver("audio", direction="recvonly")
    try:
        await sfu.connect_operator(BOARD, OPERATOR, await offer_sdp(listener))
    except StationOfflineError:
        return True
    finally:
        await listener.close()
    return False


async def test_online_only_once_the_control_channel_is_open_and_until_the_agent_leaves() -> None:
    presence = Presence()
    sfu = server(presence)
    agent = peer()
    try:
        agent.addTransceiver("audio", direction="sendrecv")
        channel = agent.createDataChannel("control")
        answer = await sfu.connect_agent(BOARD, "Station", await offer_sdp(agent))
        # admitted, but its control channel is not open yet: no command could reach it
        assert not sfu.station_online(BOARD)
        assert await refused(sfu)
        await apply_answer(agent, answer)
        assert await wait_for(lambda: sfu.station_online(BOARD))
        assert channel.readyState == "open"
        assert presence.events == [("up", BOARD)]
        await sfu.disconnect(BOARD, "agent")
        assert not sfu.station_online(BOARD)
        assert presence.events == [("up", BOARD), ("down", BOARD)]
    finally:
        await agent.close()
        await sfu.close()
        aiortc_hooks.set_host_addresses(())


async def test_a_station_without_a_control_channel_is_never_online() -> None:
    presence = Presence()
    sfu = server(presence)
    agent = peer()
    try:
        agent.addTransceiver("audio", direction="sendrecv")
        await apply_answer(agent, await sfu.connect_agent(BOARD, "Station", await offer_sdp(agent)))
        assert await wait_for(lambda: agent.connectionState == "connected")
        assert not sfu.station_online(BOARD)
        assert await refused(sfu)
        await sfu.disconnect(BOARD, "agent")
        assert presence.events == []  # it never was up, so it never went down
    finally:
        await agent.close()
        await sfu.close()
        aiortc_hooks.set_host_addresses(())


async def test_a_station_whose_link_drops_goes_down() -> None:
    presence = Presence()
    sfu = server(presence)
    agent = peer()
    try:
        agent.addTransceiver("audio", direction="sendrecv")
        agent.createDataChannel("control")
        await apply_answer(agent, await sfu.connect_agent(BOARD, "Station", await offer_sdp(agent)))
        assert await wait_for(lambda: sfu.station_online(BOARD))
        await agent.close()
        assert await wait_for(lambda: presence.events == [("up", BOARD), ("down", BOARD)], 5)
        assert not sfu.station_online(BOARD)
    finally:
        await sfu.close()
        aiortc_hooks.set_host_addresses(())


async def test_a_reconnecting_station_goes_down_then_up_again() -> None:
    presence = Presence()
    sfu = server(presence)
    agents = [peer(), peer()]
    try:
        for agent in agents:
            agent.addTransceiver("audio", direction="sendrecv")
            agent.createDataChannel("control")
            offer = await offer_sdp(agent)
            await apply_answer(agent, await sfu.connect_agent(BOARD, "Station", offer))
            assert await wait_for(lambda: sfu.station_online(BOARD))
        assert presence.events == [("up", BOARD), ("down", BOARD), ("up", BOARD)]
    finally:
        for agent in agents:
            await agent.close()
        await sfu.close()
        aiortc_hooks.set_host_addresses(())
