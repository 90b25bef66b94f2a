"""coturn's configuration for a RadioCore deployment (`radiocore turn config`, `turn run`).

The file is derived from the server's own `[turn]` settings, so coturn and the server cannot
disagree on the secret, the realm or the ports: `turn:` URLs give coturn's plain listening port
(UDP and/or TCP, as the URLs' transports say), `turns:` URLs its TLS port (with the certificate
and key files). Everything else is hardening for a relay that only WebRTC media uses:

- `use-auth-secret`: only the time-limited credentials the server issues (`turn.credentials`)
  are accepted; no user database, no long-term passwords;
- peers: every private, loopback, link-local, carrier-grade NAT, documentation, multicast and
  otherwise special range is a `denied-peer-ip`, so a relay cannot be used to reach the
  deployment's internal network (the classic TURN SSRF); the SFU's own addresses (and any
  `allowed_peer_ips`) are the exceptions, as `allowed-peer-ip`, which coturn checks first;
- no TCP relay to peers (RFC 6062: WebRTC relays UDP only; clients may still reach coturn over
  TCP or TLS), no multicast peers, no RFC 5780 NAT discovery and no old STUN (amplification),
  no software version in replies, no telnet CLI, no DTLS listener (no browser uses it), TLS 1.2+;
- quotas: allocations per user and in total, and bytes per second per session.

The rendered text contains the shared secret (`static-auth-secret`): `write_coturn_config`
writes it with mode 0600, and nothing here logs it.

Standard library only (the `turn` rule): the server's `TurnConfig` is read through the
`TurnSettings` protocol, and its validation (`check_turn_settings`) lives here beside the
rendering that relies on it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from turn.credentials import MIN_SECRET_CHARS
from turn.urls import parse_ice_url

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Ranges no relay may send to (IANA special-purpose registries, RFC 6890 and successors):
#: what coturn's own example lists, plus multicast (also refused by `no-multicast-peers`).
#: Never a range that starts at `::` (or the single address 0.0.0.0): coturn reads the
#: unspecified address as "any", and `denied-peer-ip=::` denies every peer, IPv4 included. coturn
#: refuses `0.0.0.0` and `::` as peers by itself.
DENIED_PEER_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8",  # "this" network
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata services live here)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::1/128",  # loopback
        "::ffff:0:0/96",  # IPv4-mapped: would reach every IPv4 range above
        "64:ff9b::/96",  # NAT64: likewise
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, …)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: embeds IPv4 addresses
        "3fff::/20",  # documentation (RFC 9637)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)
_LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

#: coturn's defaults for the relay ports (RFC 5766's dynamic range).
DEFAULT_RELAY_MIN_PORT: Final = 49152
DEFAULT_RELAY_MAX_PORT: Final = 65535
#: Relay ports below this are refused: they would collide with services.
LOWEST_RELAY_PORT: Final = 1024
#: The least `max_bps` that still carries a voice call: Opus at ~24 to 64 kbit/s plus RTP, SRTP,
#: UDP and TURN framing at 50 packets a second, and the control channel.
MIN_MAX_BPS: Final = 8000
#: Where coturn may log: these words, or an absolute file path.
LOG_TARGETS: Final = ("stdout", "syslog")
#: A realm coturn can read back from its config file and put in a STUN attribute.
_REALM = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: Characters a secret may hold to be written into coturn's `key=value` file unquoted.
_SECRET_CHARS = re.compile(r"^[\x21-\x7e]+$")
_SECRET_FORBIDDEN: Final = frozenset("\"'#\\")


class CoturnConfigError(ValueError):
    """A setting coturn cannot be configured with; the message names the key."""


class TurnSettings(Protocol):
    """What the configuration is rendered from: `signaling.config.TurnConfig` (read-only)."""

    @property
    def urls(self) -> tuple[str, ...]: ...
    @property
    def secret(self) -> str: ...
    @property
    def realm(self) -> str: ...
    @property
    def relay_min_port(self) -> int: ...
    @property
    def relay_max_port(self) -> int: ...
    @property
    def listening_ips(self) -> tuple[str, ...]: ...
    @property
    def relay_ips(self) -> tuple[str, ...]: ...
    @property
    def external_ip(self) -> str: ...
    @property
    def allowed_peer_ips(self) -> tuple[str, ...]: ...
    @property
    def tls_cert_file(self) -> Path | None: ...
    @property
    def tls_key_file(self) -> Path | None: ...
    @property
    def user_quota(self) -> int: ...
    @property
    def total_quota(self) -> int: ...
    @property
    def max_bps(self) -> int: ...
    @property
    def log_file(self) -> str: ...


def check_turn_settings(turn: TurnSettings) -> None:
    """`CoturnConfigError` for the first coturn setting of `turn` that is unusable (the secret
    and the URLs are checked where they are used: the server needs them only with a relay)."""
    if not _REALM.match(turn.realm):
        raise CoturnConfigError("turn.realm must be 1 … 128 of A-Z a-z 0-9 . _ -")
    for key, port in (
        ("relay_min_port", turn.relay_min_port),
        ("relay_max_port", turn.relay_max_port),
    ):
        if not LOWEST_RELAY_PORT <= port <= 65535:
            raise CoturnConfigError(f"turn.{key} must be {LOWEST_RELAY_PORT} … 65535, not {port}")
    if turn.relay_min_port >= turn.relay_max_port:
        raise CoturnConfigError(
            f"turn.relay_min_port ({turn.relay_min_port}) must be below turn.relay_max_port "
            f"({turn.relay_max_port}): every allocation holds one relay port"
        )
    for key, values in (("listening_ips", turn.listening_ips), ("relay_ips", turn.relay_ips)):
        for value in values:
            _address(f"turn.{key}", value)
    if turn.external_ip:
        public, _, private = turn.external_ip.partition("/")
        first = _address("turn.external_ip", public)
        if private and _address("turn.external_ip", private).version != first.version:
            raise CoturnConfigError(
                "turn.external_ip: PUBLIC/PRIVATE must be of one address family"
            )
    for value in turn.allowed_peer_ips:
        _network("turn.allowed_peer_ips", value)
    if (turn.tls_cert_file is None) != (turn.tls_key_file is None):
        raise CoturnConfigError("turn.tls_cert_file and turn.tls_key_file go together")
    if turn.user_quota < 1:
        raise CoturnConfigError(f"turn.user_quota must be 1 or more, not {turn.user_quota}")
    if turn.total_quota < turn.user_quota:
        raise CoturnConfigError(
            f"turn.total_quota must be at least turn.user_quota ({turn.user_quota}), "
            f"not {turn.total_quota}"
        )
    if turn.max_bps < MIN_MAX_BPS:
        raise CoturnConfigError(
            f"turn.max_bps must be at least {MIN_MAX_BPS} bytes/s (a voice call), "
            f"not {turn.max_bps}"
        )
    if turn.log_file not in LOG_TARGETS and not Path(turn.log_file).is_absolute():
        raise CoturnConfigError(
            f"turn.log_file must be {' or '.join(LOG_TARGETS)} or an absolute path, "
            f"not {turn.log_file!r}"
        )


def secret_refusal(secret: str) -> str | None:
    """Why coturn cannot be given `secret` (a phrase naming no part of it), or None."""
    if not secret:
        return "the TURN secret is not set"
    if len(secret) < MIN_SECRET_CHARS:
        return f"the TURN secret is shorter than {MIN_SECRET_CHARS} characters"
    if not _SECRET_CHARS.match(secret) or _SECRET_FORBIDDEN.intersection(secret):
        return (
            "the TURN secret must be printable ASCII without spaces, quotes, # or \\ "
            "(coturn reads it from a key=value file)"
        )
    return None


def render_coturn_config(turn: TurnSettings, *, sfu_addresses: Sequence[str] = ()) -> str:
    """coturn's configuration file for `turn`; `sfu_addresses` (the SFU's ICE host addresses)
    are allowed as peers even in a denied range. `CoturnConfigError` says what is missing."""
    check_turn_settings(turn)
    listeners = _listeners(turn)
    refusal = secret_refusal(turn.secret)
    if refusal is not None:
        raise CoturnConfigError(
            f"{refusal}: set RADIOCORE_TURN__SECRET (or [turn] secret), e.g. "
            "\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\""
        )
    allowed = [
        *(_network("turn.allowed_peer_ips", value) for value in turn.allowed_peer_ips),
        *(_network("ice.host_addresses (the SFU)", value) for value in sfu_addresses),
    ]
    lines = [
        "# coturn configuration for RadioCore, written by `radiocore turn config` from the",
        "# server's [turn] settings: change those and write it again rather than editing it.",
        "# It holds the TURN shared secret: keep it mode 0600, readable only by coturn's user.",
        "# Run: turnserver -c <this file>   (`radiocore turn run` does it for you)",
        "",
        "# Only the time-limited credentials RadioCore issues (username <expiry>:<identity>,",
        "# password base64(HMAC-SHA1(secret, username))).",
        "use-auth-secret",
        f"static-auth-secret={turn.secret}",
        f"realm={turn.realm}",
        "",
        "# Where coturn listens, as the [turn] urls say.",
        *listeners,
        *(f"listening-ip={ip}" for ip in turn.listening_ips),
        *(f"relay-ip={ip}" for ip in turn.relay_ips),
        *([f"external-ip={turn.external_ip}"] if turn.external_ip else []),
        f"min-port={turn.relay_min_port}",
        f"max-port={turn.relay_max_port}",
        "",
        "# Hardening.",
        "fingerprint",
        "no-cli",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "response-origin-only-with-rfc5780",
        "stale-nonce=600",
        "no-tcp-relay",
        "no-multicast-peers",
        f"user-quota={turn.user_quota}",
        f"total-quota={turn.total_quota}",
        f"max-bps={turn.max_bps}",
        "",
        "# Peers: no private or special address, but the SFU's own (allowed-peer-ip wins).",
        *(f"denied-peer-ip={_range(net)}" for net in DENIED_PEER_NETWORKS),
        *(f"allowed-peer-ip={_range(net)}" for net in _unique(allowed)),
        # coturn refuses loopback peers before it reads either list
        *(["allow-loopback-peers"] if any(_is_loopback(net) for net in allowed) else []),
        "",
        "# No state on disk: no user database (an empty one in memory), no pid file.",
        "userdb=:memory:",
        "pidfile=",
        "",
        *_logging(turn.log_file),
    ]
    return "\n".join(lines) + "\n"


def write_coturn_config(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (it holds the secret),
    replacing the file atomically."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _listeners(turn: TurnSettings) -> list[str]:
    if not turn.urls:
        raise CoturnConfigError("[turn] urls is empty: there is no relay to configure")
    plain_ports: set[int] = set()
    tls_ports: set[int] = set()
    udp = tcp = False
    for url in turn.urls:
        try:
            parsed = parse_ice_url(url)
        except ValueError as exc:
            raise CoturnConfigError(f"turn.urls: {exc}") from None
        if parsed.scheme == "turns":
            tls_ports.add(parsed.port)
        elif parsed.scheme == "turn":
            plain_ports.add(parsed.port)
            udp = udp or parsed.transport in (None, "udp")
            tcp = tcp or parsed.transport == "tcp"
        else:
            raise CoturnConfigError(f"turn.urls: {url!r} is not a TURN URL (turn: or turns:)")
    if len(plain_ports) > 1 or len(tls_ports) > 1:
        raise CoturnConfigError(
            "turn.urls: coturn listens on one port for turn: (UDP and TCP) and one for turns: "
            f"(TLS); the URLs name turn: ports {sorted(plain_ports)} and turns: ports "
            f"{sorted(tls_ports)}"
        )
    if plain_ports & tls_ports:
        raise CoturnConfigError(
            "turn.urls: turn: and turns: URLs need different ports (coturn opens one listener "
            "for each)"
        )
    lines = [f"listening-port={port}" for port in plain_ports]
    lines += [f"tls-listening-port={port}" for port in tls_ports]
    if not udp:
        lines.append("no-udp")
    if not tcp:
        lines.append("no-tcp")
    lines.append("no-dtls")  # TURN over DTLS: no browser uses it
    if tls_ports:
        if turn.tls_cert_file is None or turn.tls_key_file is None:
            raise CoturnConfigError(
                "turn.urls has a turns: URL: set turn.tls_cert_file and turn.tls_key_file "
                "(PEM files coturn can read)"
            )
        lines += [
            f"cert={turn.tls_cert_file}",
            f"pkey={turn.tls_key_file}",
            "no-tlsv1",
            "no-tlsv1_1",
        ]
    else:
        lines.append("no-tls")
    return lines


def _logging(target: str) -> list[str]:
    if target == "syslog":
        return ["# Logs: to syslog.", "syslog"]
    if target == "stdout":
        return ["# Logs: to standard output (the journal, under systemd).", "log-file=stdout"]
    return [
        "# Logs: to this file, as named (rotate it with logrotate).",
        f"log-file={target}",
        "simple-log",
        "no-stdout-log",
    ]


def _address(key: str, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CoturnConfigError(f"{key}: {text!r} is not an IP address") from None


def _network(key: str, text: str) -> IPNetwork:
    try:
        net = ipaddress.ip_network(text)
    except ValueError:
        raise CoturnConfigError(
            f"{key}: {text!r} is not an IP address or network (ADDRESS or ADDRESS/PREFIX, "
            "with no host bits set)"
        ) from None
    if net.network_address.is_unspecified:
        raise CoturnConfigError(
            f"{key}: {text!r} starts at the unspecified address, which coturn reads as any "
            "address: it would allow every peer"
        )
    return net


def _range(net: IPNetwork) -> str:
    """coturn's `ip[-ip]` spelling of a network."""
    if net.num_addresses == 1:
        return str(net.network_address)
    return f"{net.network_address}-{net[-1]}"


def _is_loopback(net: IPNetwork) -> bool:
    return any(net.version == lo.version and net.overlaps(lo) for lo in _LOOPBACK)


def _unique(networks: Iterable[IPNetwork]) -> list[IPNetwork]:
    seen: list[IPNetwork] = []
    for net in networks:
        if net not in seen:
            seen.append(net)
    return seen
