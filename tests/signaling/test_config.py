"""The server's configuration (signaling/config.py); the generic loader is tested in
tests/radiocore/test_configlayers.py."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from signaling.config import (
    FloorConfig,
    IceConfig,
    LimitsConfig,
    ServerConfig,
    load_server_config,
    render_server_config,
    resolve_web_root,
)
from signaling.errors import ConfigError
from signaling.workers import worker_config

SECRET = "Qx7-vR2pLk9_mZ4tWb8nYc3sHd6fJg1aEe5uTo0iPy"
ENV = {"RADIOCORE_SECRET": SECRET}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "radiocore.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_server_config(env=ENV)
    assert config == ServerConfig(secret=SECRET)
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.demo is False
    assert config.data_dir == Path("./radiocore-data")
    assert config.database_url == ""
    assert config.jwt_audience == "radiocore"
    assert config.jwt_ttl_s == 900  # short: clients renew it with their refresh token
    assert config.refresh_ttl_s == 30 * 86400
    assert config.log_level == "INFO"
    assert config.media_latency_sample_every == 0
    assert config.web_root is None
    assert config.ice == IceConfig(host_addresses=(), servers=())
    assert config.limits == LimitsConfig(
        max_sdp_chars=65536,
        max_data_message_bytes=4096,
        listener_queue_packets=64,
        max_http_buffer_bytes=1_000_000,
        max_json_body_bytes=16_384,
        max_events_per_second=1000,
        max_data_messages_per_second=1000,
        max_buffered_data_bytes=262_144,
        max_early_candidates=32,
    )
    assert config.floor == FloorConfig(deadman_s=1.0, tx_timeout_s=180.0, tx_warning_s=10.0)
    assert config.secret_is_ephemeral is False


FILE = """
port = 9000
host = "0.0.0.0"
data_dir = "/var/lib/radiocore"
log_level = "debug"

[ice]
host_addresses = ["10.0.0.1"]
servers = ["stun:stun.example.org:3478"]

[limits]
listener_queue_packets = 32
"""


def test_file_overrides_defaults(tmp_path: Path) -> None:
    config = load_server_config(_write(tmp_path, FILE), env=ENV)
    assert config.port == 9000
    assert config.host == "0.0.0.0"
    assert config.data_dir == Path("/var/lib/radiocore")
    assert config.log_level == "DEBUG"  # normalised by validation
    assert config.ice.host_addresses == ("10.0.0.1",)
    assert config.ice.servers == ("stun:stun.example.org:3478",)
    assert config.limits.listener_queue_packets == 32
    assert config.limits.max_sdp_chars == 65536  # the rest of the section keeps its defaults


def test_environment_overrides_file(tmp_path: Path) -> None:
    env = {
        **ENV,
        "RADIOCORE_PORT": "9001",
        "RADIOCORE_DEMO": "no",
        "RADIOCORE_JWT_LEEWAY_S": "2.5",
        "RADIOCORE_WEB_ROOT": "/srv/console",
        "RADIOCORE_ICE__HOST_ADDRESSES": " 10.0.0.2 , 10.0.0.3,",
        "RADIOCORE_LIMITS__MAX_SDP_CHARS": "30000",
        "HOME": "/root",  # not ours: ignored
        "RADIOCORE_AGENT_SECRET": "the board agent's, not ours",
        "RADIOCORE_PASSWORD": "read by `radiocore user add`, not a setting",
    }
    config = load_server_config(_write(tmp_path, FILE), env=env)
    assert config.port == 9001
    assert config.demo is False
    assert config.jwt_leeway_s == 2.5
    assert config.web_root == Path("/srv/console")
    assert config.ice.host_addresses == ("10.0.0.2", "10.0.0.3")
    assert config.ice.servers == ("stun:stun.example.org:3478",)  # from the file
    assert config.limits.max_sdp_chars == 30000
    assert config.limits.listener_queue_packets == 32  # from the file


def test_overrides_beat_environment(tmp_path: Path) -> None:
    env = {**ENV, "RADIOCORE_PORT": "9001", "RADIOCORE_ICE__HOST_ADDRESSES": "10.0.0.2"}
    overrides: dict[str, object] = {
        "port": 9002,
        "ice.host_addresses": "10.0.0.4,10.0.0.5",  # a flag's text, converted like env
        "limits.listener_queue_packets": "16",
        "web_root": None,
    }
    config = load_server_config(_write(tmp_path, FILE), env=env, overrides=overrides)
    assert config.port == 9002
    assert config.ice.host_addresses == ("10.0.0.4", "10.0.0.5")
    assert config.limits.listener_queue_packets == 16
    assert config.web_root is None


def test_empty_env_values() -> None:
    env = {**ENV, "RADIOCORE_WEB_ROOT": "", "RADIOCORE_ICE__SERVERS": "", "RADIOCORE_HOST": "::1"}
    config = load_server_config(overrides={"web_root": "/x"}, env=env)
    assert config.web_root == Path("/x")
    config = load_server_config(env=env)
    assert config.web_root is None
    assert config.ice.servers == ()
    assert config.host == "::1"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prot = 8080\n", "'prot'"),
        ("[ice]\nhost_adresses = ['1.2.3.4']\n", "'ice.host_adresses'"),
        ("[stun]\nsecret = 'x'\n", "'stun'"),
    ],
)
def test_unknown_key_in_file(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="unknown configuration key") as info:
        load_server_config(path, env=ENV)
    assert needle in info.value.message
    assert str(path) in info.value.message


def test_unknown_key_in_environment() -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(env={**ENV, "RADIOCORE_PROT": "8080"})
    assert "RADIOCORE_PROT" in info.value.message
    assert "did you mean 'RADIOCORE_PORT'" in info.value.message
    with pytest.raises(ConfigError, match="RADIOCORE_ICE__HOSTS"):
        load_server_config(env={**ENV, "RADIOCORE_ICE__HOSTS": "1.2.3.4"})
    with pytest.raises(ConfigError, match="names the section 'ice'"):
        load_server_config(env={**ENV, "RADIOCORE_ICE": "1.2.3.4"})
    # not configurable: set only by validation
    with pytest.raises(ConfigError, match="RADIOCORE_SECRET_IS_EPHEMERAL"):
        load_server_config(env={**ENV, "RADIOCORE_SECRET_IS_EPHEMERAL": "true"})


@pytest.mark.parametrize("key", ["ice.hosts", "iec.host_addresses", "port.number", "demo_mode"])
def test_unknown_key_in_overrides(key: str) -> None:
    with pytest.raises(ConfigError, match="unknown configuration key") as info:
        load_server_config(env=ENV, overrides={key: "1"})
    assert repr(key) in info.value.message


@pytest.mark.parametrize(
    ("file_text", "env", "overrides", "needle"),
    [
        ('port = "8080"\n', {}, {}, "'port' in config file"),
        ("demo = 1\n", {}, {}, "'demo' in config file"),
        ("[ice]\nhost_addresses = '10.0.0.1'\n", {}, {}, "'ice.host_addresses'"),
        ("[ice]\nhost_addresses = [1]\n", {}, {}, "'ice.host_addresses'"),
        ("ice = 3\n", {}, {}, "must be a table"),
        ("[port]\nx = 1\n", {}, {}, "'port' in config file"),
        ("", {"RADIOCORE_PORT": "80.5"}, {}, "'port' in environment variable RADIOCORE_PORT"),
        ("", {"RADIOCORE_DEMO": "maybe"}, {}, "true/false"),
        ("", {"RADIOCORE_JWT_LEEWAY_S": "nan"}, {}, "finite"),
        ("", {"RADIOCORE_DATA_DIR": ""}, {}, "non-empty path"),
        ("", {}, {"port": True}, "'port' in overrides"),
        ("", {}, {"demo": "sometimes"}, "'demo' in overrides"),
        ("", {}, {"ice.servers": 3}, "'ice.servers' in overrides"),
        ("", {}, {"host": None}, "not nothing"),
    ],
)
def test_wrong_type_is_a_config_error(
    tmp_path: Path, file_text: str, env: dict[str, str], overrides: dict[str, object], needle: str
) -> None:
    path = _write(tmp_path, file_text)
    with pytest.raises(ConfigError) as info:
        load_server_config(path, env={**ENV, **env}, overrides=overrides)
    assert needle in info.value.message


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_server_config(tmp_path / "missing.toml", env=ENV)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_server_config(_write(tmp_path, "port = \n"), env=ENV)


def test_wrong_typed_secret_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(_write(tmp_path, "secret = 123456789012345\n"), env={})
    assert "'secret'" in info.value.message
    assert "123456789012345" not in info.value.message


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "is not set"),
        ("s3cr3t", "shorter than 32"),
        ("change-me-change-me-change-me-change-me", "placeholder"),
        ("please-replace-with-your-secret-XYZ-1234", "placeholder"),
        ("a" * 48, "not random"),
    ],
)
def test_no_real_secret_outside_demo_is_refused(secret: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(env={"RADIOCORE_SECRET": secret} if secret else {})
    message = info.value.message
    assert problem in message
    assert "RADIOCORE_SECRET" in message
    assert "RADIOCORE_DEMO=true" in message
    if secret:
        assert secret not in message


def test_demo_generates_an_ephemeral_secret() -> None:
    first = load_server_config(env={"RADIOCORE_DEMO": "true"})
    second = load_server_config(overrides={"demo": True})
    assert first.demo and second.demo
    assert len(first.secret) >= 32
    assert first.secret != second.secret
    assert first.secret_is_ephemeral
    assert "secret=<ephemeral>" in first.summary()


def test_demo_keeps_a_given_secret_but_refuses_a_weak_one() -> None:
    config = load_server_config(env={**ENV, "RADIOCORE_DEMO": "1"})
    assert config.secret == SECRET and not config.secret_is_ephemeral
    with pytest.raises(ConfigError, match="leave it unset in demo mode"):
        load_server_config(env={"RADIOCORE_DEMO": "1", "RADIOCORE_SECRET": "short"})


def test_secrets_never_shown() -> None:
    url = "postgresql://radiocore:db-Pa55word@db.example.org/radiocore"
    config = load_server_config(env={**ENV, "RADIOCORE_DATABASE_URL": url})
    for text in (repr(config), str(config), config.summary()):
        assert SECRET not in text
        assert "db-Pa55word" not in text
    assert "secret=<set>" in config.summary()
    assert "postgresql://radiocore:***@db.example.org/radiocore" in config.summary()
    demo = load_server_config(overrides={"demo": True})
    assert demo.secret not in repr(demo) and demo.secret not in demo.summary()


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"port": 65536}, "port 65536"),
        ({"port": -1}, "port -1"),
        ({"log_level": "verbose"}, "log_level 'verbose'"),
        ({"jwt_ttl_s": 0}, "jwt_ttl_s"),
        ({"refresh_ttl_s": 0}, "refresh_ttl_s"),
        ({"jwt_leeway_s": -1.0}, "jwt_leeway_s"),
        ({"jwt_audience": ""}, "jwt_audience"),
        ({"media_latency_sample_every": -1}, "media_latency_sample_every"),
        ({"forwarding_lane": "fast"}, "forwarding_lane must be one of auto, compiled, python"),
        ({"host": ""}, "host"),
        ({"ice.servers": "http://stun.example.org"}, "ice.servers: 'http://stun.example.org'"),
        ({"ice.servers": "turn:turn.example.org"}, "put it in [turn] urls"),
        ({"ice.servers": "stun:user:pw@stun.example.org"}, "carry no credentials"),
        ({"turn.urls": "turn:turn.example.org"}, "turn: the TURN secret must have at least 32"),
        ({"turn.urls": "stun:stun.example.org"}, "is not a TURN URL"),
        ({"ice.transport_policy": "relay"}, "needs a relay"),
        ({"limits.max_sdp_chars": 70000}, "limits.max_sdp_chars"),
        ({"limits.max_data_message_bytes": 0}, "limits.max_data_message_bytes"),
        ({"limits.listener_queue_packets": 0}, "limits.listener_queue_packets"),
        ({"ice.udp_port": 80}, "ice.udp_port: 80 is not within 1024"),
        ({"ice.udp_port": 40000, "ice.udp_port_min": 41000, "ice.udp_port_max": 41010}, "both set"),
        ({"ice.udp_port": 65535, "workers": 2}, "would reach 65536"),
    ],
)
def test_validation(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(env=ENV, overrides=overrides)
    assert needle in info.value.message
    assert "hunter2" not in info.value.message


def test_a_bad_database_url_is_named_without_its_password() -> None:
    env = {**ENV, "RADIOCORE_DATABASE_URL": "mysql://u:hunter2@db/x"}
    with pytest.raises(ConfigError) as info:
        load_server_config(env=env)
    assert "mysql://u:***@db/x" in info.value.message
    assert "hunter2" not in info.value.message


@pytest.mark.parametrize(
    ("key", "env_var"),
    [("secret", "RADIOCORE_SECRET"), ("database_url", "RADIOCORE_DATABASE_URL")],
)
def test_secrets_are_refused_from_flags(key: str, env_var: str) -> None:
    value = "postgresql://u:hunter2@db/x" if key == "database_url" else SECRET
    with pytest.raises(ConfigError, match="must not be given on the command line") as info:
        load_server_config(env=ENV, overrides={key: value})
    assert env_var in info.value.message and f"`{key}` in the config file" in info.value.message
    assert value not in info.value.message and "hunter2" not in info.value.message


NEW_LIMITS = {
    "max_json_body_bytes": 16_384,
    "max_buffered_data_bytes": 262_144,
    "max_early_candidates": 32,
}


@pytest.mark.parametrize(("key", "default"), NEW_LIMITS.items())
def test_new_limits_are_configurable(key: str, default: int) -> None:
    assert getattr(load_server_config(env=ENV).limits, key) == default
    env = {**ENV, f"RADIOCORE_LIMITS__{key.upper()}": str(default // 2)}
    assert getattr(load_server_config(env=env).limits, key) == default // 2


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        # every limit: its key, its bounds and the value given
        ({"limits.max_sdp_chars": 0}, "limits.max_sdp_chars must be between 1 and 65536, not 0"),
        (
            {"limits.max_data_message_bytes": 4097},
            "limits.max_data_message_bytes must be between 1 and 4096, not 4097",
        ),
        (
            {"limits.max_events_per_second": 1001},
            "limits.max_events_per_second must be between 1 and 1000, not 1001",
        ),
        (
            {"limits.max_data_messages_per_second": 0},
            "limits.max_data_messages_per_second must be between 1 and 1000, not 0",
        ),
        (
            {"limits.max_http_buffer_bytes": 1_000_001},
            "limits.max_http_buffer_bytes must be between 65536 and 1000000",
        ),
        (
            {"limits.max_http_buffer_bytes": 60_000},
            "limits.max_http_buffer_bytes must be between 65536 and 1000000 (a frame must "
            "hold the longest SDP, limits.max_sdp_chars), not 60000",
        ),
        (
            {"limits.max_json_body_bytes": 0},
            "limits.max_json_body_bytes must be between 1 and 1000000",
        ),
        (
            {"limits.max_http_buffer_bytes": 100_000, "limits.max_json_body_bytes": 100_001},
            "limits.max_json_body_bytes must be between 1 and 100000",
        ),
        (
            {"limits.listener_queue_packets": 1025},
            "limits.listener_queue_packets must be between 1 and 1024, not 1025",
        ),
        (
            {"limits.max_buffered_data_bytes": 4095},
            "limits.max_buffered_data_bytes must be between 4096 and 16777216",
        ),
        (
            {"limits.max_early_candidates": 0},
            "limits.max_early_candidates must be between 1 and 1024, not 0",
        ),
    ],
)
def test_every_limit_is_bounded(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(env=ENV, overrides=overrides)
    assert needle in info.value.message


def test_sections_are_validated_on_construction() -> None:
    with pytest.raises(ConfigError, match=r"limits\.max_early_candidates"):
        LimitsConfig(max_early_candidates=0)
    with pytest.raises(ConfigError, match=r"floor\.deadman_s"):
        FloorConfig(deadman_s=0.25)


def test_the_rendered_configuration_reads_back(tmp_path: Path) -> None:
    url = "postgresql://radiocore:db-Pa55word@db.example.org/radiocore"
    env = {**ENV, "RADIOCORE_DATABASE_URL": url, "RADIOCORE_PORT": "9001"}
    sources: dict[str, str] = {}
    config = load_server_config(
        _write(tmp_path, FILE), env=env, overrides={"floor.deadman_s": 2.0}, sources=sources
    )
    text = render_server_config(config, sources)
    assert SECRET not in text and "db-Pa55word" not in text
    assert '# database_url = "postgresql://radiocore:***@db.example.org/radiocore"' in text
    assert "port = 9001  # environment variable RADIOCORE_PORT" in text
    assert "deadman_s = 2.0  # command line" in text
    assert 'log_level = "DEBUG"  # config file' in text
    assert tomllib.loads(text)["limits"]["listener_queue_packets"] == 32
    shown = tmp_path / "shown.toml"
    shown.write_text(text, encoding="utf-8")
    assert load_server_config(shown, env=env) == config


def test_an_ephemeral_secret_is_shown_as_such() -> None:
    config = load_server_config(overrides={"demo": True})
    text = render_server_config(config, {})
    assert config.secret not in text
    assert "secret, from demo mode: generated, ephemeral" in text


def test_port_zero_and_ice_urls_are_accepted() -> None:
    turn = "turn:turn.example.org:3478?transport=udp,turns:t.example.org:443?transport=tcp"
    env = {**ENV, "RADIOCORE_TURN__SECRET": "a-turn-secret-of-at-least-32-characters!"}
    config = load_server_config(
        env=env,
        overrides={
            "port": 0,
            "ice.servers": "stun:stun.example.org",
            "turn.urls": turn,
            "ice.transport_policy": "relay",
        },
    )
    assert config.port == 0
    assert config.ice.servers == ("stun:stun.example.org",)
    assert len(config.turn.urls) == 2 and config.ice.transport_policy == "relay"
    assert "a-turn-secret" not in repr(config) and "a-turn-secret" not in config.summary()


def test_web_root() -> None:
    config = load_server_config(env=ENV)
    assert (resolve_web_root(config) / "__init__.py").is_file()
    custom = dataclasses.replace(config, web_root=Path("/srv/console"))
    assert resolve_web_root(custom) == Path("/srv/console")


def test_floor_timers_are_configurable_and_checked() -> None:
    config = load_server_config(
        None,
        {"RADIOCORE_FLOOR__DEADMAN_S": "0.5"},
        {"demo": True, "floor.tx_timeout_s": 60.0},
    )
    assert config.floor.deadman_s == 0.5
    assert config.floor.tx_timeout_s == 60.0
    with pytest.raises(ConfigError, match="tx_warning_s"):
        load_server_config(
            None, {}, {"demo": True, "floor.tx_warning_s": 90.0, "floor.tx_timeout_s": 60.0}
        )
    with pytest.raises(ConfigError, match="deadman_s"):
        load_server_config(None, {}, {"demo": True, "floor.deadman_s": 0.0})
    with pytest.raises(ConfigError, match=r"floor\.deadman_s"):
        load_server_config(None, {}, {"demo": True, "floor.deadman_s": 61.0})


@pytest.mark.parametrize("deadman_s", [0.25, 0.3])
def test_a_deadman_within_two_keepalives_is_refused(deadman_s: float) -> None:
    with pytest.raises(ConfigError, match=r"floor\.deadman_s must be 0\.5 … 60 s"):
        load_server_config(env=ENV, overrides={"floor.deadman_s": deadman_s})


def test_the_shortest_accepted_deadman_is_two_keepalives() -> None:
    assert load_server_config(env=ENV, overrides={"floor.deadman_s": 0.5}).floor.deadman_s == 0.5


def test_each_media_worker_shares_its_own_port() -> None:
    """One socket cannot be read by two processes: worker N shares `ice.udp_port + N`."""
    config = load_server_config(env=ENV, overrides={"ice.udp_port": 40000, "workers": 3})
    assert worker_config(config, "node-a-w1").ice.udp_port == 40001
    assert worker_config(config, "node-a-w2").ice.udp_port == 40002
    assert worker_config(config, "node-a-w2").ice.host_addresses == config.ice.host_addresses
    assert "ice.udp_port=40000" in config.summary()
    plain = load_server_config(env=ENV)
    assert worker_config(plain, "node-a-w1") is plain
