"""The protocol's constants as a JavaScript module, for the browser console.

`web/src/protocol.js` is generated (`python -m radiocore_protocol.javascript >
web/src/protocol.js`) and committed, since the console is bundled without Python;
`tests/protocol/test_contract.py` fails when the committed file is not exactly what this module
renders.
"""

from __future__ import annotations

import json
import sys
import typing

from radiocore_protocol import constants
from radiocore_protocol.errors import ErrorCode
from radiocore_protocol.messages import (
    OPERATOR_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    STATION_MESSAGE_TYPES,
    TxEndReason,
)

GENERATED_PATH = "web/src/protocol.js"

_HEADER = """\
// The wire protocol's constants, generated from radiocore_protocol (Python); do not edit.
// Regenerate: python -m radiocore_protocol.javascript > web/src/protocol.js
"""


def _js(value: object) -> str:
    if isinstance(value, (list, tuple, frozenset)):
        items = sorted(value) if isinstance(value, frozenset) else list(value)
        return f"Object.freeze({json.dumps(items)})"
    if isinstance(value, dict):
        return f"Object.freeze({json.dumps(value)})"
    return json.dumps(value)


def render() -> str:
    """The whole JavaScript module, as text."""
    values: dict[str, object] = {
        "OPERATOR_NAMESPACE": constants.OPERATOR_NAMESPACE,
        "CONTROL_CHANNEL_LABEL": constants.CONTROL_CHANNEL_LABEL,
        "KEEPALIVE_INTERVAL_MS": round(constants.KEEPALIVE_INTERVAL_S * 1000),
        "MIN_DEADMAN_MS": round(constants.MIN_DEADMAN_S * 1000),
        "MIN_FREQUENCY_HZ": constants.MIN_FREQUENCY_HZ,
        "MAX_FREQUENCY_HZ": constants.MAX_FREQUENCY_HZ,
        "MAX_DATA_MESSAGE_BYTES": constants.MAX_DATA_MESSAGE_BYTES,
        "MAX_MESSAGES_PER_SECOND": constants.MAX_MESSAGES_PER_SECOND,
        "RIG_MODES": constants.RIG_MODES,
        "ERROR_CODES": {code.name: code.value for code in ErrorCode},
        "TX_END_REASONS": typing.get_args(TxEndReason),
        "OPERATOR_MESSAGE_TYPES": OPERATOR_MESSAGE_TYPES,
        "STATION_MESSAGE_TYPES": STATION_MESSAGE_TYPES,
        "SERVER_MESSAGE_TYPES": SERVER_MESSAGE_TYPES,
    }
    lines = [_HEADER]
    lines += [f"export const {name} = {_js(value)};" for name, value in values.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
