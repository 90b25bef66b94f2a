"""Bad input gets a clear error and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio

import radiocore_protocol as protocol
from signaling import keys
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    sfu_of,
    start_server,
    stop_server,
)
from tests.support.waiting import wait_for


async def refused_connection(server: LiveServer, namespace: str, auth: object) -> Any:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            server.url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=5
        )
    await client.disconnect()
    assert errors, "the refusal carried no reason"
    assert isinstance(errors[0], dict) and errors[0].get("message"), errors
    return errors[0].get("data")


async def test_forged_and_foreign_tokens_are_refused(server: LiveServer) -> None:
    good = await server.token(server.owner)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-server-secret-" + "x" * 20, algorithm="HS256")
    header, payload, _ = good.split(".")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned, f"{header}.{payload}.", "garbage"):
        reason = await refused_connection(server, "/operator", {"token": token})
        assert reason.get("code") == "unauthorized", (token, reason)
    reason = await refused_connection(server, "/operator", None)
    assert reason["code"] == "unauthorized"


async def test_a_well_signed_token_of_a_deleted_account_is_refused(server: LiveServer) -> None:
    token = await server.token(server.other)
    await server.app[keys.STORE].delete_user(server.other.user_id)
    reason = await refused_connection(server, "/operator", {"token": token})
    assert reason == {"code": "unauthorized", "message": "the account no longer exists"}
    async with aiohttp.ClientSession() as http:
        reply = await http.get(
            f"{server.url}api/boards/{server.board_id}/tx-log",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reply.status == 401
        assert (await reply.json())["error"]["message"] == "the account no longer exists"


async def test_agent_with_a_wrong_secret_is_refused(server: LiveServer) -> None:
    auth = {"board_id": server.board_id, "secret": "wrong-secret-but-long-enough"}
    reason = await refused_connection(server, "/agent", auth)
    assert reason == {"code": "unauthorized", "message": "unknown board or wrong secret"}
    assert not sfu_of(server).station_online(server.board_id)


async def test_bad_requests_get_clear_errors_and_listeners_keep_hearing(
    server: LiveServer, agent: AgentProcess
) -> None:
    token = await server.token(server.owner)
    listener = Operator(server, token, tap=True)
    rogue = Operator(server, token)
    try:
        await listener.connect()
        assert (await listener.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: len(listener.packets) >= 25)
        await rogue.connect()

        async def code_of(event: str, data: Any) -> str:
            reply = await rogue.call(event, data)
            assert reply["ok"] is False, reply
            assert reply["error"]["message"], reply
            return str(reply["error"]["code"])

        board = server.board_id
        assert await code_of("offer", {"board_id": board, "type": "offer", "sdp": "v=0"}) == (
            "not_joined"
        )
        # someone else's private board answers as an unknown one does
        assert await code_of("join", {"board_id": server.other_board_id}) == "not_found"
        unknown = "00000000-0000-4000-8000-000000000000"
        assert await code_of("join", {"board_id": unknown}) == "not_found"
        assert await code_of("join", {"board_id": "not-a-uuid"}) == "bad_request"
        assert await code_of("join", {"board": board}) == "bad_request"
        assert await code_of("join", ["not", "an", "object"]) == "bad_request"
        assert await code_of("transmit_forever", {}) == "unknown_event"
        assert await wait_for(lambda: any(e[0] == "error" for e in rogue.events))
        assert (await rogue.call("join", {"board_id": board}))["ok"]
        malformed = "v=0\r\nthis is not a session description\r\n"
        assert await code_of("offer", {"board_id": board, "type": "offer", "sdp": malformed}) == (
            "bad_sdp"
        )
        huge = "v=0\r\n" + "a=x\r\n" * 20_000
        assert await code_of("offer", {"board_id": board, "type": "offer", "sdp": huge}) == (
            "too_large"
        )
        no_audio = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        assert await code_of("offer", {"board_id": board, "type": "offer", "sdp": no_audio}) in (
            "bad_sdp",
        )

        # a proper peer connection, then bad data-channel messages
        assert (await rogue.join_and_listen(board))["ok"]
        assert await wait_for(lambda: rogue.channel.readyState == "open")
        rogue.send('{"type":"mode","value":"WARP"}')
        rogue.send('{"type":"self_destruct"}')
        rogue.send("{not json")
        rogue.send('{"type":"freq","value":' + "9" * 5000 + "}")
        assert await wait_for(lambda: len(rogue.messages("error")) >= 4)
        codes = [protocol.decode_server_message(m) for m in rogue.messages("error")]
        assert [c.code.value for c in codes if isinstance(c, protocol.Error)][:4] == [
            "bad_request",
            "unknown_message",
            "bad_request",
            "too_large",
        ]

        before = len(listener.packets)
        await asyncio.sleep(1.0)
        assert len(listener.packets) - before >= 40, "the other listener stopped hearing"
    finally:
        await listener.close()
        await rogue.close()


async def test_an_event_flood_is_rate_limited_and_the_server_keeps_answering(
    tmp_path: Path,
) -> None:
    # a low configured rate, so that the flood exceeds it however fast this machine is
    rate = 50
    server = await start_server(tmp_path, config={"limits.max_events_per_second": rate})
    flooder = Operator(server, await server.token(server.owner))
    try:
        await flooder.connect()
        started = time.monotonic()
        replies = await asyncio.gather(*(flooder.call("list_boards", {}) for _ in range(400)))
        took = time.monotonic() - started
        limited = [r for r in replies if not r["ok"]]
        served = sum(r["ok"] for r in replies)
        assert limited, f"400 events in {took:.2f} s were all served at a limit of {rate}/s"
        assert {r["error"]["code"] for r in limited} == {"rate_limited"}
        # the burst, plus what the bucket refilled meanwhile (and one token of slack)
        assert rate <= served <= rate + rate * took + 1
        await asyncio.sleep(1.1)  # the bucket refills
        assert (await flooder.call("list_boards", {}))["ok"]
    finally:
        await flooder.close()
        await stop_server(server)


async def test_a_page_from_another_origin_cannot_open_socketio(server: LiveServer) -> None:
    """A browser on a foreign site must not be able to drive a station through its operator's
    logged-in browser: the handshake is refused before any event is read."""
    url = f"{server.url}socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={"Origin": "http://evil.example"})
        assert refused.value.status == 400
        own_origin = server.url.rstrip("/")
        async with http.ws_connect(url, headers={"Origin": own_origin}) as ws:
            opening = await ws.receive_str(timeout=5)
            assert opening.startswith("0{")  # Engine.IO "open" packet: the handshake worked


async def test_a_page_from_another_origin_cannot_use_the_rest_api(server: LiveServer) -> None:
    """The API takes bearer tokens, never cookies, and allows no other origin (no CORS
    headers): a browser refuses a foreign page's preflight for an `Authorization` header, and
    would not let it read an answer. Checked on what the server sends such a page."""
    token = await server.token(server.owner)
    evil = {"Origin": "http://evil.example"}
    async with aiohttp.ClientSession() as http:
        preflight = await http.options(
            f"{server.url}api/boards",
            headers={
                **evil,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert not any(h.lower().startswith("access-control-") for h in preflight.headers)
        answer = await http.get(
            f"{server.url}api/boards", headers={**evil, "Authorization": f"Bearer {token}"}
        )
        assert answer.status == 200  # a program with the token may; a foreign page cannot read
        assert not any(h.lower().startswith("access-control-") for h in answer.headers)
        assert "Set-Cookie" not in answer.headers
        signed_in = await http.post(
            f"{server.url}api/auth/login",
            json={"email": server.owner.email, "password": server.owner.password},
        )
        assert "Set-Cookie" not in signed_in.headers, "a cookie would ride foreign requests"


async def test_the_configured_limits_are_the_ones_enforced(tmp_path: Path) -> None:
    server = await start_server(
        tmp_path, config={"limits.max_sdp_chars": 3000, "limits.max_json_body_bytes": 100}
    )
    operator = Operator(server, await server.token(server.owner))
    try:
        await operator.connect()
        assert (await operator.call("join", {"board_id": server.board_id}))["ok"]
        sdp = "v=0\r\n" + "a=padding\r\n" * 300  # 3305 characters, under the protocol's limit
        reply = await operator.call(
            "offer", {"board_id": server.board_id, "type": "offer", "sdp": sdp}
        )
        assert reply["error"] == {
            "code": "too_large",
            "message": "the SDP has 3305 characters; this server takes at most 3000",
        }
        async with aiohttp.ClientSession() as http:
            body = {"email": server.owner.email, "password": "x" * 80}
            refused = await http.post(server.url + "api/auth/login", json=body)
            assert refused.status == 400
            assert (await refused.json())["error"]["message"] == "request body too large"
    finally:
        await operator.close()
        await stop_server(server)


async def test_one_account_cannot_hold_unbounded_connections_or_joins(tmp_path: Path) -> None:
    """Connections per account and boards per connection are bounded (each join holds a peer
    connection): one more is refused `rate_limited` saying what to do, and closing one makes
    room again. Another account is not affected."""
    server = await start_server(
        tmp_path,
        config={"limits.max_connections_per_user": 2, "limits.max_boards_per_connection": 1},
    )
    token = await server.token(server.owner)
    opened: list[socketio.AsyncClient] = []

    async def connect(with_token: str) -> Any:
        """None when admitted (kept open), else the refusal's `{code, message}`."""
        client = socketio.AsyncClient(reconnection=False)
        errors: list[Any] = []
        client.on("connect_error", errors.append, namespace="/operator")
        try:
            await client.connect(
                server.url,
                namespaces=["/operator"],
                auth={"token": with_token},
                transports=["websocket"],
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError:
            return errors[-1].get("data") if errors else {"code": "none", "message": ""}
        opened.append(client)
        return None

    try:
        assert await connect(token) is None
        assert await connect(token) is None
        refusal = await connect(token)
        assert refusal is not None and refusal["code"] == "rate_limited", refusal
        assert "close another tab" in refusal["message"]
        # someone else is not counted against this account
        assert await connect(await server.token(server.other)) is None

        first = opened[0]
        joined = await first.call(
            "join", {"board_id": server.board_id}, namespace="/operator", timeout=10
        )
        assert joined["ok"], joined
        second = await first.call(
            "join", {"board_id": server.other_board_id}, namespace="/operator", timeout=10
        )
        assert not second["ok"] and second["error"]["code"] == "rate_limited", second
        left = await first.call(
            "leave", {"board_id": server.board_id}, namespace="/operator", timeout=10
        )
        assert left["ok"], left
        again = await first.call(
            "join", {"board_id": server.board_id}, namespace="/operator", timeout=10
        )
        assert again["ok"], again

        await opened.pop(1).disconnect()  # one of the owner's two: room for one more
        admitted = None
        for _ in range(20):  # bounded: the server sees the disconnect within moments
            admitted = await connect(token)
            if admitted is None:
                break
            await asyncio.sleep(0.1)
        assert admitted is None, admitted
    finally:
        for client in opened:
            await client.disconnect()
        await stop_server(server)
