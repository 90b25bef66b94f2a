"""Numbers and names that are part of the protocol: a peer may rely on every one of them."""

from __future__ import annotations

from typing import Final

#: Largest data-channel message, in bytes of UTF-8 JSON (`too_large` above it).
MAX_DATA_MESSAGE_BYTES: Final = 4096
#: Longest SDP offer or answer, in characters.
MAX_SDP_CHARS: Final = 65536
#: Longest trickled ICE candidate line, in characters.
MAX_CANDIDATE_CHARS: Final = 1024
#: Board secrets: the server issues 43 characters (256 bits, URL-safe base64); it accepts these.
MIN_SECRET_CHARS: Final = 16
MAX_SECRET_CHARS: Final = 256
MAX_TOKEN_CHARS: Final = 4096
#: Most other server nodes a board agent may name in its `AgentAuth.other_servers`.
MAX_OTHER_SERVERS: Final = 16
#: Longest server URL in `AgentAuth.other_servers` and `PlacedElsewhere.server`.
MAX_SERVER_URL_CHARS: Final = 2048
#: Largest Socket.IO frame a server accepts; a longer one closes the connection (Engine.IO).
MAX_SOCKETIO_FRAME_BYTES: Final = 1_000_000
#: Most Socket.IO events, and separately most data-channel messages, one connection may send
#: per second; the excess is refused with `rate_limited`. A server may be configured stricter.
MAX_MESSAGES_PER_SECOND: Final = 1000
#: Largest accepted `sdpMLineIndex` of a trickled candidate (an offer has two m-lines).
MAX_SDP_MLINE_INDEX: Final = 15

#: Most operators a `roster` lists (its `count` counts them all): 40 entries with 32-character
#: callsigns stay well under `MAX_DATA_MESSAGE_BYTES`.
MAX_ROSTER_LISTENERS: Final = 40

#: Label of the single data channel each peer connection carries.
CONTROL_CHANNEL_LABEL: Final = "control"

#: Socket.IO namespaces.
AGENT_NAMESPACE: Final = "/agent"
OPERATOR_NAMESPACE: Final = "/operator"

#: How often a keyed operator sends `keepalive` (the dead-man timers are a few times longer).
KEEPALIVE_INTERVAL_S: Final = 0.25
#: A dead-man time must leave room for this many keep-alive intervals, so that one late or
#: lost keep-alive never cuts a transmission: server and station both refuse a shorter one.
DEADMAN_MIN_KEEPALIVES: Final = 2
#: The shortest and longest dead-man times server and station accept (seconds).
MIN_DEADMAN_S: Final = KEEPALIVE_INTERVAL_S * DEADMAN_MIN_KEEPALIVES
MAX_DEADMAN_S: Final = 60.0

#: Frequencies the protocol can carry, in Hz.
MIN_FREQUENCY_HZ: Final = 1
MAX_FREQUENCY_HZ: Final = 300_000_000_000

#: Hamlib mode names the protocol accepts (`rigctl` spelling).
RIG_MODES: Final = (
    "USB",
    "LSB",
    "CW",
    "CWR",
    "AM",
    "FM",
    "WFM",
    "RTTY",
    "RTTYR",
    "PKTUSB",
    "PKTLSB",
    "PKTFM",
)

#: Board ids: UUIDs written in lower-case hex with dashes (the server also accepts upper case
#: in REST paths and answers with the canonical form).
BOARD_ID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def deadman_refusal(key: str, value: float) -> str | None:
    """Why `value` cannot be the dead-man time `key` (a sentence for a config error), or None.

    One rule for the server's `floor.deadman_s` and the station's `deadman_s`."""
    if MIN_DEADMAN_S <= value <= MAX_DEADMAN_S:
        return None
    return (
        f"{key} must be {MIN_DEADMAN_S:g} … {MAX_DEADMAN_S:g} s (at least "
        f"{DEADMAN_MIN_KEEPALIVES} keep-alive intervals of {KEEPALIVE_INTERVAL_S:g} s, so that "
        f"one late keep-alive does not cut a transmission), not {value}"
    )
