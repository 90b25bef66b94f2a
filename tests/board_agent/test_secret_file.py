"""The agent's `secret_file`: a file holding only the board secret, private to the agent's user,
read again before every connection attempt (so a rotated secret written there is used without a
restart); what is wrong with it is said plainly, never showing what it holds."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from board_agent.cli import main
from board_agent.config import AgentConfig, read_secret_file
from board_agent.connection_loss import ConnectionLoss
from board_agent.errors import ConfigError, SessionError
from board_agent.server_link import ServerLink
from radiocore.cli import write_secret_file

BOARD = "12345678-1234-4234-8234-123456789abc"
SECRET = "s3cret-s3cret-s3cret"
ROTATED = "r0tated-r0tated-r0tated"


def secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "board.secret"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_the_file_is_read_again_on_every_call(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET + "\n")
    config = AgentConfig.load(
        env={"RADIOCORE_AGENT_BOARD_ID": BOARD}, overrides={"secret_file": str(path)}
    )
    assert config.secret == "" and config.secret_file == str(path)
    assert config.board_secret() == SECRET
    assert write_secret_file(path, ROTATED)  # as `radiocore board rotate-secret` writes it
    assert config.board_secret() == ROTATED
    path.write_text(f"  {SECRET}\r\n\n", encoding="utf-8")  # blanks and line breaks around it
    assert config.board_secret() == SECRET
    assert AgentConfig(board_id=BOARD, secret=SECRET).board_secret() == SECRET


def test_secret_file_comes_from_the_file_the_environment_or_a_flag(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET)
    toml = tmp_path / "agent.toml"
    toml.write_text(f'board_id = "{BOARD}"\nsecret_file = "{path}"\n', encoding="utf-8")
    assert AgentConfig.load(toml).board_secret() == SECRET
    env = {"RADIOCORE_AGENT_BOARD_ID": BOARD, "RADIOCORE_AGENT_SECRET_FILE": str(path)}
    assert AgentConfig.load(env=env).board_secret() == SECRET


def test_one_way_to_give_the_secret(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET)
    with pytest.raises(ConfigError, match="secret and secret_file are both set"):
        AgentConfig(board_id=BOARD, secret=SECRET, secret_file=str(path))
    with pytest.raises(ConfigError, match=r"secret is required.*secret_file"):
        AgentConfig(board_id=BOARD)
    with pytest.raises(ConfigError, match="secret must be 16"):
        AgentConfig(board_id=BOARD, secret="short")


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (SECRET, 0o644, r"may be read or changed by other users \(mode 0644\).*chmod 600"),
        (SECRET, 0o640, r"\(mode 0640\)"),
        (SECRET, 0o602, r"\(mode 0602\)"),
        ("", 0o600, "it is empty"),
        ("\n \n", 0o600, "it is empty"),
        ("short", 0o600, "16 … 256 characters"),
        ("x" * 257, 0o600, "it has 257"),
        (f"{SECRET}\n{ROTATED}\n", 0o600, "only the board secret, on one line"),
        (f'{{"board_id": "{BOARD}", "secret": "{SECRET}"}}', 0o600, "only the board secret"),
        ("x" * 5000, 0o600, "only the board secret"),
    ],
)
def test_a_bad_file_is_refused_saying_why_and_never_what_it_holds(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    path = secret_file(tmp_path, text, mode)
    with pytest.raises(ConfigError, match=message) as info:
        read_secret_file(path)
    assert f"secret_file {path}" in str(info.value)
    assert SECRET not in str(info.value) and ROTATED not in str(info.value)


def test_a_missing_unreadable_or_odd_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_secret_file(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret_file(tmp_path)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret_file(Path("/dev/null"))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 10)
    binary.chmod(0o600)
    with pytest.raises(ConfigError, match="not text"):
        read_secret_file(binary)
    if os.geteuid() != 0:  # root reads a mode-000 file all the same
        locked = secret_file(tmp_path, SECRET, 0o000)
        with pytest.raises(ConfigError, match="cannot be read by this user"):
            read_secret_file(locked)
    # a link to a private file is followed (provisioning tools swap links to rotate)
    target = secret_file(tmp_path, SECRET)
    link = tmp_path / "current.secret"
    link.symlink_to(target)
    assert read_secret_file(link) == SECRET


def test_a_bad_file_fails_the_connection_attempt_not_the_agent(tmp_path: Path) -> None:
    """The server link reads the file when it connects: a missing or bad file is a failed
    attempt (the agent retries with its back-off), said before anything goes on the wire."""
    path = tmp_path / "board.secret"
    config = AgentConfig(board_id=BOARD, secret_file=str(path), server_url="http://127.0.0.1:9")

    async def attempt() -> str:
        link = ServerLink(config, ConnectionLoss(), config.server_url)
        try:
            await link.connect()
        except SessionError as exc:
            return str(exc)
        finally:
            await link.close()
        return ""

    assert asyncio.run(attempt()) == (
        f"secret_file {path} does not exist; it is read again before the next attempt"
    )
    secret_file(tmp_path, SECRET, 0o644)
    assert "chmod 600" in asyncio.run(attempt())
    path.chmod(0o600)  # now the file is fine: the attempt goes on to the (absent) server
    assert asyncio.run(attempt()).startswith("cannot connect to http://127.0.0.1:9")


def test_unkey_and_print_config_need_no_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Releasing PTT after a stop must never depend on the secret: the file is not read."""
    monkeypatch.delenv("RADIOCORE_AGENT_SECRET", raising=False)
    missing = str(tmp_path / "not-yet-written.secret")
    assert main(["--unkey", "--board-id", BOARD, "--secret-file", missing]) == 0
    assert main(["--print-config", "--board-id", BOARD, "--secret-file", missing]) == 0
    out = capsys.readouterr().out
    assert f'secret_file = "{missing}"  # command line' in out
    assert "# secret = " in out  # still commented out: no secret shown or set


def test_write_secret_file_replaces_the_file_and_keeps_it_private(tmp_path: Path) -> None:
    path = secret_file(tmp_path, SECRET, 0o640)
    assert write_secret_file(path, ROTATED)
    assert path.read_text(encoding="utf-8") == ROTATED + "\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.secret"]  # no temporary left
    fresh = tmp_path / "new.secret"
    assert write_secret_file(fresh, SECRET)
    assert read_secret_file(fresh) == SECRET
