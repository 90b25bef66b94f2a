"""coturn's configuration as `radiocore turn config` renders it from the server's [turn] settings:
what coturn would admit as a peer, where it listens, what it refuses to render, and the file."""

from __future__ import annotations

import dataclasses
import ipaddress
import stat
from pathlib import Path

import pytest

from signaling.config import TurnConfig, load_server_config
from signaling.errors import ConfigError
from tests.turn.generated import INTERNAL, PUBLIC
from turn.coturn_config import CoturnConfigError, render_coturn_config, write_coturn_config

SECRET = "Zt4-qW8_kR2nXv6bLp0mYc3sHd7fJg1aEe5uTo9iPy"
JWT_SECRET = "Qx7-vR2pLk9_mZ4tWb8nYc3sHd6fJg1aEe5uTo0iPy"
UDP = "turn:turn.example.org:3478?transport=udp"
TCP = "turn:turn.example.org:3478?transport=tcp"
TLS = "turns:turn.example.org:443?transport=tcp"


def settings(**changes: object) -> TurnConfig:
    return dataclasses.replace(TurnConfig(urls=(UDP, TCP), secret=SECRET), **changes)  # type: ignore[arg-type]


def directives(text: str) -> list[tuple[str, str | None]]:
    """coturn's reading of its file: `name[=value]` per line, comments and blanks skipped."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        found.append((name, value if sep else None))
    return found


def values(text: str, name: str) -> list[str | None]:
    return [value for key, value in directives(text) if key == name]


def _in_ranges(ranges: list[str | None], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for text in ranges:
        assert text is not None
        low, _, high = text.partition("-")
        first, last = ipaddress.ip_address(low), ipaddress.ip_address(high or low)
        if first.version == ip.version and first <= ip <= last:  # type: ignore[operator]
            return True
    return False


def coturn_admits(text: str, address: str) -> bool:
    """Whether coturn 4.6 would relay to `address` with this file (its `good_peer_addr`:
    the unspecified address, multicast and loopback checks first, then allowed-peer-ip, then
    denied-peer-ip). `test_coturn_generated.py` checks the real coturn against the same lists."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:  # refused by coturn itself (it reads 0.0.0.0 and :: as "any")
        return False
    if ("no-multicast-peers", None) in directives(text) and ip.is_multicast:
        return False
    if ("allow-loopback-peers", None) not in directives(text) and ip.is_loopback:
        return False
    if _in_ranges(values(text, "allowed-peer-ip"), address):
        return True
    return not _in_ranges(values(text, "denied-peer-ip"), address)


def test_every_internal_address_is_refused_as_a_peer_and_public_ones_are_not() -> None:
    text = render_coturn_config(settings())
    # coturn reads the unspecified address as "any": such a range would refuse every peer
    starts = [r.partition("-")[0] for r in values(text, "denied-peer-ip") if r is not None]
    assert not [
        start for start in starts if ipaddress.ip_address(start) == ipaddress.ip_address("::")
    ]
    assert "0.0.0.0" not in values(text, "denied-peer-ip")
    refused = [address for address in INTERNAL if coturn_admits(text, address)]
    assert not refused, f"coturn would relay to {refused}"
    assert all(coturn_admits(text, address) for address in PUBLIC)
    assert not values(text, "allowed-peer-ip") and not values(text, "allow-loopback-peers")


def test_the_sfus_own_address_is_the_exception() -> None:
    text = render_coturn_config(
        settings(allowed_peer_ips=("10.0.0.0/29",)), sfu_addresses=("192.168.7.5",)
    )
    assert coturn_admits(text, "192.168.7.5") and coturn_admits(text, "10.0.0.7")
    # only those: the neighbours stay out
    assert not coturn_admits(text, "192.168.7.6") and not coturn_admits(text, "10.0.0.8")
    assert values(text, "allowed-peer-ip") == ["10.0.0.0-10.0.0.7", "192.168.7.5"]
    assert not coturn_admits(text, "127.0.0.1")  # no loopback allowance unless asked


def test_a_loopback_sfu_opens_its_address_and_no_other_loopback_one() -> None:
    text = render_coturn_config(settings(), sfu_addresses=("127.0.0.1",))
    assert ("allow-loopback-peers", None) in directives(text)
    assert coturn_admits(text, "127.0.0.1")
    assert not coturn_admits(text, "127.0.0.2") and not coturn_admits(text, "::1")


def test_authentication_and_hardening_directives() -> None:
    text = render_coturn_config(settings(realm="radio.example.org"))
    found = dict(directives(text))
    assert found["static-auth-secret"] == SECRET
    assert found["realm"] == "radio.example.org"
    for flag in (
        "use-auth-secret",
        "fingerprint",
        "no-cli",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "no-tcp-relay",
        "no-multicast-peers",
        "no-dtls",
    ):
        assert found[flag] is None, flag
    assert found["stale-nonce"] == "600"
    assert (found["user-quota"], found["total-quota"], found["max-bps"]) == ("10", "1000", "64000")
    assert (found["min-port"], found["max-port"]) == ("49152", "65535")
    assert found["userdb"] == ":memory:" and found["pidfile"] == ""  # nothing on disk
    assert "server-relay" not in found and "allow-loopback-peers" not in found
    assert text.count(SECRET) == 1  # on its one line


def test_listeners_follow_the_urls() -> None:
    udp_only = dict(directives(render_coturn_config(settings(urls=(UDP,)))))
    assert udp_only["listening-port"] == "3478"
    assert "no-tcp" in udp_only and "no-tls" in udp_only and "no-udp" not in udp_only
    both = dict(directives(render_coturn_config(settings())))
    assert "no-tcp" not in both and "no-udp" not in both and "tls-listening-port" not in both
    cert, key = Path("/etc/ssl/turn.pem"), Path("/etc/ssl/turn.key")
    tls_only = dict(
        directives(
            render_coturn_config(settings(urls=(TLS,), tls_cert_file=cert, tls_key_file=key))
        )
    )
    assert tls_only["tls-listening-port"] == "443" and "listening-port" not in tls_only
    assert (tls_only["cert"], tls_only["pkey"]) == (str(cert), str(key))
    assert "no-udp" in tls_only and "no-tcp" in tls_only and "no-tls" not in tls_only
    assert "no-tlsv1" in tls_only and "no-tlsv1_1" in tls_only


def test_addresses_quotas_and_logs_reach_the_file(tmp_path: Path) -> None:
    text = render_coturn_config(
        settings(
            listening_ips=("203.0.113.10", "2001:db8::10"),
            relay_ips=("203.0.113.10",),
            external_ip="198.51.100.7/10.0.0.7",
            relay_min_port=50000,
            relay_max_port=50999,
            user_quota=4,
            total_quota=200,
            max_bps=16000,
            log_file=str(tmp_path / "turn.log"),
        )
    )
    assert values(text, "listening-ip") == ["203.0.113.10", "2001:db8::10"]
    assert values(text, "relay-ip") == ["203.0.113.10"]
    assert values(text, "external-ip") == ["198.51.100.7/10.0.0.7"]
    found = dict(directives(text))
    assert (found["min-port"], found["max-port"]) == ("50000", "50999")
    assert (found["user-quota"], found["total-quota"], found["max-bps"]) == ("4", "200", "16000")
    assert found["log-file"] == str(tmp_path / "turn.log") and "simple-log" in found
    assert dict(directives(render_coturn_config(settings(log_file="syslog"))))["syslog"] is None


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"relay_min_port": 80}, "turn.relay_min_port"),
        ({"relay_max_port": 70000}, "turn.relay_max_port"),
        ({"relay_min_port": 50000, "relay_max_port": 49999}, "must be below turn.relay_max_port"),
        ({"relay_min_port": 50000, "relay_max_port": 50000}, "must be below turn.relay_max_port"),
        ({"listening_ips": ("turn.example.org",)}, "turn.listening_ips"),
        ({"relay_ips": ("10.0.0.300",)}, "turn.relay_ips"),
        ({"external_ip": "198.51.100.7/fd00::1"}, "one address family"),
        ({"external_ip": "public"}, "turn.external_ip"),
        ({"allowed_peer_ips": ("10.0.0.1/8",)}, "turn.allowed_peer_ips"),
        ({"allowed_peer_ips": ("::/0",)}, "allow every peer"),
        ({"allowed_peer_ips": ("0.0.0.0",)}, "allow every peer"),
        ({"tls_cert_file": Path("/etc/ssl/turn.pem")}, "go together"),
        ({"user_quota": 0}, "turn.user_quota"),
        ({"user_quota": 20, "total_quota": 10}, "turn.total_quota"),
        ({"max_bps": 1000}, "turn.max_bps"),
        ({"log_file": "turn.log"}, "absolute path"),
        ({"realm": "radio core"}, "turn.realm"),
    ],
)
def test_unusable_settings_are_refused_by_the_server_config(
    changes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(**changes)
    assert complaint in refused.value.message


def test_settings_load_from_file_environment_and_flags(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text('[turn]\nrelay_min_port = 50000\nallowed_peer_ips = ["10.0.0.5"]\n')
    config = load_server_config(
        file,
        {"RADIOCORE_SECRET": JWT_SECRET, "RADIOCORE_TURN__RELAY_MAX_PORT": "50100"},
        {"turn.max_bps": "32000"},
    )
    assert (config.turn.relay_min_port, config.turn.relay_max_port) == (50000, 50100)
    assert config.turn.allowed_peer_ips == ("10.0.0.5",) and config.turn.max_bps == 32000
    with pytest.raises(ConfigError) as refused:
        load_server_config(
            None, {"RADIOCORE_SECRET": JWT_SECRET, "RADIOCORE_TURN__RELAY_MIN_PORT": "1000"}
        )
    assert "turn.relay_min_port must be 1024" in refused.value.message


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"urls": ()}, "[turn] urls is empty"),
        ({"urls": (UDP, "turn:turn.example.org:3479?transport=tcp")}, "one port for turn:"),
        ({"urls": ("turn:turn.example.org:443", TLS)}, "different ports"),
        ({"urls": (UDP, TLS)}, "set turn.tls_cert_file and turn.tls_key_file"),
        ({"secret": ""}, "the TURN secret is not set"),
        ({"secret": "too-short"}, "shorter than 32"),
    ],
)
def test_what_coturn_cannot_be_given_is_refused_with_the_reason(
    changes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(CoturnConfigError) as refused:
        render_coturn_config(settings(**changes))
    assert complaint in str(refused.value)


@pytest.mark.parametrize("bad", [" ", "#", '"', "\\", "\n"])
def test_a_secret_coturn_cannot_read_back_is_refused_without_showing_it(bad: str) -> None:
    secret = "Uq9-wE3_rT6yIo1pAs4dFg7hJk0lZx2cVb5nM8" + bad + "tail"
    with pytest.raises(CoturnConfigError) as refused:
        render_coturn_config(settings(secret=secret))
    assert "printable ASCII" in str(refused.value)
    assert secret not in str(refused.value) and "Uq9-wE3" not in str(refused.value)
    assert "Uq9-wE3" not in repr(settings(secret=secret))


def test_the_file_is_written_mode_0600_even_over_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "turnserver.conf"
    path.write_text("old")
    path.chmod(0o644)
    text = render_coturn_config(settings())
    write_coturn_config(path, text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["turnserver.conf"]  # no temporary left
