"""STUN/TURN URLs are checked before they reach a client or aiortc (turn/urls.py)."""

from __future__ import annotations

import pytest

from turn.urls import IceUrl, parse_ice_url


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("stun:stun.example.org", IceUrl("stun", "stun.example.org", 3478, None)),
        ("stun:192.0.2.1:19302", IceUrl("stun", "192.0.2.1", 19302, None)),
        ("turn:turn.example.org?transport=tcp", IceUrl("turn", "turn.example.org", 3478, "tcp")),
        ("turn:[2001:db8::1]:3479?transport=udp", IceUrl("turn", "2001:db8::1", 3479, "udp")),
        (
            "turns:turn.example.org:443?transport=tcp",
            IceUrl("turns", "turn.example.org", 443, "tcp"),
        ),
        ("turns:turn.example.org", IceUrl("turns", "turn.example.org", 5349, None)),
    ],
)
def test_valid_urls(url: str, parsed: IceUrl) -> None:
    assert parse_ice_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://turn.example.org", "must start with one of"),
        ("turn://turn.example.org:3478", "without //"),
        ("turn:user:pass@turn.example.org", "carry no credentials"),
        ("turn:turn.example.org:0", "port must be 1"),
        ("turn:turn.example.org:99999", "port must be 1"),
        ("turn:turn.example.org?transport=sctp", r"only \?transport=udp"),
        ("stun:stun.example.org?transport=udp", "only for TURN"),
        ("turns:turn.example.org?transport=udp", "over TCP"),
        ("turn:bad_host:3478", "not a host name"),
        ("turn:[::zz]:3478", "not an IPv6 address"),
        ("turn:", "not a host name"),
    ],
)
def test_invalid_urls_say_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_ice_url(url)
