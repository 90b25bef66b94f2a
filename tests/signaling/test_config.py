"""Layered configuration (signaling/configlayers.py) and the server's (signaling/config.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from radiocore.configlayers import LayeredConfigError, load_layered
from signaling.config import (
    IceConfig,
    LimitsConfig,
    ServerConfig,
    load_server_config,
    resolve_web_root,
)
from signaling.errors import ConfigError

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
    assert config.jwt_ttl_s == 86400
    assert config.log_level == "INFO"
    assert config.media_latency_sample_every == 0
    assert config.web_root is None
    assert config.ice == IceConfig(host_addresses=(), servers=())
    assert config.limits == LimitsConfig(
        max_sdp_chars=65536,
        max_data_message_bytes=4096,
        listener_queue_packets=64,
        max_http_buffer_bytes=1_000_000,
    )
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
        ("[turn]\nsecret = 'x'\n", "'turn'"),
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
        ({"jwt_leeway_s": -1.0}, "jwt_leeway_s"),
        ({"jwt_audience": ""}, "jwt_audience"),
        ({"media_latency_sample_every": -1}, "media_latency_sample_every"),
        ({"host": ""}, "host"),
        ({"database_url": "mysql://u:hunter2@db/x"}, "mysql://u:***@db/x"),
        ({"ice.servers": "http://stun.example.org"}, "ice.servers entry"),
        ({"limits.max_sdp_chars": 70000}, "limits.max_sdp_chars"),
        ({"limits.max_data_message_bytes": 0}, "limits.max_data_message_bytes"),
        ({"limits.listener_queue_packets": 0}, "limits.listener_queue_packets"),
    ],
)
def test_validation(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(env=ENV, overrides=overrides)
    assert needle in info.value.message
    assert "hunter2" not in info.value.message


def test_port_zero_and_ice_urls_are_accepted() -> None:
    servers = "stun:stun.example.org,turn:turn.example.org:3478?transport=tcp,turns:t.example.org"
    config = load_server_config(env=ENV, overrides={"port": 0, "ice.servers": servers})
    assert config.port == 0
    assert len(config.ice.servers) == 3


def test_web_root() -> None:
    config = load_server_config(env=ENV)
    assert (resolve_web_root(config) / "__init__.py").is_file()
    custom = dataclasses.replace(config, web_root=Path("/srv/console"))
    assert resolve_web_root(custom) == Path("/srv/console")


# -- the generic loader, on its own -----------------------------------------------------------


@dataclass(frozen=True)
class _Inner:
    ratio: float = 0.5
    names: tuple[str, ...] = ("a",)
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Middle:
    enabled: bool = False
    inner: _Inner = field(default_factory=_Inner)


@dataclass(frozen=True)
class _Root:
    name: str = "x"
    token: str = field(default="", repr=False)
    middle: _Middle = field(default_factory=_Middle)


def test_generic_loader_nests_two_levels(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[middle.inner]\nratio = 2\nports = [1, 2]\n", encoding="utf-8")
    root = load_layered(
        _Root,
        file=path,
        env={"APP_MIDDLE__INNER__NAMES": "b,c", "APP_MIDDLE__ENABLED": "on", "OTHER": "1"},
        env_prefix="APP_",
        overrides={"middle.inner.ports": "7, 8"},
    )
    assert root == _Root(middle=_Middle(enabled=True, inner=_Inner(2.0, ("b", "c"), (7, 8))))
    assert isinstance(root.middle.inner.ratio, float)


def test_generic_loader_errors_name_key_and_layer(tmp_path: Path) -> None:
    with pytest.raises(LayeredConfigError, match=r"'middle.inner.size' in overrides"):
        load_layered(
            _Root, file=None, env={}, env_prefix="APP_", overrides={"middle.inner.size": 1}
        )
    with pytest.raises(LayeredConfigError, match="'token' in overrides") as info:
        load_layered(_Root, file=None, env={}, env_prefix="APP_", overrides={"token": 987654})
    assert "987654" not in str(info.value)  # repr=False: a secret, never echoed
    with pytest.raises(LayeredConfigError, match=r"unknown .* in environment variable APP_NAME__X"):
        load_layered(_Root, file=None, env={"APP_NAME__X": "1"}, env_prefix="APP_", overrides={})
    with pytest.raises(LayeredConfigError, match="APP_MIDDLE__INNER__PORTS"):
        load_layered(
            _Root,
            file=None,
            env={"APP_MIDDLE__INNER__PORTS": "1,two"},
            env_prefix="APP_",
            overrides={},
        )


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
