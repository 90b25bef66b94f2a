"""deploy/nginx/radiocore.conf, as shipped, in a real nginx in front of a real server.

The test reads the example and substitutes only what a test must (loopback ports, a test CA's
certificate, the upstream's port, the ACME web root), checks that each of those lines is
still in the example (an edited example fails here rather than being tested half), and runs it
in a hermetic nginx (its own prefix, pid, logs and temp paths; one process, in the
foreground). Through it, over HTTPS: the console page with its security headers, a REST
login, a board agent's Socket.IO connection (the station comes online through the proxy) and
an operator's Socket.IO WebSocket that lists and joins the station, with the browser's
`Origin` header, which the server's origin check accepts only because the proxy forwards
Host/X-Forwarded-Host/X-Forwarded-Proto. A foreign origin is refused through the proxy, plain
HTTP redirects to HTTPS, and the server's loopback-only /api/internal/ stays unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import pytest
import socketio

from bench.tools import free_ports, stop_process
from radiocore import aiortc_hooks
from tests.integration.harness import AgentProcess, LiveServer, sfu_of, start_server, stop_server
from tests.support.components import require
from tests.support.tls_certs import TestCa
from tests.support.waiting import wait_for

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLE: Final = REPO_ROOT / "deploy" / "nginx" / "radiocore.conf"
NGINX: Final = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.timeout(120)


def substitutions(
    https_port: int, http_port: int, upstream_port: int, work: Path, ca_dir: Path
) -> tuple[tuple[str, str], ...]:
    """(what the example says, what the test runs instead): addresses and paths only."""
    return (
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),  # loopback only
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("/etc/letsencrypt/live/radio.example.org/fullchain.pem", str(ca_dir / "server.pem")),
        ("/etc/letsencrypt/live/radio.example.org/privkey.pem", str(ca_dir / "server.key")),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("root /var/www/html;", f"root {work / 'www'};"),
    )


def nginx_config(example: str, replacements: tuple[tuple[str, str], ...]) -> str:
    for placeholder, value in replacements:
        count = example.count(placeholder)
        assert count == 1, f"{EXAMPLE.name}: expected {placeholder!r} once, found it {count} times"
        example = example.replace(placeholder, value)
    return example


MAIN_CONFIG = """\
daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/radiocore.conf;
}}
"""


@dataclass
class Nginx:
    work: Path
    https_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    def log(self) -> str:
        path = self.work / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def start(self, upstream_port: int, ca_dir: Path) -> None:
        site = nginx_config(
            EXAMPLE.read_text(),
            substitutions(self.https_port, self.http_port, upstream_port, self.work, ca_dir),
        )
        (self.work / "radiocore.conf").write_text(site)
        main = self.work / "nginx.conf"
        main.write_text(MAIN_CONFIG.format(work=self.work))
        command = [NGINX, "-p", str(self.work), "-c", str(main), "-e", str(self.work / "error.log")]
        checked = subprocess.run(
            [*command, "-t"], capture_output=True, text=True, timeout=20, check=False
        )
        assert checked.returncode == 0, f"nginx -t refused the example: {checked.stderr}"
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded: 10 s, 0.05 s steps
            if self.process.poll() is not None:
                pytest.fail(f"nginx exited at start: {self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        pytest.fail(f"nginx did not listen within 10 s: {self.log()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=5)


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    directory = tmp_path / "tls"
    directory.mkdir()
    authority = TestCa(directory)
    authority.issue("server")
    return authority


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    live = await start_server(tmp_path)  # plain HTTP on 127.0.0.1, as behind the proxy
    yield live
    await stop_server(live)
    aiortc_hooks.set_host_addresses(())


@pytest.fixture
def nginx(tmp_path: Path, server: LiveServer, ca: TestCa) -> Iterator[Nginx]:
    require(Path(NGINX).exists(), f"nginx is not installed at {NGINX} (Debian: nginx)")
    work = tmp_path / "nginx"
    (work / "www" / ".well-known" / "acme-challenge").mkdir(parents=True)
    https_port, http_port = free_ports(2)
    proxy = Nginx(work, https_port=https_port, http_port=http_port)
    proxy.start(server.port, ca.directory)
    yield proxy
    proxy.stop()


def _session(ca: TestCa) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca.client_context()))


async def test_console_and_rest_through_the_proxy(
    nginx: Nginx, server: LiveServer, ca: TestCa
) -> None:
    async with _session(ca) as http:
        page = await http.get(nginx.url)
        assert page.status == 200
        assert "<html" in (await page.text()).lower()
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        health = await http.get(nginx.url + "health")
        assert (await health.json())["status"] == "ok"
        login = await http.post(
            nginx.url + "api/auth/login",
            json={"email": server.owner.email, "password": server.owner.password},
        )
        assert login.status == 200
        assert (await login.json())["token"]
        # loopback-only on the server, and behind the proxy everything comes from loopback
        direct = await http.get(server.url + "api/internal/sfu")
        assert direct.status == 200
        hidden = await http.get(nginx.url + "api/internal/sfu")
        assert hidden.status == 404
        # plain HTTP: a redirect to HTTPS, and the ACME challenge for certbot --webroot
        challenge = nginx.work / "www" / ".well-known" / "acme-challenge" / "token-1"
        challenge.write_text("token-1.thumbprint")
        plain = f"http://127.0.0.1:{nginx.http_port}/"
        moved = await http.get(plain + "api/boards", allow_redirects=False)
        assert moved.status == 301
        assert moved.headers["Location"] == "https://127.0.0.1/api/boards"
        acme = await http.get(plain + ".well-known/acme-challenge/token-1")
        assert (acme.status, await acme.text()) == (200, "token-1.thumbprint")


async def test_agent_and_operator_socketio_through_the_proxy(
    nginx: Nginx, server: LiveServer, ca: TestCa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the station's agent reaches the server only through the proxy, trusting the test CA
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    agent = AgentProcess(dataclasses.replace(server, url=nginx.url), sink=tmp_path / "tx.raw")
    agent.start()
    try:
        online = await wait_for(lambda: sfu_of(server).station_online(server.board_id), 30)
        assert online, (agent.log.read_text()[-3000:] if agent.log else "") + nginx.log()

        origin = nginx.url.rstrip("/")  # what a browser on the console page sends
        async with _session(ca) as http:
            login = await http.post(
                nginx.url + "api/auth/login",
                json={"email": server.owner.email, "password": server.owner.password},
            )
            token = (await login.json())["token"]
            operator = socketio.AsyncClient(reconnection=False, http_session=http)
            await operator.connect(
                nginx.url,
                headers={"Origin": origin},
                auth={"token": token},
                namespaces=["/operator"],
                transports=["websocket"],
                wait_timeout=10,
            )
            try:
                assert operator.transport() == "websocket"
                boards = await operator.call("list_boards", {}, namespace="/operator", timeout=10)
                assert boards["ok"], boards
                listed = {b["id"]: b["online"] for b in boards["boards"]}
                assert listed[server.board_id] is True
                joined = await operator.call(
                    "join", {"board_id": server.board_id}, namespace="/operator", timeout=10
                )
                assert joined["ok"], joined
                assert joined["board"] == {
                    "id": server.board_id,
                    "name": "Test station",
                    "online": True,
                }
            finally:
                await operator.disconnect()

            # a page from elsewhere is refused at the handshake, through the proxy too
            for foreign in ("https://evil.example", f"http://127.0.0.1:{nginx.https_port}"):
                intruder = socketio.AsyncClient(reconnection=False, http_session=http)
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await intruder.connect(
                        nginx.url,
                        headers={"Origin": foreign},
                        auth={"token": token},
                        namespaces=["/operator"],
                        transports=["websocket"],
                        wait_timeout=10,
                    )
    finally:
        await asyncio.to_thread(agent.stop)
