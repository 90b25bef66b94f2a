"""`radiocore turn config` and `radiocore turn run` as an administrator uses them: the file they
write, what they refuse, and coturn started, serving the server's secret and stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.tools import free_port, stop_process
from tests.support.coturn import require_coturn
from tests.turn.generated import wait_listening
from turn.credentials import TurnCredentialIssuer
from turn.probe import probe_all


def radiocore_env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADIOCORE_")}
    return {**clean, **extra}


def radiocore(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radiocore", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def server_toml(path: Path, port: int, log: Path, urls: str = "") -> Path:
    relay_low = min(free_port(), 64000)
    urls = urls or (f'"turn:127.0.0.1:{port}?transport=udp", "turn:127.0.0.1:{port}?transport=tcp"')
    path.write_text(
        "[turn]\n"
        f"urls = [{urls}]\n"
        'listening_ips = ["127.0.0.1"]\n'
        f"relay_min_port = {relay_low}\n"
        f"relay_max_port = {relay_low + 200}\n"
        f'log_file = "{log}"\n'
    )
    return path


def test_turn_config_writes_the_file_mode_0600_without_needing_the_jwt_secret(
    tmp_path: Path,
) -> None:
    turn_secret = secrets.token_urlsafe(32)
    config = server_toml(tmp_path / "server.toml", 3478, tmp_path / "turn.log")
    output = tmp_path / "turnserver.conf"
    result = radiocore(
        "turn", "config", "--config", str(config), "--output", str(output),
        env=radiocore_env(RADIOCORE_TURN__SECRET=turn_secret),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    text = output.read_text()
    assert f"static-auth-secret={turn_secret}\n" in text and "listening-port=3478\n" in text
    assert "mode 0600" in result.stderr and f"turnserver -c {output}" in result.stderr
    assert turn_secret not in result.stderr + result.stdout
    assert "demo mode" not in result.stderr  # the JWT secret plays no part here
    # without --output: the same text on stdout, and a word about the secret in it
    printed = radiocore(
        "turn", "config", "--config", str(config),
        env=radiocore_env(RADIOCORE_TURN__SECRET=turn_secret),
    )  # fmt: skip
    assert printed.returncode == 0 and printed.stdout == text
    assert "contains the TURN secret" in printed.stderr


@pytest.mark.parametrize(
    ("args", "secret", "complaint"),
    [
        ((), "x" * 40, "[turn] urls is empty"),
        (("--turn-url", "turn:127.0.0.1:3478"), "", "at least 32 characters"),
        (("--turn-url", "turn:127.0.0.1:3478"), "short-secret", "at least 32 characters"),
        (
            ("--turn-url", "turns:127.0.0.1:5349?transport=tcp"),
            "Tq7vX2pLr9sWm4nB8cZe1fYh6jKd3gA5uE0iO2tR",  # fixed: the same test id in every process
            "set turn.tls_cert_file and turn.tls_key_file",
        ),
        (("--turn-url", "turn:127.0.0.1:3478", "--turn-relay-min-port", "80"), "x" * 40, "1024"),
    ],
)
@pytest.mark.parametrize("action", ["config", "run"])
def test_turn_commands_refuse_what_coturn_cannot_run_with(
    action: str, args: tuple[str, ...], secret: str, complaint: str
) -> None:
    env = radiocore_env(RADIOCORE_TURN__SECRET=secret) if secret else radiocore_env()
    extra = ("--turnserver", sys.executable) if action == "run" else ()  # never reached
    result = radiocore("turn", action, *extra, *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert complaint in result.stderr and result.stdout == ""
    if secret:
        assert secret not in result.stderr


def test_turn_run_says_when_turnserver_is_missing(tmp_path: Path) -> None:
    result = radiocore(
        "turn", "run", "--turnserver", str(tmp_path / "turnserver"),
        "--turn-url", "turn:127.0.0.1:3478",
        env=radiocore_env(RADIOCORE_TURN__SECRET=secrets.token_urlsafe(32)),
    )  # fmt: skip
    assert result.returncode == 2
    assert "is missing or not executable: install coturn" in result.stderr


def test_turn_run_serves_the_servers_secret_and_stops_on_sigterm(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    log = tmp_path / "turn.log"
    config = server_toml(tmp_path / "server.toml", port, log)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    turn_secret = secrets.token_urlsafe(32)
    env = radiocore_env(RADIOCORE_TURN__SECRET=turn_secret, RUNTIME_DIRECTORY=str(runtime))
    with (tmp_path / "radiocore-turn.out").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "radiocore", "turn", "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_listening(port, process, log)
        # the configuration lives in a private directory while coturn runs
        (private,) = runtime.iterdir()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert stat.S_IMODE((private / "turnserver.conf").stat().st_mode) == 0o600
        # coturn grants allocations to credentials issued with the server's secret
        urls = (f"turn:127.0.0.1:{port}?transport=udp", f"turn:127.0.0.1:{port}?transport=tcp")
        results = asyncio.run(probe_all(urls, TurnCredentialIssuer(turn_secret, 600)))
        assert [r.ok for r in results] == [True, True], results
        wrong = asyncio.run(
            probe_all(urls[:1], TurnCredentialIssuer(secrets.token_urlsafe(32), 600))
        )
        assert not wrong[0].ok and "401" in wrong[0].detail
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0  # a requested stop is a clean one
    finally:
        stop_process(process, timeout_s=5)
    with pytest.raises(ConnectionRefusedError):  # turnserver went with it
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert list(runtime.iterdir()) == []  # and so did its configuration
    said = (tmp_path / "radiocore-turn.out").read_text()
    assert "radiocore: running /usr/bin/turnserver for turn:127.0.0.1" in said
    assert turn_secret not in said
