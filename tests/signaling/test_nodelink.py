"""Requests between nodes are signed with a key of the shared secret: only a node of the same
server, recently, for this path and this body, passes (`signaling.nodelink.NodeKey`)."""

from __future__ import annotations

import pytest

from signaling.nodelink import MAX_SKEW_S, NodeAuthError, NodeKey, forwarded_key, split_key

SECRET = "s" * 48
PATH = "/api/internal/node/offer"
BODY = b'{"board_id": "b", "sdp": "v=0"}'


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_signed_request_names_its_node() -> None:
    key = NodeKey(SECRET)
    assert key.check(key.headers("node-3", PATH, BODY), PATH, BODY) == "node-3"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda h, p, b: ({k: v for k, v in h.items() if k != "X-RadioCore-Signature"}, p, b),
         "not signed"),
        (lambda h, p, b: (h, p, b + b" "), "bad signature"),
        (lambda h, p, b: (h, "/api/internal/node/leave", b), "bad signature"),
        (lambda h, p, b: ({**h, "X-RadioCore-Node": "node-9"}, p, b), "bad signature"),
        (lambda h, p, b: ({**h, "X-RadioCore-Time": "soon"}, p, b), "bad time"),
    ],
)  # fmt: skip
def test_a_changed_request_is_refused(change: object, why: str) -> None:
    key = NodeKey(SECRET)
    headers, path, body = change(key.headers("node-3", PATH, BODY), PATH, BODY)  # type: ignore[operator]
    with pytest.raises(NodeAuthError, match=why):
        key.check(headers, path, body)


def test_another_servers_secret_is_refused() -> None:
    theirs = NodeKey("t" * 48)
    with pytest.raises(NodeAuthError, match="bad signature"):
        NodeKey(SECRET).check(theirs.headers("node-3", PATH, BODY), PATH, BODY)


def test_an_old_or_future_request_is_refused() -> None:
    clock = Clock()
    key = NodeKey(SECRET, clock)
    headers = key.headers("node-3", PATH, BODY)
    clock.now += MAX_SKEW_S  # still fresh
    assert key.check(headers, PATH, BODY) == "node-3"
    clock.now += 2  # replayed later
    with pytest.raises(NodeAuthError, match="away from this node's clock"):
        key.check(headers, PATH, BODY)
    clock.now -= 2 * MAX_SKEW_S + 4  # from a clock far ahead
    with pytest.raises(NodeAuthError, match="away from this node's clock"):
        key.check(headers, PATH, BODY)


def test_forwarded_keys_carry_their_node() -> None:
    key = forwarded_key("node-3", "sid-abc")
    assert split_key(key) == ("node-3", "sid-abc")
    assert split_key("sid-abc") is None, "a local connection id has no node"
