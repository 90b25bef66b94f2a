"""Behind a reverse proxy every request comes from the proxy: the client's address (which the
rate limits count by) is read from X-Forwarded-For, but only the hops trusted proxies added."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from signaling import keys
from signaling.api.http import client_address
from signaling.config import ConfigError, ServerConfig, load_server_config

SECRET = {"RADIOCORE_SECRET": "client-address-" + "s3cr3t" * 8}


def config(tmp_path: Path, proxies: tuple[str, ...]) -> ServerConfig:
    return load_server_config(
        None, SECRET, {"data_dir": str(tmp_path), "trusted_proxies": list(proxies)}
    )


def address(cfg: ServerConfig, peer: str, forwarded: list[str]) -> str:
    app = web.Application()
    app[keys.CONFIG] = cfg
    headers = [("X-Forwarded-For", value) for value in forwarded]
    request = make_mocked_request("POST", "/api/auth/login", headers=headers, app=app)
    request._transport_peername = (peer, 40000)  # the TCP peer, as aiohttp reads it
    return client_address(request)


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ((), "203.0.113.5", [], "203.0.113.5"),
        ((), "203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # no proxy trusted: ignored
        (("127.0.0.1",), "127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        # a client's own header stays left of what the proxy appended: never believed
        (("127.0.0.1",), "127.0.0.1", ["10.9.9.9, 198.51.100.1"], "198.51.100.1"),
        (("127.0.0.1",), "127.0.0.1", ["10.9.9.9", "198.51.100.1"], "198.51.100.1"),
        # two trusted hops (a load balancer, then nginx)
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", ["198.51.100.1, 10.0.0.7"], "198.51.100.1"),
        # a request that did not come through the proxy: its header is the client's own
        (("127.0.0.1",), "203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        (("127.0.0.1",), "127.0.0.1", [], "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.1", ["garbage, 198.51.100.1"], "198.51.100.1"),
    ],
)
def test_the_client_is_the_first_hop_no_trusted_proxy_added(
    tmp_path: Path, proxies: tuple[str, ...], peer: str, forwarded: list[str], client: str
) -> None:
    assert address(config(tmp_path, proxies), peer, forwarded) == client


def test_a_trusted_proxy_must_be_an_address_or_network(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        config(tmp_path, ("nginx.local",))
