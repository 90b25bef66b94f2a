"""Who may import whom (imports flow one way: the rules below), checked on the source by `ast`.

Every `.py` file of the Python packages is parsed; every `import`/`from … import` (relative ones
resolved to absolute names, those inside functions and under `TYPE_CHECKING` included) and every
`importlib.import_module("…")` / `__import__("…")` with a literal name is checked against the
rule of the module that contains it. The walk does not depend on which files exist.

The rules, most specific first (imports flow one way: protocol ← media ← signaling; the agent
and the server meet only in the protocol and the config loader):

- `radiocore_protocol`: the standard library, msgspec and itself; nothing else of the project.
  The browser, the agent and the server share it; the agent imports it on a Raspberry Pi.
- `radiocore` (its `__init__`), `radiocore.configlayers` and `radiocore.logs`: the standard
  library only (the agent loads its config and sets up its logs with them);
  `radiocore.aiortc_hooks`: aiortc/aioice only (every touch of their private state, shared by
  the SFU and the agent), and `radiocore.udp_mux` (the shared UDP port: aioice's public names
  only); `radiocore.small_waiters`: the standard library only. `radiocore.cli` and
  `radiocore.demo` start every process, so they are free (and import lazily).
- `turn`: the standard library only; `turn.probe` (the TURN allocation check) also aioice's
  public TURN client.
- `media`: the standard library, itself, aiortc/aioice/av/pylibsrtp, msgspec,
  `radiocore_protocol`, `radiocore.aiortc_hooks` and `radiocore.udp_mux`; never aiohttp,
  Socket.IO, JWT, databases, Redis, `signaling`, `turn`, `board_agent`, `bench` nor the command
  line.
- `board_agent.ptt_guard` and the modules it runs on (`rigctld_process`, `backoff`, `errors`):
  the standard library and each other only (a small process that must outlive a broken agent).
- `board_agent`: the standard library, itself, `radiocore_protocol`, `radiocore.configlayers`,
  `radiocore.aiortc_hooks`, `radiocore.logs`, `turn.probe` (which TURN transport answers) and
  the agent's own dependencies (aiortc/aioice/av/pylibsrtp, aiohttp, the Socket.IO client,
  msgspec); never `media`, `signaling`, `bench`, the rest of `turn`, nor server libraries.
- `signaling`: anything but `board_agent`, `bench` and the command line (`radiocore` beyond
  `configlayers`): the server is a library the command line starts.
- `web`: the standard library only (it is static assets).
- `bench` is free: it drives servers and agents from outside.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "radiocore_protocol",
    "radiocore",
    "signaling",
    "media",
    "turn",
    "board_agent",
    "web",
    "bench",
)

# Third-party import names each side installs (setup.cfg `agent`/`server` extras). numpy is a
# test-only dependency, so no package may import it.
MEDIA_LIBRARIES = ("aiortc", "aioice", "av", "pylibsrtp")
AGENT_LIBRARIES = (*MEDIA_LIBRARIES, "aiohttp", "socketio", "engineio", "msgspec")


@dataclass(frozen=True)
class ImportRule:
    """What the modules named `scope` (and its submodules) may import."""

    scope: str
    allowed: tuple[str, ...]
    stdlib: bool
    why: str
    #: When set, the scope may import anything but these (and `allowed` is not consulted).
    denied: tuple[str, ...] = ()

    #: The rule covers the module `scope` only, not its submodules.
    exact: bool = False

    def covers(self, module: str) -> bool:
        return module == self.scope if self.exact else _within(module, self.scope)

    def permits(self, imported: str) -> bool:
        if self.denied:
            return not any(_within(imported, prefix) for prefix in self.denied)
        if self.stdlib and imported.partition(".")[0] in sys.stdlib_module_names:
            return True
        return any(_within(imported, prefix) for prefix in self.allowed)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    imported: str
    rule: ImportRule

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.module} imports {self.imported} "
            f"(forbidden in {self.rule.scope}: {self.rule.why})"
        )


@dataclass(frozen=True)
class ImportSite:
    line: int
    imported: str


PROJECT = ("radiocore_protocol", "radiocore", "signaling", "media", "turn", "board_agent", "bench")
SERVER_LIBRARIES = ("jwt", "aiosqlite", "asyncpg", "redis", "psutil", "segno")


#: The PTT guard process and what it runs on: it must start fast and small on a Pi, and outlive
#: a broken agent, so it stays on the standard library (no aiortc, av, socketio, msgspec).
GUARD_MODULES = (
    "board_agent.ptt_guard",
    "board_agent.rigctld_process",
    "board_agent.backoff",
    "board_agent.errors",
)

# Most specific first: the first rule that covers a module applies.
RULES: tuple[ImportRule, ...] = (
    *(
        ImportRule(
            module,
            allowed=GUARD_MODULES,
            stdlib=True,
            why="the PTT guard (and what it imports) uses only the standard library",
        )
        for module in GUARD_MODULES
    ),
    ImportRule(
        "radiocore_protocol",
        allowed=("radiocore_protocol", "msgspec"),
        stdlib=True,
        why="the wire protocol imports only the standard library and msgspec",
    ),
    ImportRule(
        "radiocore.configlayers",
        allowed=("radiocore.configlayers",),
        stdlib=True,
        why="config layering imports only the standard library (the agent uses it)",
    ),
    ImportRule(
        "radiocore.aiortc_hooks",
        allowed=("radiocore.aiortc_hooks", "radiocore.udp_mux", *MEDIA_LIBRARIES),
        stdlib=True,
        why="the aiortc hooks import only aiortc/aioice (the SFU and the agent share them)",
    ),
    ImportRule(
        "radiocore.udp_mux",
        allowed=("radiocore.udp_mux", "aioice"),
        stdlib=True,
        why="the shared UDP port uses aioice's public names and nothing else",
    ),
    ImportRule(
        "radiocore.small_waiters",
        allowed=("radiocore.small_waiters",),
        stdlib=True,
        why="the small asyncio waiters touch only the standard library",
    ),
    ImportRule(
        "radiocore.logs",
        allowed=(),
        stdlib=True,
        why="logging set-up imports only the standard library (the agent uses it)",
    ),
    ImportRule(
        "radiocore",
        allowed=(),
        stdlib=True,
        exact=True,
        why="radiocore/__init__.py runs whenever the agent imports radiocore.configlayers; "
        "it may reach no further than the agent may",
    ),
    ImportRule(
        "turn.probe",
        allowed=("turn", "aioice"),
        stdlib=True,
        why="the TURN allocation check uses aioice's public TURN client and nothing else",
    ),
    ImportRule(
        "turn",
        allowed=("turn",),
        stdlib=True,
        why="turn uses the standard library only",
    ),
    ImportRule(
        "media",
        allowed=(
            "media",
            "radiocore_protocol",
            "radiocore.aiortc_hooks",
            "radiocore.udp_mux",
            "msgspec",
            *MEDIA_LIBRARIES,
        ),
        stdlib=True,
        why="media may use aiortc/aioice/av/pylibsrtp, msgspec and radiocore_protocol; "
        "never HTTP, Socket.IO, JWT, databases, Redis, signaling, turn or board_agent",
    ),
    ImportRule(
        "board_agent",
        allowed=(
            "board_agent",
            "radiocore_protocol",
            "radiocore.configlayers",
            "radiocore.aiortc_hooks",
            "radiocore.logs",
            "turn.probe",
            *AGENT_LIBRARIES,
        ),
        stdlib=True,
        why="the agent never imports the server (media, signaling, bench; of turn only the "
        "allocation check) nor server libraries (jwt, aiosqlite, asyncpg, redis, psutil)",
    ),
    ImportRule(
        "web",
        allowed=("web",),
        stdlib=True,
        why="web holds static assets",
    ),
    ImportRule(
        "signaling",
        allowed=(),
        stdlib=True,
        why="the server never imports the agent, the benchmarks or the command line that starts it",
        denied=("board_agent", "bench", "radiocore.cli", "radiocore.demo", "radiocore.__main__"),
    ),
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_for(module: str) -> ImportRule | None:
    for rule in RULES:
        if rule.covers(module):
            return rule
    return None


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted name of a source file and whether it is a package `__init__`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str | None:
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _literal_import_call(node: ast.Call) -> str | None:
    func = node.func
    is_import_module = (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and func.value.id == "importlib"
    ) or (isinstance(func, ast.Name) and func.id in {"import_module", "__import__"})
    if not is_import_module or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        if first.value.startswith("."):
            return None
        return first.value
    return None


def imports_of(
    source: str, module: str, is_package: bool, filename: str = "<source>"
) -> list[ImportSite]:
    """Every module `source` imports, as absolute dotted names.

    `from X import a` yields `X.a`: `a` may be a submodule (`from signaling import protocol`),
    and when it is an attribute the name still lies within `X`, which is what the rules test.
    A relative import that climbs above the top-level package keeps its dots (`..signaling`),
    which no rule permits.
    """
    tree = ast.parse(source, filename=filename)
    sites: list[ImportSite] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sites.extend(ImportSite(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
                if base is None:
                    # Above the top-level package: keep the dots so the report shows the source.
                    base = "." * node.level + (node.module or "")
            else:
                base = node.module or ""
            for alias in node.names:
                if alias.name == "*":
                    name = base
                elif base.endswith("."):
                    name = base + alias.name
                else:
                    name = f"{base}.{alias.name}"
                sites.append(ImportSite(node.lineno, name))
        elif isinstance(node, ast.Call):
            literal = _literal_import_call(node)
            if literal is not None:
                sites.append(ImportSite(node.lineno, literal))
    return sorted(sites, key=lambda site: (site.line, site.imported))


def check_source(
    source: str, module: str, is_package: bool = False, path: str = "<source>"
) -> list[Violation]:
    rule = rule_for(module)
    if rule is None:
        return []
    return [
        Violation(path, site.line, module, site.imported, rule)
        for site in imports_of(source, module, is_package, filename=path)
        if not rule.permits(site.imported)
    ]


def package_files(package: str) -> list[Path]:
    return sorted(
        path for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_package_follows_import_rules(package: str) -> None:
    files = package_files(package)
    assert files, f"no Python files under {ROOT / package}: is the package missing?"
    violations: list[str] = []
    for path in files:
        module, is_package = module_name(path, ROOT)
        relative = str(path.relative_to(ROOT))
        try:
            source = path.read_text(encoding="utf-8")
            violations.extend(
                str(v) for v in check_source(source, module, is_package, path=relative)
            )
        except SyntaxError as error:
            violations.append(f"{relative}:{error.lineno}: cannot parse: {error.msg}")
    assert not violations, "forbidden imports:\n" + "\n".join(violations)


def _found(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    return [(v.line, v.imported) for v in check_source(source, module, is_package)]


def test_checker_catches_forbidden_imports() -> None:
    media_source = """\
from __future__ import annotations
import asyncio, aiohttp
from aiortc import RTCPeerConnection
from radiocore_protocol import Status
from . import listener
from .. import signaling
import numpy

def later() -> None:
    from signaling import rooms
    import socketio.exceptions
    from turn import credentials
"""
    assert _found(media_source, "media.forwarder") == [
        (2, "aiohttp"),
        (6, "..signaling"),
        (7, "numpy"),
        (10, "signaling.rooms"),
        (11, "socketio.exceptions"),
        (12, "turn.credentials"),
    ]

    agent_source = """\
import importlib
import radiocore_protocol as protocol
from radiocore.configlayers import load_layered
import socketio, av, msgspec
import jwt
from media.forwarder import Forwarder
from ..turn import credentials
from .rig import RigClient
importlib.import_module("redis.asyncio")
__import__("psutil")
from signaling import protocol
from radiocore.cli import main
import bench.tools
"""
    assert _found(agent_source, "board_agent.sub.agent") == [
        (5, "jwt"),
        (6, "media.forwarder.Forwarder"),
        (9, "redis.asyncio"),
        (10, "psutil"),
        (11, "signaling.protocol"),
        (12, "radiocore.cli.main"),
        (13, "bench.tools"),
    ]


def test_the_server_never_imports_the_agent_benchmarks_or_command_line() -> None:
    source = """\
import aiohttp, jwt, media.sfu, turn, radiocore_protocol
from radiocore.configlayers import load_layered
from board_agent.station import StationDriver
from bench.tools import free_port
from radiocore.cli import main
"""
    assert _found(source, "signaling.app") == [
        (3, "board_agent.station.StationDriver"),
        (4, "bench.tools.free_port"),
        (5, "radiocore.cli.main"),
    ]


def test_relative_imports_resolve_to_absolute_names() -> None:
    def names(source: str, module: str, is_package: bool = False) -> list[str]:
        return [site.imported for site in imports_of(source, module, is_package)]

    assert names("from . import rig\n", "board_agent.agent") == ["board_agent.rig"]
    assert names("from . import rig\n", "board_agent", is_package=True) == ["board_agent.rig"]
    assert names("from .rig import RigClient\n", "board_agent.sub.agent") == [
        "board_agent.sub.rig.RigClient"
    ]
    assert names("from ..turn import x\n", "board_agent.sub.agent") == ["board_agent.turn.x"]
    assert names("from .. import turn\n", "board_agent.sub", is_package=True) == [
        "board_agent.turn"
    ]
    assert names("from ..signaling import protocol\n", "board_agent.agent") == [
        "..signaling.protocol"
    ]
    assert names("from ... import media\n", "board_agent.sub.agent") == ["...media"]
    assert names("from .protocol import *\n", "signaling", is_package=True) == [
        "signaling.protocol"
    ]


def test_checker_rules_for_turn_protocol_and_configlayers() -> None:
    assert _found("import hmac, base64, time\nimport msgspec\n", "turn.credentials") == [
        (2, "msgspec")
    ]
    assert _found("import aioice.turn\nimport aiortc\n", "turn.probe") == [(2, "aiortc")]
    assert _found("import aioice.turn\n", "turn.coturn_config") == [(1, "aioice.turn")]
    assert _found(
        "import msgspec\nfrom radiocore import configlayers\n", "radiocore_protocol.messages"
    ) == [(2, "radiocore.configlayers")]
    assert _found("import tomllib\nimport msgspec\n", "radiocore.configlayers") == [(2, "msgspec")]
    assert _found("from .cli import main\n", "radiocore", is_package=True) == [
        (1, "radiocore.cli.main")
    ]
    # The command line starts everything: it is free.
    assert _found("import aiohttp, signaling.app, board_agent.cli\n", "radiocore.cli") == []
    # The rest of signaling is free to use media, turn and server libraries.
    assert _found("import aiohttp, media.forwarder, turn, jwt\n", "signaling.app") == []


def test_the_ptt_guard_stays_on_the_standard_library() -> None:
    source = "import asyncio, socket\nfrom .rigctld_process import RigctldProcess\nimport msgspec\n"
    assert _found(source, "board_agent.ptt_guard") == [(3, "msgspec")]
    assert _found("from .station import StationDriver\n", "board_agent.rigctld_process") == [
        (1, "board_agent.station.StationDriver")
    ]


def test_server_libraries_stay_out_of_the_agent_and_media() -> None:
    # the QR codes of pairing stickers (segno) are drawn by the server, never on a station
    for library in SERVER_LIBRARIES:
        assert _found(f"import {library}\n", "board_agent.agent") == [(1, library)]
        assert _found(f"import {library}\n", "media.sfu") == [(1, library)]
    assert _found("import segno, redis.asyncio\n", "signaling.qr") == []


def test_module_names_of_files() -> None:
    assert module_name(ROOT / "media" / "__init__.py", ROOT) == ("media", True)
    assert module_name(ROOT / "media" / "sfu" / "track.py", ROOT) == ("media.sfu.track", False)
