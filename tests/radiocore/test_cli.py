"""The `radiocore` command as an administrator uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


@pytest.mark.parametrize("command", ["serve", "agent", "demo", "user", "board", "bench"])
def test_every_subcommand_has_help(command: str) -> None:
    result = radiocore(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


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
    assert short.returncode == 2 and "8 characters" in short.stderr
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
