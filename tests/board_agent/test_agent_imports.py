"""The board agent imports nothing of the server: of the project only `signaling.protocol`."""

from __future__ import annotations

import ast
from pathlib import Path

import board_agent

FORBIDDEN_TOP_LEVEL = {
    "media",
    "turn",
    "web",
    "jwt",
    "aiosqlite",
    "asyncpg",
    "redis",
    "psutil",
    "aiohttp",
    "numpy",  # not needed on the Pi at run time
}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_board_agent_imports_only_the_wire_protocol_of_the_project() -> None:
    package = Path(board_agent.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) >= 8
    offences = []
    for path in files:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top == "signaling" and name != "signaling.protocol":
                offences.append(f"{path.name}: {name}")
            if top in FORBIDDEN_TOP_LEVEL:
                offences.append(f"{path.name}: {name}")
    assert offences == []
