"""docs/protocol.md, radiocore_protocol, the namespaces and the browser console agree."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import msgspec

import radiocore_protocol as protocol
from radiocore_protocol import javascript
from signaling.namespaces import AgentNamespace, OperatorNamespace

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
# Punctuation and keywords after which a `/` starts a regular expression, not a division.
_REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^") | {
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "instanceof",
    "yield",
    "await",
}


def _skip_template(text: str, start: int) -> tuple[int, list[str] | None]:
    """The index after the template literal opening at `start`, and the string literals in
    its `${…}` substitutions (None when it has none: then it is a plain literal)."""
    i, inner = start + 1, None
    while text[i] != "`":
        if text[i] == "\\":
            i += 2
        elif text.startswith("${", i):
            depth, begin = 1, i + 2
            i = begin
            while depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            inner = (inner or []) + scan_javascript(text[begin : i - 1])[1]
        else:
            i += 1
    return i + 1, inner


def scan_javascript(text: str) -> tuple[str, list[str]]:
    """The code without its comments, and its string literals ("…", '…', `…` without `${}`).

    A lexer just good enough for the console's sources: it knows strings, template literals,
    regular expression literals (which may hold quotes) and comments (which may hold anything).
    """
    code: list[str] = []
    strings: list[str] = []
    last = ""  # the last token: a regular expression may follow some
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("/*", i):
            i = text.index("*/", i + 2) + 2
        elif char in "\"'":
            end = i + 1
            while text[end] != char:
                end += 2 if text[end] == "\\" else 1
            strings.append(text[i + 1 : end])
            code.append(text[i : end + 1])
            i, last = end + 1, char
        elif char == "`":
            end, inner = _skip_template(text, i)
            strings += [text[i + 1 : end - 1]] if inner is None else inner
            code.append(text[i:end])
            i, last = end, char
        elif char == "/" and (last == "" or last in _REGEX_AFTER):
            end, in_class = i + 1, False
            while in_class or text[end] != "/":
                in_class = (in_class or text[end] == "[") and text[end] != "]"
                end += 2 if text[end] == "\\" else 1
            end += 1
            while end < len(text) and text[end].isalpha():
                end += 1
            code.append(text[i:end])
            i, last = end, "/regex/"
        elif char.isalnum() or char in "_$":
            word = re.match(r"[\w$]+", text[i:])
            assert word is not None
            code.append(word.group())
            i, last = i + len(word.group()), word.group()
        else:
            code.append(char)
            i += 1
            if not char.isspace():
                last = char
    return "".join(code), strings


# Every module of the browser console (web/src/*.js, the generated protocol.js included).
CONSOLE_MODULES = {
    path.name: path.read_text() for path in sorted((ROOT / "web" / "src").glob("*.js"))
}
# Their code without comments: what they do, not what they say.
CONSOLE = "\n".join(scan_javascript(text)[0] for text in CONSOLE_MODULES.values())


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
    assert "console.js" in CONSOLE_MODULES and len(CONSOLE_MODULES) > 2, sorted(CONSOLE_MODULES)
    operator = events("## Socket.IO namespace `/operator`")
    client_events = {e for e, d in operator.items() if d.startswith("operator")}
    server_events = {e for e, d in operator.items() if d.startswith("server")}

    # Client -> server events go through `request("<event>", …)` (which waits for the ack);
    # nothing emits a named event past it.
    requested = set(re.findall(r'\brequest\(\s*"(\w+)"', CONSOLE))
    assert requested, "the console requests nothing?"
    assert requested <= client_events, requested - client_events
    bypassing = re.findall(r'\.emit(?:WithAck)?\(\s*["\'`]', CONSOLE)
    assert bypassing == [], "an event emitted with a literal name, past request()"

    handled = set(re.findall(r'\.on\(\s*"(\w+)"', CONSOLE)) - {
        "connect",
        "connect_error",
        "disconnect",
    }
    assert handled == server_events, (
        f"undocumented: {handled - server_events}, not handled: {server_events - handled}"
    )

    # Data-channel messages: each received type has its `case "<type>":` (the console's only
    # string cases), and operator messages are sent as `send({ type: "<type>", … })`.
    received = set(data_channel_types("### station → operators")) | set(
        data_channel_types("### server → operator")
    )
    cases = set(re.findall(r'\bcase "(\w+)":', CONSOLE))
    assert cases == received, f"unknown: {cases - received}, not handled: {received - cases}"
    sent = set(re.findall(r'\b_?send\(\s*\{\s*type:\s*"(\w+)"', CONSOLE))
    operator_types = set(data_channel_types("### operator → station"))
    assert sent == operator_types, (
        f"unknown: {sent - operator_types}, unsent: {operator_types - sent}"
    )


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


def _generated_constants(text: str) -> dict[str, typing.Any]:
    """The constants of the generated protocol.js: `export const NAME = <JSON>;`, a list or
    an object wrapped in `Object.freeze(…)`."""
    constants: dict[str, typing.Any] = {}
    for name, value in re.findall(r"^export const (\w+) = (.*);$", text, flags=re.MULTILINE):
        frozen = re.fullmatch(r"Object\.freeze\((.*)\)", value)
        constants[name] = json.loads(frozen.group(1) if frozen else value)
    return constants


def _number_literals(text: str) -> set[float]:
    """Every decimal number in the code (14_205_000, 4096, 3e11, 0.5; in strings too), by value."""
    tokens = re.findall(r"(?<![\w.$])(\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)(?![\w.])", text)
    return {float(token.replace("_", "")) for token in tokens}


# Constants whose values (strings) would be copies if a console module spelled them out.
COPYABLE_STRINGS = ("OPERATOR_NAMESPACE", "CONTROL_CHANNEL_LABEL", "RIG_MODES", "ERROR_CODES")
# Numbers above this are copies when spelled out; smaller ones (1, 250, 500, 1000: a second in
# ms, a countdown's tick) are everyday values, checked by name only.
COPYABLE_NUMBERS_ABOVE = 1000


def test_the_console_keeps_no_copy_of_a_protocol_constant() -> None:
    """Every protocol constant the console needs comes from the generated module: no module
    defines one of its names or spells out one of its values (exact literals, not substrings)."""
    sources = dict(CONSOLE_MODULES)
    generated = sources.pop(Path(javascript.GENERATED_PATH).name)
    constants = _generated_constants(generated)
    assert set(constants) >= {*COPYABLE_STRINGS, "MAX_FREQUENCY_HZ", "KEEPALIVE_INTERVAL_MS"}

    strings: set[str] = set()
    for name in COPYABLE_STRINGS:
        value = constants[name]
        if isinstance(value, str):
            strings.add(value)
        else:
            strings.update(value.values() if isinstance(value, dict) else value)
    numbers = {
        float(value)
        for value in constants.values()
        if isinstance(value, int) and not isinstance(value, bool) and value > COPYABLE_NUMBERS_ABOVE
    }
    assert "/operator" in strings and "USB" in strings and 300_000_000_000 in numbers
    # the scan reads literals, not comments, and knows a regular expression's quotes
    assert scan_javascript('a = /[\\s_\']/g; // "/operator"\nb = `x` + \'y\' + "z";') == (
        "a = /[\\s_']/g; \nb = `x` + 'y' + \"z\";",
        ["x", "y", "z"],
    )
    # and finds the values where they are spelled out: in the generated module itself
    generated_code, generated_strings = scan_javascript(generated)
    assert strings <= set(generated_strings) and numbers <= _number_literals(generated_code)

    assert sources, "no console modules besides protocol.js?"
    for module, text in sources.items():
        code, literals = scan_javascript(text)
        for constant in constants:
            assert not re.search(rf"\b(const|let|var)\s+{constant}\b", code), (
                f"web/src/{module} defines its own {constant}; import it from ./protocol.js"
            )
        copied = sorted(strings & set(literals))
        assert not copied, f"web/src/{module} spells out protocol values {copied}"
        copied_numbers = sorted(numbers & _number_literals(code))
        assert not copied_numbers, f"web/src/{module} spells out protocol numbers {copied_numbers}"


def test_rig_mode_type_and_list_agree() -> None:
    assert typing.get_args(protocol.RigMode) == protocol.RIG_MODES
