"""The ICE servers each peer is given (signaling/ice.py): explicit, STUN without credentials,
TURN with credentials issued for that peer, the SFU on the relay only when asked."""

from __future__ import annotations

import time

import radiocore_protocol as protocol
from signaling.config import load_server_config
from signaling.ice import SFU_IDENTITY, IcePlan
from turn.credentials import password_for

TURN_SECRET = "a-turn-secret-of-at-least-32-characters!"
ENV = {"RADIOCORE_SECRET": "ice-test-" + "s3cr3t" * 8, "RADIOCORE_TURN__SECRET": TURN_SECRET}


def plan(**overrides: object) -> IcePlan:
    return IcePlan(load_server_config(env=ENV, overrides=overrides))


def test_no_servers_configured_is_an_explicit_empty_list() -> None:
    assert plan().for_peer("someone") == []
    assert plan().for_sfu() == ()
    assert plan().policy == "all"


def test_stun_entries_carry_no_credentials_at_all() -> None:
    servers = plan(**{"ice.servers": "stun:stun.example.org"}).for_peer("u1")
    assert servers == [protocol.IceServer(urls=["stun:stun.example.org"])]
    # absent, not null, on the wire (the protocol document says so)
    assert protocol.to_builtins(servers[0]) == {"urls": ["stun:stun.example.org"]}


def test_turn_credentials_are_issued_per_peer_and_verify_with_the_secret() -> None:
    urls = "turn:t.example.org:3478?transport=udp,turns:t.example.org:443?transport=tcp"
    relay = plan(**{"turn.urls": urls, "turn.ttl_s": 600, "ice.transport_policy": "relay"})
    before = int(time.time())
    (turn,) = relay.for_peer("user-42")
    assert turn.urls == urls.split(",")  # the configured order of preference
    assert turn.username is not None and turn.credential is not None
    expiry, identity = turn.username.split(":")
    assert identity == "user-42" and before + 600 <= int(expiry) <= int(time.time()) + 600
    assert turn.credential == password_for(TURN_SECRET, turn.username)
    assert relay.for_peer("user-43")[0].username != turn.username
    assert relay.policy == "relay"
    assert TURN_SECRET not in repr(relay.for_peer("user-42"))


def test_the_sfu_uses_the_relay_only_when_configured_to() -> None:
    urls = "turn:t.example.org:3478"
    assert plan(**{"turn.urls": urls}).for_sfu() == ()
    (spec,) = plan(**{"turn.urls": urls, "turn.sfu_relay": True}).for_sfu()
    assert spec.urls == (urls,) and spec.username is not None
    assert spec.username.endswith(":" + SFU_IDENTITY)
