"""The application as a browser and a careless client see it: start-up and shutdown of its
resources, the headers of every response, and request bodies however they arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from radiocore import aiortc_hooks
from signaling import keys
from signaling.accounts import create_account
from signaling.app import create_app
from signaling.config import ServerConfig, load_server_config
from signaling.store import SqliteStore

EMAIL = "op@example.org"
PASSWORD = "op-password-1"


def make_config(data_dir: Path) -> ServerConfig:
    return load_server_config(
        None,
        {"RADIOCORE_SECRET": "app-test-" + "s3cr3t" * 8},
        {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir)},
    )


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[web.Application, int]]:
    async with SqliteStore(tmp_path / "radiocore.sqlite3") as store:
        await create_account(store, EMAIL, PASSWORD, "DL1APP")
    app = create_app(make_config(tmp_path))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield app, int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def raw_http(
    port: int, *parts: bytes, pause_s: float = 0.2
) -> tuple[int, dict[str, str], bytes]:
    """Send `parts` on one TCP connection with a pause between them; the parsed reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, part in enumerate(parts):
            if index:
                await asyncio.sleep(pause_s)
            writer.write(part)
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return status, headers, body
    finally:
        writer.close()


async def test_a_login_body_split_across_tcp_segments_is_read_whole(
    live: tuple[web.Application, int],
) -> None:
    _, port = live
    body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    head = (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    status, _, reply = await raw_http(port, head + body[:10], body[10:25], body[25:])
    assert status == 200, reply
    assert json.loads(reply)["callsign"] == "DL1APP"


async def test_a_body_over_the_limit_is_refused_without_reading_it_all(
    live: tuple[web.Application, int],
) -> None:
    _, port = live
    body = b'{"email": "' + b"x" * 40_000 + b'", "password": "p"}'
    head = (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    chunked = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (body[i : i + 4096] for i in range(0, len(body), 4096))
    )
    status, _, reply = await raw_http(port, head + chunked[:5000], chunked[5000:] + b"0\r\n\r\n")
    assert status == 400
    assert json.loads(reply)["error"]["message"] == "request body too large"


@pytest.mark.parametrize("opening", [b"[", b'{"a":'], ids=["arrays", "objects"])
async def test_a_body_nested_too_deeply_is_a_bad_request_not_a_server_error(
    live: tuple[web.Application, int], opening: bytes
) -> None:
    """msgspec raises RecursionError past a few thousand levels, well inside the body limit:
    it was answered 500 (found by `radiocore bench fuzz`)."""
    _, port = live
    body = b'{"email": ' + opening * 3000
    head = (
        f"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    status, _, reply = await raw_http(port, head + body)
    assert status == 400, reply
    assert json.loads(reply)["error"] == {
        "code": "bad_request",
        "message": "the request body is JSON nested too deeply",
    }


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize("path", ["/", "/static/console.css", "/health", "/api/boards/x/tx-log"])
async def test_every_response_carries_the_security_headers(
    live: tuple[web.Application, int], path: str
) -> None:
    _, port = live
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    _, headers, _ = await raw_http(port, request)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (path, name, headers)
    policy = headers["content-security-policy"]
    # a page that keys a transmitter must not be framable, nor run scripts from elsewhere
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "default-src 'self'" in policy
    assert "microphone=(self)" in headers["permissions-policy"]
    # no product versions for scanners to match
    assert headers.get("server") == "RadioCore", headers.get("server")


async def test_a_failed_start_closes_what_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def changed_internals() -> None:
        raise aiortc_hooks.HookError("aiortc/aioice internals changed; missing: (test)")

    # the SFU, opened after the store and the audit writer, refuses to start (as it does when
    # an aiortc upgrade moved what the forwarder hooks into)
    monkeypatch.setattr(aiortc_hooks, "check_hooks", changed_internals)
    app = create_app(make_config(tmp_path))
    runner = web.AppRunner(app, handle_signals=False)
    with pytest.raises(aiortc_hooks.HookError):
        await runner.setup()
    await runner.cleanup()  # what the server's own runner does when start-up fails
    store = app[keys.STORE]
    assert isinstance(store, SqliteStore)
    assert store._db is None, "the store opened before the failure was left open"
    assert app[keys.AUDIT]._task is None, "the audit writer started before it still runs"


async def test_expired_refresh_tokens_are_deleted_at_start(tmp_path: Path) -> None:
    """Housekeeping: a server that starts deletes refresh tokens past their expiry (and keeps
    the live ones), so the table does not grow for as long as consoles stay open."""
    import hashlib
    from datetime import UTC, datetime, timedelta

    old, live = (hashlib.sha256(name.encode()).hexdigest() for name in ("old", "live"))
    now = datetime.now(UTC)
    async with SqliteStore(tmp_path / "radiocore.sqlite3") as store:
        user = await create_account(store, EMAIL, PASSWORD, "DL1APP")
        await store.create_refresh_token(
            user.id, old, now - timedelta(days=1), when=now - timedelta(days=31)
        )
        await store.create_refresh_token(user.id, live, now + timedelta(days=1))
    app = create_app(make_config(tmp_path))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        store = app[keys.STORE]
        for _ in range(100):  # bounded: the first pass runs as the app starts
            if await store.get_refresh_token(old) is None:
                break
            await asyncio.sleep(0.05)
        assert await store.get_refresh_token(old) is None, "the expired token was kept"
        assert await store.get_refresh_token(live) is not None
    finally:
        await runner.cleanup()
