"""The agent's command line: `board_agent.cli.main(argv)` and `python -m board_agent`."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import sys

import pytest

from board_agent import cli
from board_agent.cli import build_parser, main
from board_agent.config import AgentConfig
from radiocore.configlayers import flag_overrides

BOARD = "12345678-1234-4234-8234-123456789abc"


def test_flags_parse() -> None:
    args = build_parser().parse_args(
        [
            "--config",
            "/etc/radiocore/agent.toml",
            "--server",
            "https://radio.example",
            "--board-id",
            BOARD,
            "--audio-source",
            "alsa:hw:1,0",
            "--audio-sink",
            "raw:/tmp/tx.raw",
            "--ice-host-address",
            "10.0.0.2",
            "--ice-host-address",
            "10.0.0.3",
            "--log-level",
            "debug",
        ]
    )
    assert args.config == "/etc/radiocore/agent.toml"
    assert flag_overrides(args, AgentConfig) == {
        "server_url": "https://radio.example",
        "board_id": BOARD,
        "audio_source": "alsa:hw:1,0",
        "audio_sink": "raw:/tmp/tx.raw",
        "ice_host_addresses": ("10.0.0.2", "10.0.0.3"),
        "log_level": "debug",  # upper-cased by the config
    }


def test_every_key_but_the_secret_has_a_flag_with_help() -> None:
    text = " ".join(build_parser().format_help().split())
    for name in dataclasses.fields(AgentConfig):
        flags = {
            "server_url": "--server",
            "other_server_urls": "--other-server",
            "ice_host_addresses": "--ice-host-address",
            "tx_timeout_s": "--tx-timeout",
            "deadman_s": "--deadman",
            "rig_timeout_s": "--rig-timeout",
            "rig_freq_ranges": "--rig-freq-range",
            "rig_modes": "--rig-mode",
        }
        flag = flags.get(name.name, "--" + name.name.replace("_", "-"))
        if name.name == "secret":
            assert "--secret " not in text and "--secret," not in text
        else:
            assert f"{flag} " in text, flag
    assert "(default: " in text


def test_flags_the_demo_and_benchmarks_use_still_parse() -> None:
    # radiocore/demo.py, bench/control.py, tests/integration: published spellings
    argv = ["--server", "http://127.0.0.1:8080/", "--board-id", BOARD, "--audio-source", "tone"]
    argv += ["--audio-sink", "null", "--ice-host-address", "127.0.0.1", "--log-level", "INFO"]
    argv += ["--rig", "hamlib", "--rig-model", "1", "--rig-ptt-type", "RIG"]
    argv += ["--rigctld-port", "0", "--rigctld-path", "rigctld", "--rigctld-host", "127.0.0.1"]
    overrides = flag_overrides(build_parser().parse_args(argv), AgentConfig)
    config = AgentConfig.load(
        env={"RADIOCORE_AGENT_SECRET": "s3cret-s3cret-s3cret"}, overrides=overrides
    )
    assert (config.rig, config.rigctld_port, config.ice_host_addresses) == (
        "hamlib",
        0,
        ("127.0.0.1",),
    )


def test_print_config_shows_the_effective_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", "s3cret-s3cret-s3cret")
    assert main(["--print-config", "--board-id", BOARD, "--deadman", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert f'board_id = "{BOARD}"  # command line' in out
    assert "deadman_s = 0.5  # command line" in out
    assert (
        '# secret = "<redacted>"  # secret, from environment variable RADIOCORE_AGENT_SECRET' in out
    )


def test_rig_flags_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[AgentConfig] = []

    async def serve(config: AgentConfig) -> None:
        seen.append(config)

    monkeypatch.setattr(cli, "_serve", serve)
    monkeypatch.setenv("RADIOCORE_AGENT_SECRET", "s3cret-s3cret-s3cret")
    argv = ["--board-id", BOARD, "--rig", "hamlib", "--rig-model", "3073"]
    argv += ["--rig-device", "/dev/ttyUSB0", "--rig-speed", "19200", "--rig-ptt-type", "RTS"]
    argv += ["--rigctld-port", "4600", "--rigctld-path", "/usr/bin/rigctld"]
    argv += ["--rig-poll-hz", "10", "--rig-timeout", "0.5", "--deadman", "0.8"]
    argv += ["--tx-timeout", "120", "--rig-freq-range", "7000000-7200000"]
    argv += ["--rig-mode", "USB", "--rig-mode", "LSB"]
    assert main(argv) == 0
    (config,) = seen
    assert (config.rig, config.rig_model, config.rig_device, config.rig_speed) == (
        "hamlib",
        3073,
        "/dev/ttyUSB0",
        19200,
    )
    assert (config.rig_ptt_type, config.rigctld_port, config.rigctld_path) == (
        "RTS",
        4600,
        "/usr/bin/rigctld",
    )
    assert (config.rig_poll_hz, config.rig_timeout_s, config.deadman_s) == (10.0, 0.5, 0.8)
    assert config.tx_timeout_s == 120.0
    assert config.rig_freq_ranges == ("7000000-7200000",)
    assert config.rig_modes == ("USB", "LSB")


def test_a_bad_rig_flag_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--rig", "icom"])
    assert "invalid choice: 'icom'" in capsys.readouterr().err


def test_there_is_no_secret_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--secret", "s3cret-s3cret-s3cret"])
    assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    # nor is it taken for an abbreviation of `--secret-file` (and shown as a file name)
    for spelling in (["--secret=s3cret-s3cret-s3cret"], ["--secret-f", "s3cret-s3cret-s3cret"]):
        with pytest.raises(SystemExit) as info:
            main(["--board-id", BOARD, *spelling])
        assert info.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_missing_secret_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RADIOCORE_AGENT_SECRET", raising=False)
    assert main(["--board-id", BOARD]) == 2
    err = capsys.readouterr().err
    assert "secret is required" in err and "RADIOCORE_AGENT_SECRET" in err


def test_python_dash_m_board_agent() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "board_agent", "--board-id", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"RADIOCORE_AGENT_SECRET": "s3cret-s3cret-s3cret", "PATH": ""},
        check=False,
    )
    assert result.returncode == 2
    assert "board_id 'nope' is not a lower-case UUID" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_agent_cleanly(signum: int) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the agent keeps retrying
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "board_agent",
            "--server",
            f"http://127.0.0.1:{port}",
            "--board-id",
            BOARD,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={"RADIOCORE_AGENT_SECRET": "s3cret-s3cret-s3cret", "PATH": ""},
        # a shell's background job may inherit SIGINT ignored; start from the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stderr is not None
        for _ in range(50):  # wait for the first failed attempt (bounded by the line count)
            line = process.stderr.readline()
            if "reconnecting in" in line or not line:
                break
        process.send_signal(signum)
        _, rest = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "board agent stopped" in rest
    assert "Traceback" not in rest
