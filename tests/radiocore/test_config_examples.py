"""The example configuration files in deploy/ document every key, with its default, and load
through the real loaders; server and agent apply one dead-man rule."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from board_agent.config import AgentConfig
from board_agent.errors import ConfigError as AgentConfigError
from radiocore.configlayers import ConfigKey, config_keys
from signaling.config import ServerConfig, load_server_config
from signaling.errors import ConfigError as ServerConfigError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVER_EXAMPLE = DEPLOY / "server.example.toml"
AGENT_EXAMPLE = DEPLOY / "agent.example.toml"

SERVER_SECRET = "Qx7-vR2pLk9_mZ4tWb8nYc3sHd6fJg1aEe5uTo0iPy"
BOARD = "12345678-1234-4234-8234-123456789abc"
AGENT_ENV = {"RADIOCORE_AGENT_BOARD_ID": BOARD, "RADIOCORE_AGENT_SECRET": "s3cret-s3cret-s3cret"}

_SECTION = re.compile(r"^\[([a-z_.]+)\]\s*$")
_KEY_LINE = re.compile(r"^(#\s?)?([a-z_]+) = \S")


def documented(text: str) -> dict[str, bool]:
    """Every `key = …` line of `text` → whether it is commented out, by dotted key."""
    keys: dict[str, bool] = {}
    section = ""
    for line in text.splitlines():
        if header := _SECTION.match(line):
            section = header.group(1) + "."
        elif match := _KEY_LINE.match(line):
            keys.setdefault(section + match.group(2), match.group(1) is not None)
    return keys


def _value_at(data: dict[str, object], key: ConfigKey) -> object:
    node: object = data
    for name in key.path:
        assert isinstance(node, dict)
        node = node[name]
    return node


@pytest.mark.parametrize(
    ("path", "config_cls"), [(SERVER_EXAMPLE, ServerConfig), (AGENT_EXAMPLE, AgentConfig)]
)
def test_every_key_is_in_the_example_with_its_default_and_meaning(
    path: Path, config_cls: type
) -> None:
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    lines = documented(text)
    for key in config_keys(config_cls):
        assert key.help, f"{key.key} declares no help"
        assert key.key in lines, f"{path.name} does not document {key.key!r}"
        commented = lines[key.key]
        if key.secret:
            assert commented, f"{path.name} sets the secret {key.key!r}: it must be commented out"
        elif key.default is None:
            assert commented, f"{key.key!r} is unset by default: show it commented out"
        else:
            assert not commented, f"{path.name} comments out {key.key!r}"
            value = _value_at(data, key)
            expected = key.default
            if isinstance(expected, tuple):
                expected = list(expected)
            elif isinstance(expected, Path):
                expected = str(expected)
            assert value == expected, f"{key.key}: {value!r} is not the default {expected!r}"
    # and nothing that is not a key
    known = {key.key for key in config_keys(config_cls)}
    assert set(lines) <= known, set(lines) - known


def test_the_server_example_loads_to_the_defaults() -> None:
    env = {"RADIOCORE_SECRET": SERVER_SECRET}
    assert load_server_config(SERVER_EXAMPLE, env=env) == load_server_config(env=env)


def test_the_agent_example_loads_to_the_defaults() -> None:
    assert AgentConfig.load(AGENT_EXAMPLE, env=AGENT_ENV) == AgentConfig.load(env=AGENT_ENV)


def test_the_placeholder_secret_in_the_server_example_is_refused(tmp_path: Path) -> None:
    text = SERVER_EXAMPLE.read_text(encoding="utf-8")
    top_level = text.split("\n[", 1)[0]  # the JWT secret, not [turn]'s
    (line,) = [line for line in top_level.splitlines() if line.startswith("# secret = ")]
    uncommented = tmp_path / "server.toml"
    uncommented.write_text(line.removeprefix("# ") + "\n" + text, encoding="utf-8")
    with pytest.raises(ServerConfigError, match="placeholder"):
        load_server_config(uncommented, env={})


@pytest.mark.parametrize("deadman_s", [0.25, 0.3, 60.5])
def test_both_sides_refuse_the_same_deadman_in_the_same_words(deadman_s: float) -> None:
    with pytest.raises(ServerConfigError) as server:
        load_server_config(
            env={"RADIOCORE_SECRET": SERVER_SECRET}, overrides={"floor.deadman_s": deadman_s}
        )
    with pytest.raises(AgentConfigError) as agent:
        AgentConfig.load(env=AGENT_ENV, overrides={"deadman_s": deadman_s})
    assert server.value.message == "floor." + str(agent.value)
    assert str(agent.value).startswith("deadman_s must be 0.5 … 60 s (at least 2 keep-alive")


def test_both_sides_accept_two_keepalive_intervals() -> None:
    server = load_server_config(
        env={"RADIOCORE_SECRET": SERVER_SECRET}, overrides={"floor.deadman_s": 0.5}
    )
    agent = AgentConfig.load(env=AGENT_ENV, overrides={"deadman_s": 0.5})
    assert server.floor.deadman_s == agent.deadman_s == 0.5
