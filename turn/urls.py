"""STUN and TURN URLs (RFC 7064, RFC 7065), checked before they reach a client or aiortc.

`stun:host[:port]`, `stuns:host[:port]`, `turn:host[:port][?transport=udp|tcp]`,
`turns:host[:port][?transport=tcp]`. Credentials never belong in a URL (aiortc refuses them
with `malformed uri` on every connection; TURN credentials are issued per client instead).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, Literal

Scheme = Literal["stun", "stuns", "turn", "turns"]
SCHEMES: Final = ("stun", "stuns", "turn", "turns")
_DEFAULT_PORTS: Final = {"stun": 3478, "turn": 3478, "stuns": 5349, "turns": 5349}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True)
class IceUrl:
    scheme: Scheme
    host: str
    port: int
    #: "udp" or "tcp" for TURN (None: not given, which means UDP for `turn:`); None for STUN.
    transport: str | None

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")


def parse_ice_url(url: str) -> IceUrl:
    """The parts of a STUN/TURN URL; `ValueError` saying what is wrong with it."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"{url!r} must start with one of stun:, stuns:, turn:, turns:")
    if rest.startswith("//"):
        raise ValueError(f"{url!r}: write {scheme}:host:port, without //")
    if "@" in rest:
        raise ValueError(
            f"{scheme}: URLs carry no credentials (TURN credentials are issued per client)"
        )
    address, _, query = rest.partition("?")
    transport: str | None = None
    if query:
        key, _, value = query.partition("=")
        if scheme in ("stun", "stuns") or key != "transport" or value not in ("udp", "tcp"):
            raise ValueError(f"{url!r}: only ?transport=udp or ?transport=tcp, and only for TURN")
        if scheme == "turns" and value == "udp":
            raise ValueError(f"{url!r}: turns: runs over TLS, so over TCP")
        transport = value
    host, port = _host_port(url, address, _DEFAULT_PORTS[scheme])
    return IceUrl(scheme, host, port, transport)  # type: ignore[arg-type]


def _host_port(url: str, address: str, default_port: int) -> tuple[str, int]:
    if address.startswith("["):  # [IPv6]:port
        host, _, tail = address[1:].partition("]")
        port_text = tail.removeprefix(":") if tail.startswith(":") else ""
        if tail and not tail.startswith(":"):
            raise ValueError(f"{url!r}: malformed [IPv6] address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{url!r}: {host!r} is not an IPv6 address") from None
    else:
        host, _, port_text = address.partition(":")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                raise ValueError(f"{url!r}: {host!r} is not a host name or address") from None
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{url!r}: the port must be 1 … 65535")
    return host, int(port_text)
