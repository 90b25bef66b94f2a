"""The live audio path end to end: a real board agent process, the real server, real aiortc
operator peers on loopback. Assertions are on what a person would notice: audio energy at the
right pitch, status arriving, a transmitter fed only by the floor holder, a station that comes
back after its agent restarts, errors that name what was wrong.
"""

from __future__ import annotations

import asyncio

import socketio

import radiocore_protocol as protocol
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    band_energy,
    sfu_of,
    tone_of,
)
from tests.support.waiting import wait_for

PTT_ON = protocol.encode(protocol.Ptt(state=True)).decode()


async def test_every_listener_hears_the_station_and_gets_status(
    server: LiveServer, agent: AgentProcess
) -> None:
    token = await server.token(server.owner)
    operators = [Operator(server, token) for _ in range(3)]
    try:
        for operator in operators:
            await operator.connect()
            reply = await operator.join_and_listen(server.board_id)
            assert reply["ok"], reply
        assert await wait_for(lambda: all(len(o.frames) >= 150 for o in operators), seconds=20)
        for operator in operators:
            rms, peak = tone_of(operator.pcm(100))
            assert rms > 500, f"no audio energy at a listener (rms {rms:.0f})"
            assert abs(peak - agent.tone_hz) < 15, f"heard {peak:.0f} Hz, station sends 1000 Hz"
        assert await wait_for(lambda: all(len(o.messages("status")) >= 2 for o in operators))
        status = protocol.decode_station_message(operators[0].messages("status")[-1])
        assert isinstance(status, protocol.Status) and status.freq > 0
    finally:
        for operator in operators:
            await operator.close()


async def test_tx_audio_reaches_the_station_only_from_the_floor_holder(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest = await server.token(server.other)  # a guest with the transmit right
    holder = Operator(server, guest, mic_hz=600.0)
    other = Operator(server, guest, mic_hz=850.0)  # the same guest in a second tab
    try:
        for operator in (holder, other):
            await operator.connect()
            assert (await operator.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: holder.channel.readyState == "open")
        assert await wait_for(lambda: other.channel.readyState == "open")
        await asyncio.sleep(1.0)
        assert len(agent.tx_pcm()) < 48000 // 10, "TX audio reached the rig with PTT off"

        holder.key()
        assert await wait_for(
            lambda: any('"holder":"DL2OTH"' in m for m in other.messages("floor"))
        )
        other.send(PTT_ON)
        assert await wait_for(lambda: any("floor_busy" in m for m in other.messages("error")))
        assert await wait_for(lambda: len(agent.tx_pcm()) >= 2 * 48000, seconds=15)
        pcm = agent.tx_pcm()[-48000:]
        rms, peak = tone_of(pcm)
        assert rms > 500 and abs(peak - 600.0) < 15, f"station got {peak:.0f} Hz at rms {rms:.0f}"
        assert band_energy(pcm, 850.0) < 0.01, "the non-holder's voice reached the transmitter"

        holder.unkey()
        assert await wait_for(lambda: any('"holder":null' in m for m in other.messages("floor")))
        await asyncio.sleep(0.5)
        written = len(agent.tx_pcm())
        await asyncio.sleep(1.0)
        assert len(agent.tx_pcm()) - written < 48000 // 10, "TX audio went on after release"
    finally:
        await holder.close()
        await other.close()


async def test_station_comes_back_after_its_agent_is_killed(
    server: LiveServer, agent: AgentProcess
) -> None:
    token = await server.token(server.owner)
    listener = Operator(server, token)
    try:
        await listener.connect()
        assert (await listener.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: len(listener.frames) >= 50)

        agent.kill()
        offline = ("presence", {"board_id": server.board_id, "online": False})
        online = ("presence", {"board_id": server.board_id, "online": True})
        assert await wait_for(lambda: offline in listener.events)
        assert await wait_for(lambda: not sfu_of(server).station_online(server.board_id))
        agent.start()  # as systemd would; the listener does nothing
        assert await wait_for(lambda: listener.events[-1] == online, seconds=30)
        assert await wait_for(lambda: sfu_of(server).station_online(server.board_id), seconds=30)
        heard = len(listener.frames)
        assert await wait_for(lambda: len(listener.frames) >= heard + 100, seconds=20), (
            "the listener's audio did not come back with the station"
        )
        rms, peak = tone_of(listener.pcm(50))
        assert rms > 500 and abs(peak - agent.tone_hz) < 15
    finally:
        await listener.close()


async def test_online_means_the_station_can_take_an_offer(server: LiveServer) -> None:
    """An agent whose Socket.IO link is up but whose media is not is not online; the moment an
    operator is told `online`, an offer is accepted."""
    operator = Operator(server, await server.token(server.owner))
    half_agent = socketio.AsyncClient(reconnection=False)
    auth = {"board_id": server.board_id, "secret": server.board_secret}
    process = AgentProcess(server, sink=server.data_dir / "tx.raw")
    try:
        await operator.connect()
        await half_agent.connect(
            server.url, namespaces=["/agent"], auth=auth, transports=["websocket"]
        )
        boards = (await operator.call("list_boards", {}))["boards"]
        assert {b["id"]: b["online"] for b in boards}[server.board_id] is False
        joined = await operator.call("join", {"board_id": server.board_id})
        assert joined["board"]["online"] is False
        await asyncio.sleep(0.5)
        assert not [e for e in operator.events if e[0] == "presence"], operator.events
        await half_agent.disconnect()

        online = ("presence", {"board_id": server.board_id, "online": True})
        process.start()
        assert await wait_for(lambda: online in operator.events, seconds=30)
        reply = await operator.join_and_listen(server.board_id)  # at once
        assert reply["ok"], reply
        assert await wait_for(lambda: len(operator.frames) >= 25)
    finally:
        await operator.close()
        if half_agent.connected:
            await half_agent.disconnect()
        await asyncio.to_thread(process.stop)
