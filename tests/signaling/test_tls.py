"""HTTPS served by `radiocore serve` itself (`tls_cert_file`, `tls_key_file`): the settings are
checked at start-up, the server answers over TLS 1.2+ only, says https:// where it says where it
listens, reloads its certificate when the files change and on SIGHUP (keeping the old one when
the new pair is invalid), never logs the key, and lets the console's own https:// page in past
the Socket.IO origin check while a foreign page stays out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import socketio

from signaling.config import ServerConfig, load_server_config
from signaling.errors import ConfigError
from signaling.server import serve
from signaling.tls import RELOAD_POLL_S, load_context
from tests.integration.harness import seed
from tests.support.tls_certs import ServerCertificate, TestCa
from tests.support.waiting import wait_for

SECRET = "Qx7-vR2pLk9_mZ4tWb8nYc3sHd6fJg1aEe5uTo0iPy"
# A change is loaded once the files stayed the same for one more poll: two polls, plus margin.
RELOAD_WAIT_S = 4 * RELOAD_POLL_S + 5


def _config(tmp_path: Path, **overrides: object) -> ServerConfig:
    return load_server_config(
        None,
        {"RADIOCORE_SECRET": SECRET},
        {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path / "data"), **overrides},
    )


def _install(source: ServerCertificate, cert_file: Path, key_file: Path) -> None:
    """Put a pair in place the way a renewal does: new files renamed over the old ones."""
    for origin, target in ((source.key_file, key_file), (source.cert_file, cert_file)):
        scratch = target.with_suffix(".new")
        shutil.copyfile(origin, scratch)
        os.replace(scratch, target)


# ---------------------------------------------------------------- configuration, at start-up


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path)


def test_both_files_or_neither(tmp_path: Path, ca: TestCa) -> None:
    pair = ca.issue("server")
    assert _config(tmp_path).tls_cert_file is None
    config = _config(tmp_path, tls_cert_file=str(pair.cert_file), tls_key_file=str(pair.key_file))
    assert config.tls_cert_file == pair.cert_file
    assert f"tls_cert_file={pair.cert_file}" in config.summary()
    for only in ({"tls_cert_file": str(pair.cert_file)}, {"tls_key_file": str(pair.key_file)}):
        with pytest.raises(ConfigError, match="go together: set both"):
            _config(tmp_path, **only)


def test_missing_or_unreadable_files_are_refused(tmp_path: Path, ca: TestCa) -> None:
    pair = ca.issue("server")
    with pytest.raises(ConfigError, match=r"tls_key_file .*absent\.key.* not a file"):
        _config(
            tmp_path, tls_cert_file=str(pair.cert_file), tls_key_file=str(tmp_path / "absent.key")
        )
    with pytest.raises(ConfigError, match=r"tls_cert_file .* not a file"):
        _config(tmp_path, tls_cert_file=str(tmp_path), tls_key_file=str(pair.key_file))


def test_a_key_of_another_certificate_is_refused(tmp_path: Path, ca: TestCa) -> None:
    first, second = ca.issue("first"), ca.issue("second")
    with pytest.raises(ConfigError, match="the key does not belong to the certificate") as refused:
        _config(tmp_path, tls_cert_file=str(first.cert_file), tls_key_file=str(second.key_file))
    assert _key_lines(second) & set(str(refused.value).split()) == set()
    with pytest.raises(ConfigError, match="not a PEM certificate chain"):
        _config(tmp_path, tls_cert_file=str(first.key_file), tls_key_file=str(first.key_file))


@pytest.mark.timeout(20)  # OpenSSL's own password prompt would wait here for ever
def test_an_encrypted_key_is_refused_without_a_prompt(tmp_path: Path, ca: TestCa) -> None:
    from cryptography.hazmat.primitives import serialization

    pair = ca.issue("server")
    key = serialization.load_pem_private_key(pair.key_file.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    with pytest.raises(ConfigError, match="the private key is encrypted"):
        _config(tmp_path, tls_cert_file=str(pair.cert_file), tls_key_file=str(encrypted))


# ---------------------------------------------------------------- the running server


@dataclass
class TlsServer:
    url: str
    port: int
    ca: TestCa
    first: ServerCertificate
    second: ServerCertificate
    cert_file: Path
    key_file: Path
    owner_email: str
    owner_password: str

    async def served_certificate(self) -> bytes:
        """SHA-256 of the certificate a new handshake gets (verified against the test CA)."""
        _, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.ca.client_context(), server_hostname="127.0.0.1"
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
        return hashlib.sha256(der).digest()

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ca.client_context()))


@pytest.fixture
async def tls_server(
    tmp_path: Path, ca: TestCa, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[TlsServer]:
    caplog.set_level(logging.INFO)
    first, second = ca.issue("first"), ca.issue("second")
    cert_file, key_file = tmp_path / "live" / "fullchain.pem", tmp_path / "live" / "privkey.pem"
    cert_file.parent.mkdir()
    _install(first, cert_file, key_file)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _, _, owner, _, _ = await seed(data_dir)
    config = _config(
        tmp_path,
        tls_cert_file=str(cert_file),
        tls_key_file=str(key_file),
        **{"ice.host_addresses": ("127.0.0.1",)},
    )
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_ready(_: object, url: str) -> None:
        ready.set_result(url)

    stop = asyncio.Event()
    running = asyncio.create_task(serve(config, on_ready=on_ready, stop=stop))
    try:
        url = await asyncio.wait_for(asyncio.shield(ready), 30)
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        yield TlsServer(
            url, port, ca, first, second, cert_file, key_file, owner.email, owner.password
        )
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 15) == 0


def _key_lines(pair: ServerCertificate) -> set[str]:
    return {line for line in pair.key_text().splitlines() if line and "PRIVATE KEY" not in line}


async def test_serves_https_and_says_so(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    assert await tls_server.served_certificate() == tls_server.first.sha256
    async with tls_server.session() as http:
        reply = await http.get(tls_server.url + "health")
        assert reply.status == 200
        assert (await reply.json())["status"] == "ok"
        page = await http.get(tls_server.url)
        assert page.status == 200
        assert "<html" in (await page.text()).lower()
    started = [record.getMessage() for record in caplog.get_records("setup")]
    assert f"listening on {tls_server.url}" in started
    loaded = next(line for line in started if line.startswith("TLS certificate "))
    assert "CN=radiocore.test, valid until" in loaded
    assert tls_server.first.sha256.hex(":") in loaded
    assert not any(line in "\n".join(started) for line in _key_lines(tls_server.first))


async def test_plain_http_gets_no_answer_and_tls_starts_at_1_2(tls_server: TlsServer) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await http.get(f"http://127.0.0.1:{tls_server.port}/health")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        client = tls_server.ca.client_context()
        client.minimum_version = client.maximum_version = version
        _, writer = await asyncio.open_connection("127.0.0.1", tls_server.port, ssl=client)
        assert writer.get_extra_info("ssl_object").version() == version.name.replace("v1_", "v1.")
        writer.close()
    # older versions are not offered (OpenSSL 3 clients no longer send them either)
    context = load_context(tls_server.cert_file, tls_server.key_file)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


async def _wait_served(server: TlsServer, expected: bytes, seconds: float) -> bool:
    for _ in range(int(seconds / 0.2)):
        if await server.served_certificate() == expected:
            return True
        await asyncio.sleep(0.2)
    return await server.served_certificate() == expected


async def test_certificate_is_reloaded_when_the_files_change(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_server.session() as http:
        # an HTTPS connection opened before the renewal
        assert (await http.get(tls_server.url + "health")).status == 200
        _install(tls_server.second, tls_server.cert_file, tls_server.key_file)
        assert await _wait_served(tls_server, tls_server.second.sha256, RELOAD_WAIT_S), (
            "the renewed certificate was never served"
        )
        assert "TLS certificate reloaded (the files changed)" in caplog.text
        # the connection opened before the renewal still works
        assert (await http.get(tls_server.url + "health")).status == 200
    for pair in (tls_server.first, tls_server.second):
        assert not any(line in caplog.text for line in _key_lines(pair)), "a key was logged"


async def test_an_invalid_new_pair_keeps_the_old_certificate(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # the new certificate with the old key: what a half-finished renewal looks like
    shutil.copyfile(tls_server.second.cert_file, tls_server.cert_file.with_suffix(".new"))
    os.replace(tls_server.cert_file.with_suffix(".new"), tls_server.cert_file)
    refused = await wait_for(
        lambda: any(
            r.levelno == logging.ERROR and "not reloaded" in r.getMessage() for r in caplog.records
        ),
        RELOAD_WAIT_S,
    )
    assert refused, "no error logged for a certificate whose key does not match"
    error = next(r.getMessage() for r in caplog.records if "not reloaded" in r.getMessage())
    assert "the key does not belong to the certificate" in error
    assert "still serving" in error
    assert await tls_server.served_certificate() == tls_server.first.sha256
    async with tls_server.session() as http:
        assert (await http.get(tls_server.url + "health")).status == 200

    # the key arrives: the pair is whole again and is served
    _install(tls_server.second, tls_server.cert_file, tls_server.key_file)
    assert await _wait_served(tls_server, tls_server.second.sha256, RELOAD_WAIT_S)


async def test_sighup_reloads_at_once(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    _install(tls_server.second, tls_server.cert_file, tls_server.key_file)
    os.kill(os.getpid(), signal.SIGHUP)  # the server's handler; without one pytest would die
    assert await wait_for(lambda: "reloaded (SIGHUP)" in caplog.text, 5)
    assert await tls_server.served_certificate() == tls_server.second.sha256


async def _login(server: TlsServer, http: aiohttp.ClientSession) -> str:
    reply = await http.post(
        server.url + "api/auth/login",
        json={"email": server.owner_email, "password": server.owner_password},
    )
    assert reply.status == 200, await reply.text()
    return str((await reply.json())["token"])


async def test_the_console_origin_is_accepted_over_https(tls_server: TlsServer) -> None:
    """A browser on https://host:port/ sends `Origin: https://host:port`; Engine.IO on aiohttp
    would compare it with http://… and refuse the console's own WebSocket."""
    own_origin = tls_server.url.rstrip("/")
    async with tls_server.session() as http:
        token = await _login(tls_server, http)
        client = socketio.AsyncClient(reconnection=False, http_session=http)
        await client.connect(
            tls_server.url,
            headers={"Origin": own_origin},
            auth={"token": token},
            namespaces=["/operator"],
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            boards = await client.call("list_boards", {}, namespace="/operator", timeout=10)
            assert boards["ok"], boards
            assert [b["name"] for b in boards["boards"]] == ["Test station"]
        finally:
            await client.disconnect()

        for foreign in ("https://evil.example", own_origin.replace("https://", "http://")):
            intruder = socketio.AsyncClient(reconnection=False, http_session=http)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await intruder.connect(
                    tls_server.url,
                    headers={"Origin": foreign},
                    auth={"token": token},
                    namespaces=["/operator"],
                    transports=["websocket"],
                    wait_timeout=10,
                )
            assert not intruder.connected, foreign
