"""The RadioCore wire protocol: every Socket.IO event payload and data-channel message.

This module is the single definition that the server, the board agent and the browser console
follow; `docs/protocol.md` documents it and `tests/signaling/test_protocol_contract.py` keeps the
two in step. It imports nothing of the project and no server library (the board agent imports
it on a Raspberry Pi), only `msgspec`.

Decoding is strict at the edge: unknown fields, wrong types, out-of-range values and oversize
messages are refused with a `ProtocolError` whose message says what was wrong.
"""

from __future__ import annotations

import enum
from typing import Annotated, Final, Literal, TypeAlias, TypeVar, cast

import msgspec

# Limits that are part of the protocol (a peer may rely on them).
MAX_DATA_MESSAGE_BYTES: Final = 4096
MAX_SDP_CHARS: Final = 65536
MAX_CANDIDATE_CHARS: Final = 1024
MAX_SECRET_CHARS: Final = 256
MAX_TOKEN_CHARS: Final = 4096

#: Label of the single data channel each peer connection carries.
CONTROL_CHANNEL_LABEL: Final = "control"

#: Socket.IO namespaces.
AGENT_NAMESPACE: Final = "/agent"
OPERATOR_NAMESPACE: Final = "/operator"

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
RigMode: TypeAlias = Literal[
    "USB", "LSB", "CW", "CWR", "AM", "FM", "WFM", "RTTY", "RTTYR", "PKTUSB", "PKTLSB", "PKTFM"
]

BoardId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="board UUID, lower-case hex with dashes",
    ),
]
FrequencyHz = Annotated[int, msgspec.Meta(ge=1, le=300_000_000_000)]
PowerPercent = Annotated[int, msgspec.Meta(ge=0, le=100)]
Sdp = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SDP_CHARS)]


class ErrorCode(enum.Enum):
    """Every error code a client can receive; each has one fixed meaning."""

    BAD_REQUEST = "bad_request"  # malformed or invalid payload
    TOO_LARGE = "too_large"  # message over a protocol limit
    UNKNOWN_EVENT = "unknown_event"  # Socket.IO event the namespace does not have
    UNKNOWN_MESSAGE = "unknown_message"  # data-channel message type not in the protocol
    UNAUTHORIZED = "unauthorized"  # missing, forged or expired credentials
    FORBIDDEN = "forbidden"  # authenticated, but no right to do this
    NOT_FOUND = "not_found"  # no such board
    NOT_JOINED = "not_joined"  # event needs a prior `join` of that board
    STATION_OFFLINE = "station_offline"  # the board agent is not connected
    FLOOR_BUSY = "floor_busy"  # someone else holds the transmitter
    BAD_SDP = "bad_sdp"  # the session description could not be applied
    RATE_LIMITED = "rate_limited"  # too many messages
    RIG_ERROR = "rig_error"  # the rig refused a command or did not answer
    INTERNAL = "internal"  # the server failed; nothing was changed


class ProtocolError(Exception):
    """A message that does not follow the protocol; `code` says which way."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Payload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of data-channel messages: a JSON object with a `type` tag."""


# ---------------------------------------------------------------------------------------------
# Data-channel messages, operator -> station (through the SFU)


class Ptt(_Msg, frozen=True, tag="ptt"):
    """Key (`true`) or release (`false`) the transmitter."""

    state: bool


class SetFrequency(_Msg, frozen=True, tag="freq"):
    value: FrequencyHz


class SetMode(_Msg, frozen=True, tag="mode"):
    value: RigMode


class SetPower(_Msg, frozen=True, tag="power"):
    value: PowerPercent


class Keepalive(_Msg, frozen=True, tag="keepalive"):
    """Sent by the floor holder at least every `KEEPALIVE_INTERVAL_S` while keyed; the server
    relays it to the station. Without it, server and station both release PTT (dead-man)."""


OperatorMessage: TypeAlias = Ptt | SetFrequency | SetMode | SetPower | Keepalive

#: How often a keyed operator sends `keepalive` (the dead-man timers are a few times longer).
KEEPALIVE_INTERVAL_S: Final = 0.25

#: Why a transmission ended (the audit log and `ptt_released` use the same words).
TxEndReason: TypeAlias = Literal[
    "released",  # the operator let go of PTT
    "deadman",  # the holder's keep-alives stopped
    "timeout",  # continuous TX reached the time-out
    "override",  # the station owner took the floor
    "link_lost",  # the holder's connection dropped
    "station_lost",  # the station went offline
    "rig_error",  # the rig failed; PTT released as the safe default
]


# ---------------------------------------------------------------------------------------------
# Data-channel messages, station -> operators (through the SFU)


class Status(_Msg, frozen=True, tag="status"):
    ptt: bool
    freq: FrequencyHz
    mode: RigMode
    smeter: int | None = None  # dBm as Hamlib reports STRENGTH (S9 = -73 dBm in the seed)
    squelch: bool | None = None  # True while the squelch is open (signal present)
    power: PowerPercent | None = None
    rig_online: bool = True  # False while the rig (rigctld) does not answer; values are stale


class Heartbeat(_Msg, frozen=True, tag="heartbeat"):
    timestamp: float  # station's unix time, seconds


class Error(_Msg, frozen=True, tag="error"):
    """A refused message (from the server), or a failed command (from the station); `ref` is the
    `type` of the message concerned, if known."""

    code: ErrorCode
    message: str
    ref: str | None = None


class FrequencyRange(_Payload, frozen=True):
    low: FrequencyHz
    high: FrequencyHz


class Capabilities(_Msg, frozen=True, tag="capabilities"):
    """What the rig accepts; the server refuses other `freq`/`mode` requests before they reach
    the station. Sent by the station when its control channel opens and when it changes."""

    modes: list[RigMode]
    freq_ranges: list[FrequencyRange]


class TxStopped(_Msg, frozen=True, tag="tx_stopped"):
    """The station released PTT by itself (its own dead-man or time-out, or a rig error)."""

    reason: TxEndReason


StationMessage: TypeAlias = Status | Heartbeat | Capabilities | TxStopped | Error


# ---------------------------------------------------------------------------------------------
# Data-channel messages, server -> clients


class Floor(_Msg, frozen=True, tag="floor"):
    """Who transmits now (callsign), or nobody (`null`); sent to every operator on change.
    `you` is true for the holder's own connection (the same account may have several)."""

    holder: str | None
    you: bool = False


class PttReleased(_Msg, frozen=True, tag="ptt_released"):
    """To the (former) holder: the server released your PTT, and why (`by`: who overrode)."""

    reason: TxEndReason
    by: str | None = None


class TxWarning(_Msg, frozen=True, tag="tx_warning"):
    """To the holder: the TX time-out releases PTT in `remaining_s` seconds."""

    remaining_s: int


ServerMessage: TypeAlias = Floor | Error | PttReleased | TxWarning


# ---------------------------------------------------------------------------------------------
# Socket.IO payloads (JSON objects, no `type` tag)


class AgentAuth(_Payload, frozen=True):
    """`auth` of a board agent's connection to the `/agent` namespace."""

    board_id: BoardId
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=MAX_SECRET_CHARS)]


class OperatorAuth(_Payload, frozen=True):
    """`auth` of an operator's connection to the `/operator` namespace."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOKEN_CHARS)]


class IceServer(_Payload, frozen=True):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class BoardInfo(_Payload, frozen=True):
    id: BoardId
    name: str
    online: bool


class JoinRequest(_Payload, frozen=True):
    board_id: BoardId


class JoinReply(_Payload, frozen=True):
    board: BoardInfo
    ice_servers: list[IceServer]
    can_transmit: bool
    is_owner: bool  # the owner may take the floor from anyone (override)


class BoardListReply(_Payload, frozen=True):
    boards: list[BoardInfo]


class OperatorOffer(_Payload, frozen=True):
    """An operator's SDP offer for its peer connection with the SFU for one board."""

    board_id: BoardId
    type: Literal["offer"]
    sdp: Sdp


class AgentOffer(_Payload, frozen=True):
    """The board agent's SDP offer for its peer connection with the SFU."""

    type: Literal["offer"]
    sdp: Sdp


class Answer(_Payload, frozen=True):
    type: Literal["answer"]
    sdp: Sdp


class OperatorCandidate(_Payload, frozen=True):
    """A trickled ICE candidate for the operator's peer connection of one board."""

    board_id: BoardId
    candidate: Annotated[str, msgspec.Meta(max_length=MAX_CANDIDATE_CHARS)]
    sdpMid: str | None = None  # noqa: N815 - the browser's field name
    sdpMLineIndex: int | None = None  # noqa: N815


class AgentCandidate(_Payload, frozen=True):
    candidate: Annotated[str, msgspec.Meta(max_length=MAX_CANDIDATE_CHARS)]
    sdpMid: str | None = None  # noqa: N815
    sdpMLineIndex: int | None = None  # noqa: N815


class LeaveRequest(_Payload, frozen=True):
    board_id: BoardId


class Presence(_Payload, frozen=True):
    """Server -> operator event `presence`: a board the operator may use went on- or offline."""

    board_id: BoardId
    online: bool


class AgentWelcome(_Payload, frozen=True):
    """Ack of the agent's `hello`: what the server wants the agent to use."""

    board_id: BoardId
    name: str
    ice_servers: list[IceServer]


class ErrorBody(_Payload, frozen=True):
    code: ErrorCode
    message: str


# ---------------------------------------------------------------------------------------------
# Encoding and strict decoding

T = TypeVar("T")

_operator_decoder = msgspec.json.Decoder(OperatorMessage)
_station_decoder = msgspec.json.Decoder(StationMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_encoder = msgspec.json.Encoder()


def _tags(*types: type[_Msg]) -> frozenset[object]:
    return frozenset(t.__struct_config__.tag for t in types)


OPERATOR_MESSAGE_TYPES: Final = _tags(Ptt, SetFrequency, SetMode, SetPower, Keepalive)
STATION_MESSAGE_TYPES: Final = _tags(Status, Heartbeat, Capabilities, TxStopped, Error)
SERVER_MESSAGE_TYPES: Final = _tags(Floor, Error, PttReleased, TxWarning)


def _decode_tagged(
    data: bytes | str, decoder: msgspec.json.Decoder[object], known: frozenset[object]
) -> object:
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_DATA_MESSAGE_BYTES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"message of {len(raw)} bytes is over the {MAX_DATA_MESSAGE_BYTES}-byte limit",
        )
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "at `$.type`" in text:
            kind = message_type(raw)
            if kind is not None and kind not in known:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_MESSAGE, f"unknown message type {kind!r}"
                ) from None
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"invalid message: {text}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"malformed JSON: {exc}") from None


def message_type(data: bytes | str) -> str | None:
    """The `type` field of a JSON message if it has a string one, for error reports."""
    try:
        obj = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind[:64] if isinstance(kind, str) else None


def decode_operator_message(data: bytes | str) -> OperatorMessage:
    """Decode a data-channel message an operator sent; raises `ProtocolError`."""
    return _decode_tagged(data, _operator_decoder, OPERATOR_MESSAGE_TYPES)  # type: ignore[return-value]


def decode_station_message(data: bytes | str) -> StationMessage:
    """Decode a data-channel message the board agent sent; raises `ProtocolError`."""
    return _decode_tagged(data, _station_decoder, STATION_MESSAGE_TYPES)  # type: ignore[return-value]


def decode_server_message(data: bytes | str) -> ServerMessage:
    """Decode a data-channel message the server sent (used by clients)."""
    return _decode_tagged(data, _server_decoder, SERVER_MESSAGE_TYPES)  # type: ignore[return-value]


def encode(message: msgspec.Struct) -> bytes:
    """Encode any protocol message or payload as compact JSON."""
    return _encoder.encode(message)


def to_builtins(payload: msgspec.Struct) -> dict[str, object]:
    """A payload as plain JSON-able values, for Socket.IO `emit` and acks."""
    # every struct here encodes as a JSON object
    return cast(dict[str, object], msgspec.to_builtins(payload))


def decode_payload(payload_type: type[T], value: object) -> T:
    """Convert a Socket.IO event argument into a payload struct; raises `ProtocolError`."""
    if not isinstance(value, dict):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"expected a JSON object, got {type(value).__name__}"
        )
    try:
        return msgspec.convert(value, payload_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        code = ErrorCode.TOO_LARGE if "length <=" in text else ErrorCode.BAD_REQUEST
        raise ProtocolError(code, f"invalid payload: {text}") from None


def ok(payload: msgspec.Struct | None = None) -> dict[str, object]:
    """A successful ack: `{"ok": true, ...fields of payload}`."""
    reply: dict[str, object] = {"ok": True}
    if payload is not None:
        reply.update(to_builtins(payload))
    return reply


def failure(code: ErrorCode, message: str) -> dict[str, object]:
    """A refused ack: `{"ok": false, "error": {"code": ..., "message": ...}}`."""
    return {"ok": False, "error": {"code": code.value, "message": message}}
