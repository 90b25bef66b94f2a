"""Rotating a board's secret, end to end: the real server, a real board agent process reading
its secret from a file, a real aiortc operator listening, and the `radiocore` command.

What an owner sees: the station goes offline the moment the secret is rotated, the old secret
is refused `unauthorized` (the agent itself keeps being refused while its file holds the old
one), and once the new secret is in the agent's file the same agent process comes back online
by itself and the operator hears the station again. The command rotates a board's secret in the
data directory a running server uses: the new secret works, the old one no longer does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import socketio

import radiocore_protocol as protocol
from tests.integration.harness import (
    AgentProcess,
    LiveServer,
    Operator,
    sfu_of,
    start_server,
    stop_server,
    tone_of,
)
from tests.support.waiting import wait_for


def write_secret(path: Path, secret: str, mode: int = 0o600) -> None:
    """As an owner (or their provisioning) puts a secret in place: a new file renamed over the
    old one, so the agent never reads half of it."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(secret + "\n", encoding="utf-8")
    fresh.chmod(mode)
    os.replace(fresh, path)


async def agent_refusal(server: LiveServer, board_id: str, secret: str) -> Any:
    """What `/agent` answers a connection with these credentials: None when it is admitted
    (then closed again at once), else the refusal's `{code, message}`."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace=protocol.AGENT_NAMESPACE)
    try:
        await client.connect(
            server.url,
            namespaces=[protocol.AGENT_NAMESPACE],
            auth={"board_id": board_id, "secret": secret},
            transports=["websocket"],
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        assert errors, "the refusal carried no reason"
        return errors[-1].get("data")
    finally:
        await client.disconnect()
    return None


async def rotate(server: LiveServer, token: str, board_id: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}api/boards/{board_id}/secret",
            headers={"Authorization": f"Bearer {token}"},
        ) as reply,
    ):
        return reply.status, await reply.json()


def log_of(agent: AgentProcess) -> str:
    return agent.log.read_text(errors="replace") if agent.log and agent.log.exists() else ""


async def test_a_rotated_secret_locks_the_old_agent_out_until_its_file_has_the_new_one(
    tmp_path: Path,
) -> None:
    server = await start_server(tmp_path)
    secret_file = tmp_path / "board.secret"
    write_secret(secret_file, server.board_secret)
    # the secret only in the file: nothing in the agent's environment
    agent = AgentProcess(
        dataclasses.replace(server, board_secret=""),
        sink=tmp_path / "tx.raw",
        extra_args=["--secret-file", str(secret_file)],
    )
    token = await server.token(server.owner)
    listener = Operator(server, token)
    try:
        agent.start()
        online = await wait_for(lambda: sfu_of(server).station_online(server.board_id), 30)
        assert online, f"the agent did not come online with its secret file:\n{log_of(agent)}"
        await listener.connect()
        assert (await listener.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: len(listener.frames) >= 50, seconds=20)

        # the owner rotates the secret: the station drops at once, and its listener is told
        status, body = await rotate(server, token, server.board_id)
        assert status == 200, body
        assert set(body) == {"board_id", "secret"} and body["board_id"] == server.board_id
        new_secret = body["secret"]
        assert new_secret != server.board_secret and len(new_secret) >= 32
        offline = ("presence", {"board_id": server.board_id, "online": False})
        assert await wait_for(lambda: offline in listener.events, seconds=15)
        assert not sfu_of(server).station_online(server.board_id)

        # the old secret opens nothing any more; the agent, retrying with it, is told why
        refusal = await agent_refusal(server, server.board_id, server.board_secret)
        assert refusal is not None and refusal["code"] == "unauthorized", refusal
        assert await wait_for(lambda: "unauthorized" in log_of(agent), seconds=15), log_of(agent)
        assert not sfu_of(server).station_online(server.board_id)
        assert agent.process is not None and agent.process.poll() is None, "the agent gave up"

        # a file others may read is not used (the agent says so and keeps trying) …
        write_secret(secret_file, new_secret, mode=0o644)
        assert await wait_for(lambda: "chmod 600" in log_of(agent), seconds=15), log_of(agent)
        assert not sfu_of(server).station_online(server.board_id)
        # … and once it is private, the same agent process comes back by itself
        secret_file.chmod(0o600)
        back = await wait_for(lambda: sfu_of(server).station_online(server.board_id), 30)
        assert back, f"the agent did not pick up the new secret:\n{log_of(agent)[-3000:]}"
        assert agent.process.poll() is None
        online_again = ("presence", {"board_id": server.board_id, "online": True})
        assert await wait_for(lambda: listener.events[-1] == online_again, seconds=15)
        heard = len(listener.frames)
        assert await wait_for(lambda: len(listener.frames) >= heard + 100, seconds=20), (
            "the listener's audio did not come back with the station"
        )
        rms, peak = tone_of(listener.pcm(50))
        assert rms > 500 and abs(peak - agent.tone_hz) < 15, (rms, peak)
        # the new secret is the board's now, the old one still dead
        assert (await agent_refusal(server, server.board_id, server.board_secret))["code"] == (
            "unauthorized"
        )
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    finally:
        await listener.close()
        await asyncio.to_thread(agent.stop)
        await stop_server(server)


def radiocore(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADIOCORE_")}
    return subprocess.run(
        [sys.executable, "-m", "radiocore", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        check=False,
    )


async def test_the_command_rotates_a_secret_in_a_running_servers_data_dir(
    tmp_path: Path,
) -> None:
    server = await start_server(tmp_path)
    data = ["--data-dir", str(tmp_path)]
    try:
        assert await agent_refusal(server, server.board_id, server.board_secret) is None
        result = await asyncio.to_thread(
            radiocore, "board", "rotate-secret", *data, "--board", server.board_id
        )
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        assert printed["board_id"] == server.board_id
        new_secret = printed["secret"]
        assert new_secret not in result.stderr and len(new_secret) >= 32
        assert new_secret not in (tmp_path / "radiocore.sqlite3").read_bytes().decode("latin-1")
        # the server, reading the same database, takes the new secret and refuses the old one
        assert await agent_refusal(server, server.board_id, new_secret) is None
        old = await agent_refusal(server, server.board_id, server.board_secret)
        assert old is not None and old["code"] == "unauthorized", old

        # straight into an agent's secret file: replaced, private, and not printed
        secret_file = tmp_path / "board.secret"
        write_secret(secret_file, new_secret)
        result = await asyncio.to_thread(
            radiocore, "board", "rotate-secret", *data, "--board", server.board_id.upper(),
            "--write-secret-file", str(secret_file),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            "board_id": server.board_id,
            "secret_file": str(secret_file),
        }
        written = secret_file.read_text(encoding="utf-8")
        assert written.endswith("\n") and written.strip() not in (new_secret, "")
        assert written.strip() not in result.stdout + result.stderr
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert not [n for n in os.listdir(tmp_path) if n.startswith(".board.secret.")]  # no temp
        assert await agent_refusal(server, server.board_id, written.strip()) is None
        assert (await agent_refusal(server, server.board_id, new_secret))["code"] == "unauthorized"

        # what cannot be done says why, and changes nothing
        unknown = await asyncio.to_thread(
            radiocore, "board", "rotate-secret", *data, "--board", str(uuid.uuid4())
        )
        assert unknown.returncode == 2 and "no such board" in unknown.stderr
        not_uuid = await asyncio.to_thread(
            radiocore, "board", "rotate-secret", *data, "--board", "not-a-board"
        )
        assert not_uuid.returncode == 2 and "not a UUID" in not_uuid.stderr
        nowhere = await asyncio.to_thread(
            radiocore, "board", "rotate-secret", *data, "--board", server.board_id,
            "--write-secret-file", str(tmp_path / "missing" / "board.secret"),
        )  # fmt: skip
        assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
        assert await agent_refusal(server, server.board_id, written.strip()) is None
    finally:
        await stop_server(server)


async def owner_deletes(
    server: LiveServer, path: str, body: dict[str, Any] | None = None
) -> tuple[int, str]:
    """`DELETE {path}` as the board's owner: the status and the body's text."""
    token = await server.token(server.owner)
    async with (
        aiohttp.ClientSession() as http,
        http.delete(
            f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as reply,
    ):
        return reply.status, await reply.text()


async def test_releasing_a_board_disconnects_its_agent_at_once(
    server: LiveServer, agent: AgentProcess
) -> None:
    """A released board's old secret dies with the release: the agent that used it is cut off
    then, not at its next reconnect (the next owner must not inherit someone else's station)."""
    assert sfu_of(server).station_online(server.board_id)
    status, text = await owner_deletes(server, f"api/boards/{server.board_id}")
    assert status == 200, text
    assert await wait_for(lambda: not sfu_of(server).station_online(server.board_id), seconds=5)
    refusal = await agent_refusal(server, server.board_id, server.board_secret)
    assert refusal is not None and refusal["code"] == "unauthorized", refusal


async def test_deleting_the_owners_account_disconnects_its_boards_agent_at_once(
    server: LiveServer, agent: AgentProcess
) -> None:
    """The account's boards go with it (`DELETE /api/me`): their agents are cut off at once and
    their secrets refused afterwards."""
    assert sfu_of(server).station_online(server.board_id)
    status, text = await owner_deletes(server, "api/me", {"password": server.owner.password})
    assert status == 204, text
    assert await wait_for(lambda: not sfu_of(server).station_online(server.board_id), seconds=5)
    refusal = await agent_refusal(server, server.board_id, server.board_secret)
    assert refusal is not None and refusal["code"] == "unauthorized", refusal
