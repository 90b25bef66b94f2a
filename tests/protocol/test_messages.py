"""The wire protocol's messages: valid ones decode, invalid ones are refused with a clear code."""

from __future__ import annotations

import pytest

import radiocore_protocol as protocol
from radiocore_protocol import ErrorCode, ProtocolError

BOARD = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type":"ptt","state":true}', protocol.Ptt(state=True)),
        ('{"type":"freq","value":14205000}', protocol.SetFrequency(value=14_205_000)),
        ('{"type":"mode","value":"USB"}', protocol.SetMode(value="USB")),
        ('{"type":"power","value":50}', protocol.SetPower(value=50)),
    ],
)
def test_seed_operator_messages_decode(raw: str, expected: object) -> None:
    assert protocol.decode_operator_message(raw) == expected


def test_seed_status_decodes_and_round_trips() -> None:
    raw = (
        '{"type":"status","smeter":-73,"squelch":true,"ptt":false,'
        '"freq":14205000,"mode":"USB","power":50}'
    )
    status = protocol.decode_station_message(raw)
    assert status == protocol.Status(
        ptt=False, freq=14_205_000, mode="USB", smeter=-73, squelch=True, power=50
    )
    assert protocol.decode_station_message(protocol.encode(status)) == status


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"type":"ptt","state":"yes"}', ErrorCode.BAD_REQUEST),
        ('{"type":"ptt"}', ErrorCode.BAD_REQUEST),
        ('{"type":"ptt","state":true,"extra":1}', ErrorCode.BAD_REQUEST),
        ('{"type":"freq","value":0}', ErrorCode.BAD_REQUEST),
        ('{"type":"freq","value":14.2}', ErrorCode.BAD_REQUEST),
        ('{"type":"mode","value":"usb"}', ErrorCode.BAD_REQUEST),
        ('{"type":"power","value":101}', ErrorCode.BAD_REQUEST),
        ('{"type":"launch"}', ErrorCode.UNKNOWN_MESSAGE),
        ('{"state":true}', ErrorCode.BAD_REQUEST),
        ("[1,2]", ErrorCode.BAD_REQUEST),
        ("{", ErrorCode.BAD_REQUEST),
        ("", ErrorCode.BAD_REQUEST),
        ('{"type":"status","ptt":false,"freq":1,"mode":"USB"}', ErrorCode.UNKNOWN_MESSAGE),
        ('{"type":"ptt","state":true,"pad":"' + "x" * 5000 + '"}', ErrorCode.TOO_LARGE),
    ],
)
def test_invalid_operator_messages_are_refused(raw: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.decode_operator_message(raw)
    assert refused.value.code is code
    assert refused.value.message


def test_station_may_not_send_control_messages() -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.decode_station_message('{"type":"ptt","state":true}')
    assert refused.value.code is ErrorCode.UNKNOWN_MESSAGE


def test_payloads_are_strict() -> None:
    assert protocol.decode_payload(protocol.JoinRequest, {"board_id": BOARD}).board_id == BOARD
    for bad in ({"board_id": "x"}, {"board_id": BOARD, "more": 1}, {}, "text", None, [BOARD]):
        with pytest.raises(ProtocolError) as refused:
            protocol.decode_payload(protocol.JoinRequest, bad)
        assert refused.value.code is ErrorCode.BAD_REQUEST
    huge = {"board_id": BOARD, "type": "offer", "sdp": "v" * (protocol.MAX_SDP_CHARS + 1)}
    with pytest.raises(ProtocolError) as refused:
        protocol.decode_payload(protocol.OperatorOffer, huge)
    assert refused.value.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":' + b"[" * 4000,  # nested past msgspec's limit (RecursionError)
        b'{"pad":' + b"[" * 4000,  # skipped while looking for the tag
        b'{"type":"tx_stopp\xc0ed"}',  # invalid UTF-8 inside a string (UnicodeDecodeError)
        '{"type":"ptt","state":true}\ud800',  # text with a lone surrogate (UnicodeEncodeError)
    ],
    ids=["nested-tag", "nested-field", "bad-utf8", "surrogate-text"],
)
def test_undecodable_messages_are_bad_requests(raw: bytes | str) -> None:
    """Found by `radiocore bench fuzz`: each raised past the decoders (a binary data-channel
    message reaches them as bytes), and `message_type`, which the room calls on a refusal."""
    decoders = (
        protocol.decode_operator_message,
        protocol.decode_station_message,
        protocol.decode_server_message,
    )
    for decode in decoders:
        with pytest.raises(ProtocolError) as refused:
            decode(raw)
        assert refused.value.code is ErrorCode.BAD_REQUEST
        assert refused.value.message.startswith("malformed JSON")
    assert protocol.message_type(raw) is None


@pytest.mark.parametrize(
    ("payload_type", "value"),
    [
        (protocol.AgentHello, {"ptt_released_at": "\ud800"}),
        (protocol.ErrorBody, {"code": "x\udfff", "message": "m"}),
        (protocol.OperatorAuth, {"token": "a\ud800b"}),
    ],
)
def test_a_payload_string_that_is_not_unicode_is_a_bad_request(
    payload_type: type[object], value: dict[str, object]
) -> None:
    """python-socketio reads JSON's `"\\ud800"` escape as a lone surrogate; msgspec raised
    UnicodeEncodeError on one (found by `radiocore bench fuzz`)."""
    try:
        decoded = protocol.decode_payload(payload_type, value)
    except ProtocolError as refused:
        assert refused.code is ErrorCode.BAD_REQUEST
    else:  # a plain `str` field may hold it: the value is what was sent
        assert protocol.to_builtins(decoded) == value  # type: ignore[arg-type]


def test_acks_have_one_shape() -> None:
    assert protocol.ok() == {"ok": True}
    assert protocol.ok(protocol.Answer(type="answer", sdp="v=0")) == {
        "ok": True,
        "type": "answer",
        "sdp": "v=0",
    }
    assert protocol.failure(ErrorCode.FLOOR_BUSY, "DL1ABC is transmitting") == {
        "ok": False,
        "error": {"code": "floor_busy", "message": "DL1ABC is transmitting"},
    }


def test_the_package_exports_every_public_name_of_its_modules() -> None:
    """`import radiocore_protocol as protocol` is how everyone uses it: nothing may be missing."""
    import ast
    import inspect

    import radiocore_protocol
    from radiocore_protocol import constants, errors, messages

    defined: set[str] = set()
    for module in (constants, errors, messages):
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    public = {name for name in defined if not name.startswith("_") and name != "T"}
    assert len(public) > 60
    assert public == set(radiocore_protocol.__all__), public ^ set(radiocore_protocol.__all__)
