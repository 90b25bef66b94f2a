"""The protocol's messages as typed structs, and their strict encoding and decoding.

Decoding is strict at the edge: unknown fields, wrong types, out-of-range values and oversize
messages are refused with a `ProtocolError` whose message says what was wrong.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, TypeAlias, TypeVar, cast

import msgspec

from radiocore_protocol.constants import (
    BOARD_ID_PATTERN,
    MAX_CANDIDATE_CHARS,
    MAX_DATA_MESSAGE_BYTES,
    MAX_FREQUENCY_HZ,
    MAX_OTHER_SERVERS,
    MAX_ROSTER_LISTENERS,
    MAX_SDP_CHARS,
    MAX_SDP_MLINE_INDEX,
    MAX_SECRET_CHARS,
    MAX_SERVER_URL_CHARS,
    MAX_TOKEN_CHARS,
    MIN_FREQUENCY_HZ,
    MIN_SECRET_CHARS,
)
from radiocore_protocol.errors import ErrorCode, ProtocolError

RigMode: TypeAlias = Literal[
    "USB", "LSB", "CW", "CWR", "AM", "FM", "WFM", "RTTY", "RTTYR", "PKTUSB", "PKTLSB", "PKTFM"
]

BoardId = Annotated[
    str,
    msgspec.Meta(
        pattern=BOARD_ID_PATTERN,
        description="board UUID, lower-case hex with dashes",
    ),
]
FrequencyHz = Annotated[int, msgspec.Meta(ge=MIN_FREQUENCY_HZ, le=MAX_FREQUENCY_HZ)]
PowerPercent = Annotated[int, msgspec.Meta(ge=0, le=100)]
Sdp = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SDP_CHARS)]
MLineIndex = Annotated[int, msgspec.Meta(ge=0, le=MAX_SDP_MLINE_INDEX)]
#: Seconds since 1970 (UTC), from 2020 to 2100.
UnixTime = Annotated[float, msgspec.Meta(ge=1_577_836_800, le=4_102_444_800)]


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


class FloorRequest(_Msg, frozen=True, tag="floor_request"):
    """For the server, not the station: `true` = "I am waiting to talk" (shown to everyone in
    the roster, so that the holder sees it), `false` = withdrawn. Only from an operator who may
    transmit (else `forbidden`); cleared when the requester gets the floor or leaves."""

    state: bool


OperatorMessage: TypeAlias = Ptt | SetFrequency | SetMode | SetPower | Keepalive | FloorRequest

#: Why a transmission ended (the audit log and `ptt_released` use the same words).
TxEndReason: TypeAlias = Literal[
    "released",  # the operator let go of PTT
    "deadman",  # the holder's keep-alives stopped
    "timeout",  # continuous TX reached the time-out
    "override",  # the station owner took the floor
    "link_lost",  # the holder's connection dropped
    "station_lost",  # the station went offline
    "rig_error",  # the rig failed; PTT released as the safe default
    "watchdog",  # the station's PTT guard released it: the agent process died or stalled
    "server_shutdown",  # the server is stopping (it released every floor first)
    "server_restart",  # (TX log only) the server stopped without closing the record
    "access_ended",  # the holder lost the right to transmit (booking over, right withdrawn)
]


# ---------------------------------------------------------------------------------------------
# Data-channel messages, station -> operators (through the SFU)


class Status(_Msg, frozen=True, tag="status"):
    ptt: bool
    freq: FrequencyHz
    mode: RigMode
    smeter: int | None = None  # dBm as Hamlib reports STRENGTH (S9 = -73 dBm)
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
    `you` is true for the holder's own connection (the same account may have several), and
    then `tx_limit_s` says after how many seconds of continuous transmission the server
    releases PTT (`timeout`); null on every other connection."""

    holder: str | None
    you: bool = False
    tx_limit_s: Annotated[int, msgspec.Meta(ge=1)] | None = None


#: A callsign as the roster shows it (an account's callsign, or a station's name).
Callsign = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class RosterEntry(_Payload, frozen=True):
    """One operator connection in a `roster`."""

    callsign: Callsign
    transmitting: bool = False  # holds the floor
    waiting: bool = False  # asked to talk (`floor_request`) and not withdrawn


class Roster(_Msg, frozen=True, tag="roster"):
    """Who is on the station: sent to an operator when its control channel opens and to every
    operator of the board on each change (join, leave, floor, request), coalesced (at most every
    250 ms a room by default). `listeners` holds at most `MAX_ROSTER_LISTENERS` entries (the
    holder and those waiting first, then by join time, listed in join order); `count` is the
    number of operator connections in the room, listed or not."""

    listeners: Annotated[list[RosterEntry], msgspec.Meta(max_length=MAX_ROSTER_LISTENERS)]
    count: Annotated[int, msgspec.Meta(ge=0)]
    holder: Callsign | None = None


class PttReleased(_Msg, frozen=True, tag="ptt_released"):
    """To the (former) holder: the server released your PTT, and why (`by`: who overrode)."""

    reason: TxEndReason
    by: str | None = None


class TxWarning(_Msg, frozen=True, tag="tx_warning"):
    """To the holder: the TX time-out releases PTT in `remaining_s` seconds."""

    remaining_s: int


ServerMessage: TypeAlias = Floor | Error | PttReleased | TxWarning | Roster


class RelayListeners(_Msg, frozen=True, tag="relay_listeners"):
    """Between servers only, never from a browser: a relay of the station (another node's, or a
    media worker's) tells the station's server how many listeners it serves, after each change;
    they are counted in the roster's `count`."""

    count: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


# ---------------------------------------------------------------------------------------------
# Socket.IO payloads (JSON objects, no `type` tag)


ServerUrl: TypeAlias = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_SERVER_URL_CHARS, pattern="^https?://")
]


class AgentAuth(_Payload, frozen=True, omit_defaults=True):
    """`auth` of a board agent's connection to the `/agent` namespace.

    `other_servers`: the other nodes of the same server this agent can connect to, as it
    would write their URLs; a node of several may then refuse the connection with
    `placed_elsewhere` naming one of them, less loaded (`PlacedElsewhere`). Empty: the
    station goes on the node connected to."""

    board_id: BoardId
    secret: Annotated[str, msgspec.Meta(min_length=MIN_SECRET_CHARS, max_length=MAX_SECRET_CHARS)]
    other_servers: Annotated[list[ServerUrl], msgspec.Meta(max_length=MAX_OTHER_SERVERS)] = []


class OperatorAuth(_Payload, frozen=True):
    """`auth` of an operator's connection to the `/operator` namespace."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOKEN_CHARS)]


class IceServer(_Payload, frozen=True, omit_defaults=True):
    """One STUN/TURN server for a peer's `RTCPeerConnection` (`username`/`credential` only for
    TURN: time-limited, issued for this client; absent for STUN)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


#: How a peer may connect: `all` (any path that works) or `relay` (only through TURN).
IceTransportPolicy: TypeAlias = Literal["all", "relay"]


class BoardInfo(_Payload, frozen=True):
    id: BoardId
    name: str
    online: bool


class JoinRequest(_Payload, frozen=True):
    board_id: BoardId


class JoinReply(_Payload, frozen=True):
    board: BoardInfo
    ice_servers: list[IceServer]
    #: The server's policy; a client may be stricter (relay) on its own.
    ice_transport_policy: IceTransportPolicy
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
    sdpMLineIndex: MLineIndex | None = None  # noqa: N815


class AgentCandidate(_Payload, frozen=True):
    candidate: Annotated[str, msgspec.Meta(max_length=MAX_CANDIDATE_CHARS)]
    sdpMid: str | None = None  # noqa: N815
    sdpMLineIndex: MLineIndex | None = None  # noqa: N815


class LeaveRequest(_Payload, frozen=True):
    board_id: BoardId


class Presence(_Payload, frozen=True):
    """Server -> operator event `presence`: a board the operator may use went on- or offline."""

    board_id: BoardId
    online: bool


class AgentHello(_Payload, frozen=True):
    """The agent's `hello`: what the station knows that the server may not (after a restart)."""

    #: Unix time the station last confirmed its transmitter unkeyed (null: never keyed since
    #: the agent started). The server closes a TX record it left open with this time.
    ptt_released_at: UnixTime | None = None


class Shutdown(_Payload, frozen=True):
    """Server -> client event `shutdown`: the server is stopping; reconnect later."""

    message: str
    #: Seconds after which reconnecting makes sense (a restart usually takes a few).
    retry_after_s: int


class AgentWelcome(_Payload, frozen=True):
    """Ack of the agent's `hello`: what the server wants the agent to use."""

    board_id: BoardId
    name: str
    ice_servers: list[IceServer]
    ice_transport_policy: IceTransportPolicy = "all"


class ErrorBody(_Payload, frozen=True):
    code: ErrorCode
    message: str


class PlacedElsewhere(_Payload, frozen=True):
    """The body of a board agent's `connect_error` with code `placed_elsewhere`: the station
    goes on another node, less loaded; `server` is that node's URL exactly as the agent wrote
    it in `AgentAuth.other_servers`. The agent connects there next, naming no other servers
    (so it is not placed again)."""

    code: ErrorCode  # placed_elsewhere
    message: str
    server: ServerUrl


#: Which part of a peer connection failed: `ice` (no network path between the peers) or `dtls`
#: (the encryption handshake: cipher suites, certificate fingerprint, SRTP profile).
MediaFailureReason: TypeAlias = Literal["ice", "dtls"]


class MediaFailed(_Payload, frozen=True, kw_only=True):
    """Server -> client event `error` with code `media_failed`: the peer connection of
    `board_id` failed for good; `reason` says which part, `message` why, for a person."""

    code: ErrorCode = ErrorCode.MEDIA_FAILED
    message: str
    reason: MediaFailureReason
    board_id: BoardId


class AccessEnded(_Payload, frozen=True, kw_only=True):
    """Server -> operator event `error` with code `forbidden`: the operator's access to
    `board_id` ended while connected (booking over, right withdrawn, blocked, account deleted);
    `message` says why, for a person. The server has closed that peer connection and forgotten
    the `join`: a new `join` is answered as admission decides then."""

    code: ErrorCode = ErrorCode.FORBIDDEN
    message: str
    board_id: BoardId


# ---------------------------------------------------------------------------------------------
# Encoding and strict decoding

T = TypeVar("T")

_operator_decoder = msgspec.json.Decoder(OperatorMessage)
_station_decoder = msgspec.json.Decoder(StationMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_relay_decoder: msgspec.json.Decoder[object] = msgspec.json.Decoder(RelayListeners)
_encoder = msgspec.json.Encoder()


def _tags(*types: type[_Msg]) -> frozenset[object]:
    return frozenset(t.__struct_config__.tag for t in types)


OPERATOR_MESSAGE_TYPES: Final = _tags(Ptt, SetFrequency, SetMode, SetPower, Keepalive, FloorRequest)
STATION_MESSAGE_TYPES: Final = _tags(Status, Heartbeat, Capabilities, TxStopped, Error)
SERVER_MESSAGE_TYPES: Final = _tags(Floor, Error, PttReleased, TxWarning, Roster)
RELAY_MESSAGE_TYPES: Final = _tags(RelayListeners)


def _decode_tagged(
    data: bytes | str, decoder: msgspec.json.Decoder[object], known: frozenset[object]
) -> object:
    try:
        raw = data.encode() if isinstance(data, str) else data
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text
        raise ProtocolError(ErrorCode.BAD_REQUEST, "malformed JSON: not Unicode text") from None
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
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 in a string too
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"malformed JSON: {exc}") from None
    except RecursionError:  # msgspec's limit, well inside MAX_DATA_MESSAGE_BYTES
        raise ProtocolError(ErrorCode.BAD_REQUEST, "malformed JSON: nested too deeply") from None


def message_type(data: bytes | str) -> str | None:
    """The `type` field of a JSON message if it has a string one, for error reports."""
    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # see `_decode_tagged`
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind[:64] if isinstance(kind, str) else None


def decode_operator_message(data: bytes | str) -> OperatorMessage:
    """Decode a data-channel message an operator sent; raises `ProtocolError`."""
    return _decode_tagged(data, _operator_decoder, OPERATOR_MESSAGE_TYPES)  # type: ignore[return-value]


def decode_station_message(data: bytes | str) -> StationMessage:
    """Decode a data-channel message the board agent sent; raises `ProtocolError`."""
    return _decode_tagged(data, _station_decoder, STATION_MESSAGE_TYPES)  # type: ignore[return-value]


def decode_relay_message(data: bytes | str) -> RelayListeners:
    """Decode a data-channel message a relay of the station sent; raises `ProtocolError`."""
    return _decode_tagged(data, _relay_decoder, RELAY_MESSAGE_TYPES)  # type: ignore[return-value]


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
    except UnicodeEncodeError:  # JSON's "\ud800" escape reads as a lone surrogate
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "invalid payload: a string is not Unicode text"
        ) from None


def ok(payload: msgspec.Struct | None = None) -> dict[str, object]:
    """A successful ack: `{"ok": true, ...fields of payload}`."""
    reply: dict[str, object] = {"ok": True}
    if payload is not None:
        reply.update(to_builtins(payload))
    return reply


def failure(code: ErrorCode, message: str) -> dict[str, object]:
    """A refused ack: `{"ok": false, "error": {"code": ..., "message": ...}}`."""
    return {"ok": False, "error": {"code": code.value, "message": message}}
