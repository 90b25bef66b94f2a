"""AgentConfig: layering defaults → file → environment → flags, unknown keys, validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from board_agent.config import AgentConfig, AudioSpec
from board_agent.errors import ConfigError

BOARD = "12345678-1234-4234-8234-123456789abc"
SECRET = "s3cret-s3cret-s3cret"


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_defaults_then_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        f"""
server_url = "https://file.example"
board_id = "{BOARD}"
secret = "{SECRET}"
opus_bitrate = 32000
status_interval_s = 2
ice_host_addresses = ["10.0.0.5"]
""",
    )
    env = {
        "RADIOCORE_AGENT_SERVER_URL": "https://env.example",
        "RADIOCORE_AGENT_OPUS_BITRATE": "16000",
        "RADIOCORE_AGENT_ICE_HOST_ADDRESSES": "10.0.0.6, 10.0.0.7",
        "UNRELATED": "ignored",
    }
    sources: dict[str, str] = {}
    config = AgentConfig.load(
        path, env=env, overrides={"server_url": "https://flag.example"}, sources=sources
    )
    assert config.server_url == "https://flag.example"  # flag beats env beats file
    assert config.opus_bitrate == 16000  # env beats file
    assert config.ice_host_addresses == ("10.0.0.6", "10.0.0.7")
    assert config.status_interval_s == 2.0  # file beats default
    assert config.board_id == BOARD  # a key no later layer sets keeps the file's
    assert config.secret == SECRET
    assert config.reconnect_min_s == 1.0 and config.reconnect_max_s == 60.0  # defaults
    assert config.audio_source == "tone" and config.audio_sink == "null"
    assert sources == {
        "server_url": "overrides",
        "board_id": f"config file {path}",
        "secret": f"config file {path}",
        "opus_bitrate": "environment variable RADIOCORE_AGENT_OPUS_BITRATE",
        "status_interval_s": f"config file {path}",
        "ice_host_addresses": "environment variable RADIOCORE_AGENT_ICE_HOST_ADDRESSES",
    }


def test_secret_from_environment_only() -> None:
    config = AgentConfig.load(
        env={"RADIOCORE_AGENT_SECRET": SECRET, "RADIOCORE_AGENT_BOARD_ID": BOARD}
    )
    assert config.secret == SECRET


def test_secret_is_refused_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match="'secret' is a secret and must not be given on the "):
        AgentConfig.load(env={"RADIOCORE_AGENT_BOARD_ID": BOARD}, overrides={"secret": SECRET})
    with pytest.raises(ConfigError, match="RADIOCORE_AGENT_SECRET or `secret` in the config file"):
        AgentConfig.load(env={"RADIOCORE_AGENT_BOARD_ID": BOARD}, overrides={"secret": SECRET})


def test_secret_is_not_in_repr_or_str() -> None:
    config = AgentConfig(board_id=BOARD, secret=SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert BOARD in repr(config)


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    path = write_toml(tmp_path, f'board_id = "{BOARD}"\nsecert = "{SECRET}"\n')
    with pytest.raises(ConfigError, match=r"unknown configuration key 'secert'") as info:
        AgentConfig.load(path)
    assert str(path) in str(info.value)
    assert "did you mean 'secret'" in str(info.value)
    assert SECRET not in str(info.value)


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="RADIOCORE_AGENT_BORAD_ID"):
        AgentConfig.load(env={"RADIOCORE_AGENT_BORAD_ID": BOARD})


def test_unknown_flag_key_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown configuration key 'colour' in overrides"):
        AgentConfig.load(overrides={"colour": "blue"})


def test_wrong_type_in_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'opus_bitrate = "fast"\n')
    with pytest.raises(ConfigError, match=r"'opus_bitrate' in config file .* must be an integer"):
        AgentConfig.load(path)


def test_bad_number_in_environment_does_not_echo_the_value() -> None:
    with pytest.raises(
        ConfigError, match="RADIOCORE_AGENT_OPUS_BITRATE must be an integer"
    ) as info:
        AgentConfig.load(env={"RADIOCORE_AGENT_OPUS_BITRATE": "hunter2-hunter2"})
    assert "hunter2" not in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        AgentConfig.load(write_toml(tmp_path, "board_id = \n"))
    with pytest.raises(ConfigError, match="does not exist"):
        AgentConfig.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"board_id": ""}, "board_id is required"),
        ({"board_id": "not-a-uuid"}, "not a lower-case UUID"),
        ({"secret": ""}, "secret is required"),
        ({"secret": "short"}, "secret must be 16"),
        ({"server_url": "ftp://x"}, "server_url"),
        ({"server_url": "http://"}, "server_url"),
        ({"other_server_urls": ("https://b.example", "b.example")}, "other_server_urls 'b.ex"),
        ({"audio_retry_s": 0.0}, "audio_retry_s must be greater than 0"),
        ({"audio_source": "lavfi:"}, "needs an FFmpeg filter graph"),
        ({"audio_source": "microphone"}, "audio_source 'microphone'"),
        ({"audio_source": "file:/no/such/file.ogg"}, "no such file"),
        ({"audio_source": "tone:5"}, "tone frequency"),
        ({"audio_sink": "raw:/no/such/dir/tx.raw"}, "directory does not exist"),
        ({"audio_sink": "speaker"}, "audio_sink 'speaker'"),
        ({"ice_host_addresses": ("10.0.0.300",)}, "not an IP address"),
        ({"opus_bitrate": 100}, "opus_bitrate"),
        ({"reconnect_min_s": 0.0}, "reconnect_min_s must be greater than 0"),
        ({"reconnect_min_s": 10.0, "reconnect_max_s": 5.0}, "reconnect_max_s"),
        ({"heartbeat_interval_s": -1.0}, "heartbeat_interval_s"),
        ({"rig": "icom"}, "rig 'icom' is not one of simulated, rigctld, hamlib"),
        ({"rig_poll_hz": 0.5}, r"rig_poll_hz 0.5 is outside 1 … 50"),
        ({"rig_timeout_s": 0.0}, "rig_timeout_s"),
        ({"deadman_s": 0.2}, r"deadman_s must be 0\.5 … 60 s \(at least 2 keep-alive .*, not 0.2"),
        ({"deadman_s": 61.0}, r"deadman_s must be 0\.5 … 60 s"),
        ({"ptt_guard_timeout_s": 0.2}, r"ptt_guard_timeout_s 0.2 is outside 0\.3 … 5 s"),
        ({"ptt_guard_timeout_s": 5.5}, r"ptt_guard_timeout_s 5.5 is outside 0\.3 … 5 s"),
        ({"log_level": "loud"}, "log_level 'LOUD' is not one of DEBUG, INFO"),
        ({"control_queue_size": 0}, "control_queue_size must be between 1 and 1024, not 0"),
        (
            {"max_channel_buffered_bytes": 100},
            r"max_channel_buffered_bytes must be between 4096 \(one message\) and 16777216",
        ),
        ({"rigctld_port": 0}, "rigctld_port 0"),
        ({"rig_model": 0}, "rig_model 0"),
        ({"rig_speed": -9600}, "rig_speed"),
        ({"rig_ptt_type": "FOOT"}, "rig_ptt_type 'FOOT' is not one of RIG, "),
        ({"rig": "hamlib", "rig_model": 3073}, "rig_device is required for rig_model 3073"),
        ({"rig": "hamlib", "rigctld_host": "0.0.0.0"}, "runs rigctld on 127.0.0.1 only"),
        ({"rig_freq_ranges": ("7000000",)}, "'7000000' is not LOW-HIGH in Hz"),
        ({"rig_freq_ranges": ("7200000-7000000",)}, "1 <= LOW <= HIGH"),
        ({"rig_modes": ("USB", "SSB")}, "rig_modes: 'SSB' is not one of USB"),
    ],
)
def test_validation_errors_are_clear(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"board_id": BOARD, "secret": SECRET, **changes}
    with pytest.raises(ConfigError, match=message):
        AgentConfig(**values).validate()  # type: ignore[arg-type]


def test_audio_specs() -> None:
    assert AudioSpec.parse_source("tone") == AudioSpec("tone")
    assert AudioSpec.parse_source("tone").tone_hz == 1000
    assert AudioSpec.parse_source("tone:440").tone_hz == 440
    assert AudioSpec.parse_source("alsa:hw:1,0") == AudioSpec("alsa", "hw:1,0")
    assert AudioSpec.parse_source("pulse:default") == AudioSpec("pulse", "default")
    assert AudioSpec.parse_sink("null") == AudioSpec("null")
    assert AudioSpec.parse_sink("raw:/tmp/tx.raw") == AudioSpec("raw", "/tmp/tx.raw")
    assert AudioSpec.parse_sink("alsa:plughw:0") == AudioSpec("alsa", "plughw:0")


def test_a_secret_in_a_readable_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_toml(tmp_path, f'board_id = "{BOARD}"\nsecret = "{SECRET}"\n')
    AgentConfig.load(path)
    assert not [r for r in caplog.records if "readable by other users" in r.message]
    os.chmod(path, 0o644)
    AgentConfig.load(path)
    warnings = [r.getMessage() for r in caplog.records if "readable by other users" in r.message]
    assert len(warnings) == 1 and SECRET not in warnings[0]


def test_rig_keys(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        f"""
board_id = "{BOARD}"
secret = "{SECRET}"
rig = "hamlib"
rig_model = 3073
rig_device = "/dev/ttyUSB0"
rig_speed = 19200
rig_ptt_type = "DTR"
rig_freq_ranges = ["7000000-7200000", " 14000000 - 14350000 "]
rig_modes = ["USB", "CW"]
""",
    )
    env = {"RADIOCORE_AGENT_RIG_POLL_HZ": "10", "RADIOCORE_AGENT_DEADMAN_S": "0.8"}
    config = AgentConfig.load(path, env=env, overrides={"rigctld_port": 4600})
    assert (config.rig, config.rig_model, config.rig_device, config.rig_speed) == (
        "hamlib",
        3073,
        "/dev/ttyUSB0",
        19200,
    )
    assert config.freq_ranges() == ((7_000_000, 7_200_000), (14_000_000, 14_350_000))
    assert (config.rig_poll_hz, config.deadman_s, config.rigctld_port) == (10.0, 0.8, 4600)
    unset = AgentConfig.load(path, env={"RADIOCORE_AGENT_RIG_SPEED": ""})
    assert unset.rig_speed is None  # the empty variable unsets an optional key


def test_rig_defaults() -> None:
    config = AgentConfig(board_id=BOARD, secret=SECRET)
    config.validate()
    assert config.rig == "simulated"
    assert (config.rigctld_host, config.rigctld_port, config.rigctld_path) == (
        "127.0.0.1",
        4532,
        "rigctld",
    )
    assert (config.rig_model, config.rig_device, config.rig_speed, config.rig_ptt_type) == (
        1,
        "",
        None,
        "",
    )
    assert (config.rig_poll_hz, config.rig_timeout_s, config.deadman_s) == (5.0, 1.0, 1.0)
    assert config.tx_timeout_s == 180.0
    assert config.ptt_guard_timeout_s == 0.6


@pytest.mark.parametrize("timeout_s", [0.3, 5.0])
def test_the_ptt_guard_timeout_bounds_are_accepted(timeout_s: float) -> None:
    env = {"RADIOCORE_AGENT_BOARD_ID": BOARD, "RADIOCORE_AGENT_SECRET": SECRET}
    env["RADIOCORE_AGENT_PTT_GUARD_TIMEOUT_S"] = str(timeout_s)
    assert AgentConfig.load(env=env).ptt_guard_timeout_s == timeout_s


@pytest.mark.parametrize("deadman_s", [0.25, 0.3])
def test_a_deadman_within_two_keepalives_is_refused(deadman_s: float) -> None:
    env = {"RADIOCORE_AGENT_BOARD_ID": BOARD, "RADIOCORE_AGENT_SECRET": SECRET}
    with pytest.raises(ConfigError, match=r"deadman_s must be 0\.5 … 60 s"):
        AgentConfig.load(env=env, overrides={"deadman_s": deadman_s})


def test_the_shortest_accepted_deadman_is_two_keepalives() -> None:
    env = {"RADIOCORE_AGENT_BOARD_ID": BOARD, "RADIOCORE_AGENT_SECRET": SECRET}
    assert AgentConfig.load(env=env, overrides={"deadman_s": 0.5}).deadman_s == 0.5


def test_construction_validates_and_normalises() -> None:
    with pytest.raises(ConfigError, match="board_id is required"):
        AgentConfig()
    assert AgentConfig(board_id=BOARD, secret=SECRET, log_level="debug").log_level == "DEBUG"


def test_limits_that_were_constants_are_keys() -> None:
    config = AgentConfig(board_id=BOARD, secret=SECRET)
    assert (config.control_queue_size, config.max_channel_buffered_bytes) == (32, 64 * 1024)
    env = {
        "RADIOCORE_AGENT_BOARD_ID": BOARD,
        "RADIOCORE_AGENT_SECRET": SECRET,
        "RADIOCORE_AGENT_CONTROL_QUEUE_SIZE": "8",
        "RADIOCORE_AGENT_MAX_CHANNEL_BUFFERED_BYTES": "8192",
        "RADIOCORE_AGENT_LOG_LEVEL": "warning",
    }
    loaded = AgentConfig.load(env=env)
    assert (loaded.control_queue_size, loaded.max_channel_buffered_bytes) == (8, 8192)
    assert loaded.log_level == "WARNING"
