"""The `radiocore` command as an administrator uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def radiocore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADIOCORE_")}
    return subprocess.run(
        [sys.executable, "-m", "radiocore", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


SECRET = "Qx7-vR2pLk9_mZ4tWb8nYc3sHd6fJg1aEe5uTo0iPy"
DB_PASSWORD = "db-Pa55word-xyz"
BOARD = "12345678-1234-4234-8234-123456789abc"
BOARD_SECRET = "board-s3cret-board-s3cret"


@pytest.mark.parametrize(
    "command", ["serve", "agent", "demo", "user", "board", "config", "config show", "bench"]
)
def test_every_subcommand_has_help(command: str) -> None:
    result = radiocore(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_server_flags_keep_their_published_spellings(tmp_path: Path) -> None:
    # README, deploy/*.service, tests/e2e and bench use these
    result = radiocore(
        "config", "show", "--config", str(tmp_path / "none.toml"), "--host", "0.0.0.0",
        env={"RADIOCORE_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = radiocore(
        "config", "show", "--host", "0.0.0.0", "--port", "9000", "--data-dir", str(tmp_path),
        "--ice-host-address", "10.0.0.1", "--ice-host-address", "10.0.0.2",
        "--log-level", "debug", "--floor-deadman-s", "0.5",
        env={"RADIOCORE_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    assert (shown["host"], shown["port"], shown["data_dir"]) == ("0.0.0.0", 9000, str(tmp_path))
    assert shown["ice"]["host_addresses"] == ["10.0.0.1", "10.0.0.2"]
    assert shown["log_level"] == "DEBUG" and shown["floor"]["deadman_s"] == 0.5


def test_config_show_prints_what_serve_would_run_with_and_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("port = 9000\n[limits]\nmax_early_candidates = 16\n", encoding="utf-8")
    env = {
        "RADIOCORE_SECRET": SECRET,
        "RADIOCORE_DATABASE_URL": f"postgresql://radiocore:{DB_PASSWORD}@db.example.org/rc",
        "RADIOCORE_FLOOR__TX_TIMEOUT_S": "120",
    }
    result = radiocore("config", "show", "--config", str(config), "--port", "9001", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert SECRET not in out + result.stderr and DB_PASSWORD not in out + result.stderr
    assert "port = 9001  # command line" in out
    assert f"max_early_candidates = 16  # config file {config}" in out
    assert "tx_timeout_s = 120.0  # environment variable RADIOCORE_FLOOR__TX_TIMEOUT_S" in out
    assert '# secret = "<redacted>"' in out
    assert "postgresql://radiocore:***@db.example.org/rc" in out
    # the loader takes it back (secrets from the environment, as before)
    shown = tmp_path / "shown.toml"
    shown.write_text(out, encoding="utf-8")
    again = radiocore("config", "show", "--config", str(shown), env=env)
    assert again.returncode == 0, again.stderr
    assert tomllib.loads(again.stdout) == tomllib.loads(out)


def test_config_show_refuses_what_serve_refuses() -> None:
    result = radiocore(
        "config", "show", "--floor-deadman-s", "0.25", env={"RADIOCORE_SECRET": SECRET}
    )
    assert result.returncode == 2
    assert "floor.deadman_s must be 0.5 … 60 s" in result.stderr


def test_secrets_have_no_flags() -> None:
    for command in (("serve",), ("config", "show"), ("agent",)):
        result = radiocore(*command, "--secret", SECRET)
        assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    result = radiocore("serve", "--database-url", "sqlite:///x")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


@pytest.mark.parametrize("command", [("agent", "--print-config"), ("config", "show", "--agent")])
def test_the_agent_configuration_is_shown_without_its_secret(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    env = {"RADIOCORE_AGENT_SECRET": BOARD_SECRET, "RADIOCORE_AGENT_RIG_POLL_HZ": "10"}
    result = radiocore(
        *command, "--board-id", BOARD, "--rig-mode", "USB", "--rig-mode", "CW", env=env
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert BOARD_SECRET not in out + result.stderr
    assert '# secret = "<redacted>"  # secret, from environment variable' in out
    assert "rig_poll_hz = 10.0  # environment variable RADIOCORE_AGENT_RIG_POLL_HZ" in out
    shown = tmp_path / "agent.toml"
    shown.write_text(out, encoding="utf-8")
    assert tomllib.loads(out)["rig_modes"] == ["USB", "CW"]
    again = radiocore("agent", "--print-config", "--config", str(shown), env=env)
    assert again.returncode == 0, again.stderr
    assert tomllib.loads(again.stdout) == tomllib.loads(out)


def test_serve_refuses_to_start_without_a_real_secret(tmp_path: Path) -> None:
    result = radiocore("serve", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "RADIOCORE_SECRET" in result.stderr
    weak = radiocore("serve", "--data-dir", str(tmp_path), env={"RADIOCORE_SECRET": "change-me"})
    assert weak.returncode == 2


def test_serve_rejects_unknown_config_keys(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('secret = "' + "s" * 48 + '"\nprot = 8080\n')
    result = radiocore("serve", "--config", str(config))
    assert result.returncode == 2
    assert "prot" in result.stderr


def test_accounts_and_boards_are_created_and_secrets_printed_once(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    added = radiocore(
        "user", "add", *data, "--email", "Op@Example.org", "--callsign", "DL1ABC",
        env={"RADIOCORE_PASSWORD": "a-good-password"},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["email"] == "op@example.org"
    short = radiocore(
        "user", "add", *data, "--email", "x@example.org", "--callsign", "DL2X",
        env={"RADIOCORE_PASSWORD": "short"},
    )  # fmt: skip
    assert short.returncode == 2 and "10 characters" in short.stderr
    board = radiocore("board", "add", *data, "--owner", "op@example.org", "--name", "Home")
    assert board.returncode == 0, board.stderr
    secret = json.loads(board.stdout)["secret"]
    assert len(secret) >= 32
    assert secret not in (tmp_path / "radiocore.sqlite3").read_bytes().decode("latin-1")
    nobody = radiocore("board", "add", *data, "--owner", "nobody@example.org", "--name", "X")
    assert nobody.returncode == 2 and "no account" in nobody.stderr


def test_grants_are_given_and_taken_by_the_owner_side_tool(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    for email, call in (("owner@example.org", "DL1OWN"), ("guest@example.org", "DL2GST")):
        made = radiocore(
            "user", "add", *data, "--email", email, "--callsign", call,
            env={"RADIOCORE_PASSWORD": "a-good-password"},
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    board = radiocore("board", "add", *data, "--owner", "owner@example.org", "--name", "Home")
    board_id = json.loads(board.stdout)["board_id"]
    grant = radiocore(
        "board", "grant", *data, "--board", board_id, "--email", "guest@example.org",
        "--right", "transmit",
    )  # fmt: skip
    assert grant.returncode == 0, grant.stderr
    assert json.loads(grant.stdout)["right"] == "transmit"
    to_owner = radiocore(
        "board", "grant", *data, "--board", board_id, "--email", "owner@example.org",
        "--right", "listen",
    )  # fmt: skip
    assert to_owner.returncode == 2 and "owner" in to_owner.stderr
    bad = radiocore(
        "board", "grant", *data, "--board", board_id, "--email", "guest@example.org",
        "--right", "own",
    )  # fmt: skip
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
