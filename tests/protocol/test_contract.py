"""docs/protocol.md, radiocore_protocol, the namespaces and the browser console agree."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

import radiocore_protocol as protocol
from radiocore_protocol import javascript
from signaling.namespaces import AgentNamespace, OperatorNamespace

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
CONSOLE = (ROOT / "web" / "src" / "console.js").read_text()


def section(title: str) -> str:
    start = DOC.index(title)
    following = re.search(r"\n#{2,3} ", DOC[start + len(title) :])
    end = start + len(title) + following.start() if following else len(DOC)
    return DOC[start:end]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def first_code(cell: str) -> str:
    found = re.search(r"`([^`]+)`", cell)
    assert found, f"no `code` in table cell {cell!r}"
    return found.group(1)


def test_error_codes_match() -> None:
    documented = {first_code(row[0]) for row in table_rows(section("Error codes"))}
    assert documented == {code.value for code in protocol.ErrorCode}


def data_channel_types(title: str) -> dict[str, list[str]]:
    return {first_code(row[0]): row for row in table_rows(section(title))}


def check_messages(title: str, types: tuple[type[msgspec.Struct], ...], decode: object) -> None:
    rows = data_channel_types(title)
    by_tag = {t.__struct_config__.tag: t for t in types}
    assert set(rows) == set(by_tag), title
    for tag, row in rows.items():
        for name in by_tag[tag].__struct_fields__:
            assert f"`{name}`" in row[1] or name in row[1], f"{tag}.{name} is not documented"
        example = re.search(r"`(\{.*\})`", row[2])
        assert example, f"{tag} has no example"
        assert isinstance(decode(example.group(1)), by_tag[tag])  # type: ignore[operator]


def test_data_channel_messages_match() -> None:
    check_messages(
        "### operator → station",
        typing.get_args(protocol.OperatorMessage),
        protocol.decode_operator_message,
    )
    check_messages(
        "### station → operators",
        typing.get_args(protocol.StationMessage),
        protocol.decode_station_message,
    )
    check_messages(
        "### server → operator",
        typing.get_args(protocol.ServerMessage),
        protocol.decode_server_message,
    )


def test_documented_modes_are_the_protocol_modes() -> None:
    row = data_channel_types("### operator → station")["mode"]
    assert set(re.findall(r"\b[A-Z]{2,6}\b", row[1])) == set(protocol.RIG_MODES)


def events(title: str) -> dict[str, str]:
    return {first_code(row[0]): row[1] for row in table_rows(section(title))}


def test_socketio_events_match_the_namespaces() -> None:
    agent = events("## Socket.IO namespace `/agent`")
    operator = events("## Socket.IO namespace `/operator`")
    agent_in = {e for e, d in agent.items() if d.startswith("agent")}
    operator_in = {e for e, d in operator.items() if d.startswith("operator")}
    assert agent_in == set(_event_table(AgentNamespace))
    assert operator_in == set(_event_table(OperatorNamespace))
    namespaces_source = (ROOT / "signaling" / "namespaces.py").read_text()
    emitted = set(re.findall(r'self\.emit\(\s*"(\w+)"', namespaces_source))
    documented_out = {e for e, d in {**agent, **operator}.items() if d.startswith("server")}
    assert emitted <= documented_out


def _event_table(namespace: type) -> list[str]:
    """The event names of a namespace's dispatch table (built in __init__), from its source."""
    source = (ROOT / "signaling" / "namespaces.py").read_text()
    body = source[source.index(f"class {namespace.__name__}") :]
    table = body[body.index("self.events = {") : body.index("}", body.index("self.events = {"))]
    return re.findall(r'"(\w+)": \(', table)


def test_the_console_uses_only_documented_events_and_messages() -> None:
    operator = events("## Socket.IO namespace `/operator`")
    requested = set(re.findall(r'request\(\s*"(\w+)"', CONSOLE))
    handled = set(re.findall(r'\.on\(\s*"(\w+)"', CONSOLE)) - {
        "connect",
        "connect_error",
        "disconnect",
    }
    assert requested, "the console requests nothing?"
    assert requested <= {e for e, d in operator.items() if d.startswith("operator")}
    assert handled <= {e for e, d in operator.items() if d.startswith("server")}
    cases = set(re.findall(r'case "(\w+)":', CONSOLE))
    received = set(data_channel_types("### station → operators")) | set(
        data_channel_types("### server → operator")
    )
    assert cases and cases <= received


def test_documented_limits_match() -> None:
    assert f"{protocol.MAX_DATA_MESSAGE_BYTES} bytes" in DOC
    assert f"{protocol.MAX_SDP_CHARS} characters" in DOC
    assert f"{protocol.MAX_CANDIDATE_CHARS} characters" in DOC
    assert f"labelled `{protocol.CONTROL_CHANNEL_LABEL}`" in DOC


def test_the_consoles_protocol_constants_are_generated_from_the_protocol() -> None:
    committed = (ROOT / javascript.GENERATED_PATH).read_text()
    assert committed == javascript.render(), (
        f"{javascript.GENERATED_PATH} is stale: run "
        f"python -m radiocore_protocol.javascript > {javascript.GENERATED_PATH}"
    )


def test_the_console_keeps_no_copy_of_a_protocol_constant() -> None:
    """Every protocol constant the console needs comes from the generated module."""
    sources = {p.name: p.read_text() for p in (ROOT / "web" / "src").glob("*.js")}
    generated = sources.pop("protocol.js")
    names = re.findall(r"export const (\w+) =", generated)
    for name, text in sources.items():
        for constant in names:
            assert not re.search(rf"\b(const|let|var)\s+{constant}\b", text), (
                f"web/src/{name} defines its own {constant}; import it from ./protocol.js"
            )
    # and the literal values that used to be copied
    for name, text in sources.items():
        assert '"/operator"' not in text, f"web/src/{name} spells the namespace out"
        assert "300_000_000_000" not in text and "300000000000" not in text, name


def test_rig_mode_type_and_list_agree() -> None:
    assert typing.get_args(protocol.RigMode) == protocol.RIG_MODES
