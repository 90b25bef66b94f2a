"""The signaling server's configuration: one frozen `ServerConfig` per process.

Built by `load_server_config` from defaults → TOML file → environment (`RADIOCORE_…`) →
command-line overrides, then validated (see `radiocore.configlayers` for the layering rules).
Environment names: `RADIOCORE_<KEY>` for a top-level key, `RADIOCORE_<SECTION>__<KEY>` for a key
of a section, e.g. `RADIOCORE_SECRET`, `RADIOCORE_PORT`, `RADIOCORE_ICE__HOST_ADDRESSES`,
`RADIOCORE_LIMITS__MAX_SDP_CHARS`.

The JWT secret (and the previous ones still accepted), the database URL (which may carry a
password) and the other `secret=True` settings are secrets: never taken from a command-line
flag, and never shown in `repr`, `str`, `summary()`, an error message or `render_server_config`
(which prints them redacted). The flags of `radiocore serve` are derived from these dataclasses
(`radiocore.configlayers.add_config_flags`); every field says what it means (`setting`), and
deploy/server.example.toml lists them all (a test keeps it complete).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from radiocore.configlayers import LayeredConfigError, load_layered, render_toml, setting
from radiocore.logs import LOG_FORMATS
from radiocore_protocol import (
    DEADMAN_MIN_KEEPALIVES,
    KEEPALIVE_INTERVAL_S,
    MAX_DATA_MESSAGE_BYTES,
    MAX_DEADMAN_S,
    MAX_MESSAGES_PER_SECOND,
    MAX_SDP_CHARS,
    MAX_SOCKETIO_FRAME_BYTES,
    MIN_DEADMAN_S,
    deadman_refusal,
)
from signaling.errors import ConfigError
from signaling.tls import TlsError, check_pair
from turn.coturn_config import (
    DEFAULT_RELAY_MAX_PORT,
    DEFAULT_RELAY_MIN_PORT,
    MIN_MAX_BPS,
    CoturnConfigError,
    check_turn_settings,
)
from turn.credentials import MAX_TTL_S, MIN_TTL_S, TurnCredentialError, TurnCredentialIssuer
from turn.urls import parse_ice_url

#: `forwarding_lane`'s choices (media.lane.lane_named).
_LANES: Final = ("auto", "compiled", "python")

logger = logging.getLogger(__name__)

ENV_PREFIX: Final = "RADIOCORE_"
#: Variables under the prefix that are not server settings: the board agent's own
#: (`board_agent.config`, often exported in the same shell) and the password that
#: `radiocore user add` reads.
ENV_IGNORED_PREFIXES: Final = ("RADIOCORE_AGENT_", "RADIOCORE_PASSWORD")
MIN_SECRET_CHARS: Final = 32
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_SCHEMES: Final = ("sqlite", "postgres", "postgresql")
#: How peers may connect: any path, or only through the TURN relay.
TRANSPORT_POLICIES: Final = ("all", "relay")
# Upper bounds of limits the protocol does not fix: beyond them a setting is a mistake.
MAX_LISTENER_QUEUE_PACKETS: Final = 1024  # 20 s of 20 ms audio
MAX_BUFFERED_DATA_BYTES: Final = 16 * 1024 * 1024
MAX_EARLY_CANDIDATES: Final = 1024
#: The seed's sign-in limit per client address (`signaling.ratelimit.LOGIN_PER_ADDRESS`), and
#: the most a server may allow (a benchmark raises it: bench/api.py).
DEFAULT_LOGINS_PER_MINUTE: Final = 5
MAX_LOGINS_PER_MINUTE: Final = 1_000_000

# Fragments of the placeholders people copy from examples; a secret containing one is refused.
_PLACEHOLDER_FRAGMENTS: Final = (
    "change-me",
    "changeme",
    "change_me",
    "change-this",
    "changethis",
    "replace-me",
    "replaceme",
    "placeholder",
    "example",
    "your-secret",
    "yoursecret",
    "your_secret",
)
# A real random secret of 32+ characters has far more distinct characters than this.
_MIN_DISTINCT_SECRET_CHARS: Final = 8

_SECRET_HOWTO: Final = (
    "set a random secret of at least 32 characters in the environment variable "
    'RADIOCORE_SECRET (for example: export RADIOCORE_SECRET="$(python3 -c '
    '\'import secrets; print(secrets.token_urlsafe(48))\')"), or `secret = "…"` in the config '
    "file"
)


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class IceConfig:
    """ICE as the server's peer connections and its clients see it."""

    host_addresses: tuple[str, ...] = setting(
        (),
        "addresses ICE gathers host candidates on; empty: every interface",
        flag="--ice-host-address",
        metavar="IP",
    )
    servers: tuple[str, ...] = setting(
        (),
        "STUN URLs (stun:HOST[:PORT], stuns:) given to every peer; TURN URLs go in [turn]; "
        "empty: none (never a library default)",
        flag="--ice-server",
        metavar="URL",
    )
    transport_policy: str = setting(
        "all",
        "all: peers use whatever path works; relay: every operator and station is told to use "
        "only the TURN relay (needs [turn] urls)",
        choices=TRANSPORT_POLICIES,
    )
    announced_address: str = setting(
        "",
        "the public IPv4 address the SFU's host candidates announce in place of the address "
        "they bind (a server behind 1:1 NAT, as in most clouds); empty: the bound address",
        metavar="IP",
    )
    udp_port_min: int = setting(
        0,
        "lowest UDP port of the SFU's media (one port per peer connection; open this range "
        "in the firewall); 0 with udp_port_max 0: any port",
    )
    udp_port_max: int = setting(0, "highest UDP port of the SFU's media (inclusive)")
    udp_port: int = setting(
        0,
        "one UDP port every peer connection shares (open only this one in the firewall, plus "
        "one more per media worker: worker N uses udp_port + N); 0: a port per peer "
        "connection (udp_port_min … udp_port_max)",
    )
    connect_timeout_s: float = setting(
        8.0,
        "seconds from the answer for a peer's media to come up; then the peer is told "
        "(`media_failed`) and its connection closed (1 … 60; aioice alone waits ~63 s)",
    )


@dataclass(frozen=True)
class TurnConfig:
    """The TURN relay (coturn with use-auth-secret) for peers that no direct path reaches."""

    urls: tuple[str, ...] = setting(
        (),
        "TURN URLs in order of preference (turn:HOST:3478?transport=udp, "
        "turn:HOST:3478?transport=tcp, turns:HOST:443?transport=tcp): aiortc peers use the "
        "first, browsers try all; empty: no relay",
        flag="--turn-url",
        metavar="URL",
    )
    secret: str = setting(
        "",
        "coturn's static-auth-secret (32+ characters); per-client credentials are derived "
        "from it and it never leaves the server",
        secret=True,
    )
    ttl_s: int = setting(
        3600,
        f"seconds a client's TURN credentials stay valid for new allocations "
        f"({MIN_TTL_S} … {MAX_TTL_S}; a relay in use outlives them)",
    )
    realm: str = setting("radiocore", "coturn's realm (radiocore turn config writes it)")
    check_interval_s: float = setting(
        60.0,
        "seconds between checks that the relay grants an allocation (shown by /health and "
        "/ready; a relay that dies or comes back is noticed this soon); 0: only at start",
    )
    sfu_relay: bool = setting(
        False,
        "the SFU's own connections use the relay too (only for a server that cannot receive "
        "UDP directly: each connection then holds a second allocation)",
    )
    # coturn's own settings: `radiocore turn config` writes them into its configuration
    relay_min_port: int = setting(
        DEFAULT_RELAY_MIN_PORT, "coturn: lowest UDP port of its relay endpoints (1024 … 65535)"
    )
    relay_max_port: int = setting(
        DEFAULT_RELAY_MAX_PORT,
        "coturn: highest UDP port of its relay endpoints (one per allocation; open the range "
        "in the firewall)",
    )
    listening_ips: tuple[str, ...] = setting(
        (), "coturn: addresses it listens on; empty: every address", metavar="IP"
    )
    relay_ips: tuple[str, ...] = setting(
        (),
        "coturn: addresses its relay endpoints use; empty: the one a client came in on",
        metavar="IP",
    )
    external_ip: str = setting(
        "",
        "coturn behind 1:1 NAT: PUBLIC or PUBLIC/PRIVATE address it announces for its relay "
        "endpoints; empty: none",
        metavar="IP[/IP]",
    )
    allowed_peer_ips: tuple[str, ...] = setting(
        (),
        "coturn: peer addresses or networks (ADDRESS[/PREFIX]) it may relay to although they "
        "are private or special (every such range is denied); ice.host_addresses, the SFU's "
        "own, are always allowed",
        metavar="IP",
    )
    tls_cert_file: Path | None = setting(
        None, "coturn: PEM certificate (chain) for turns: URLs; required with one"
    )
    tls_key_file: Path | None = setting(
        None, "coturn: PEM private key of tls_cert_file, readable by coturn's user only"
    )
    user_quota: int = setting(
        10,
        "coturn: concurrent allocations per credential (a client holds one or two; with "
        "sfu_relay, the SFU's connections opened within one second share one)",
    )
    total_quota: int = setting(1000, "coturn: concurrent allocations in all")
    max_bps: int = setting(
        64_000,
        f"coturn: bytes per second one relayed session may carry, each way (at least "
        f"{MIN_MAX_BPS}, a voice call; 64000 = 0.5 Mbit/s)",
    )
    log_file: str = setting(
        "stdout",
        "coturn's log: stdout (the journal under systemd), syslog, or an absolute file path",
    )

    def __post_init__(self) -> None:
        try:
            check_turn_settings(self)
        except CoturnConfigError as exc:
            raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what clients may send and on what the server buffers (each one enforced).

    The protocol promises peers its maxima (`radiocore_protocol`): the server may be stricter,
    never looser.
    """

    max_sdp_chars: int = setting(
        MAX_SDP_CHARS, "longest SDP offer or answer a peer may send, in characters"
    )
    max_data_message_bytes: int = setting(
        MAX_DATA_MESSAGE_BYTES,
        "largest data-channel message a peer may send, in bytes (larger ones get `too_large`)",
    )
    listener_queue_packets: int = setting(
        64, "audio packets queued per listener before the oldest is dropped"
    )
    max_http_buffer_bytes: int = setting(
        MAX_SOCKETIO_FRAME_BYTES,
        "largest Socket.IO frame or HTTP request body the server reads, in bytes; it must hold "
        "the longest SDP",
    )
    max_json_body_bytes: int = setting(
        16_384, "largest JSON body of a REST request, in bytes (at most max_http_buffer_bytes)"
    )
    max_events_per_second: int = setting(
        MAX_MESSAGES_PER_SECOND,
        "Socket.IO events one connection may send per second; the excess gets `rate_limited`",
    )
    max_data_messages_per_second: int = setting(
        MAX_MESSAGES_PER_SECOND,
        "data-channel messages one peer may send per second; the excess gets `rate_limited`",
    )
    max_buffered_data_bytes: int = setting(
        262_144,
        "data-channel bytes queued to one peer before further messages to it are dropped "
        "(a slow peer must not make the server hoard memory)",
    )
    max_connections_per_user: int = setting(
        16,
        "Socket.IO connections one account may hold open on this node (tabs, devices, "
        "programs); one more is refused `rate_limited` (1 … 1000)",
    )
    max_boards_per_connection: int = setting(
        8,
        "boards one connection may have joined at once (each holds a peer connection); one "
        "more is refused `rate_limited` (1 … 100)",
    )
    max_early_candidates: int = setting(
        32,
        "trickled ICE candidates kept for a connection whose offer is still being applied; "
        "later ones are dropped",
    )
    login_per_minute: int = setting(
        DEFAULT_LOGINS_PER_MINUTE,
        "sign-in attempts (POST /api/auth/login, good or bad) one client address may make a "
        "minute: a burst of this many, then one every 60/N s; the excess gets 429 with "
        f"Retry-After (1 … {MAX_LOGINS_PER_MINUTE}; raise it only for a benchmark)",
    )

    def __post_init__(self) -> None:
        # (key, value, lowest, highest, why the bound): the protocol's maxima first, since a
        # peer may rely on them (the server may be stricter, never looser)
        bounds: tuple[tuple[str, int, int, int, str], ...] = (
            ("max_sdp_chars", self.max_sdp_chars, 1, MAX_SDP_CHARS, ""),
            ("max_data_message_bytes", self.max_data_message_bytes, 1, MAX_DATA_MESSAGE_BYTES, ""),
            ("max_events_per_second", self.max_events_per_second, 1, MAX_MESSAGES_PER_SECOND, ""),
            (
                "max_data_messages_per_second",
                self.max_data_messages_per_second,
                1,
                MAX_MESSAGES_PER_SECOND,
                "",
            ),
            (
                "max_http_buffer_bytes",
                self.max_http_buffer_bytes,
                self.max_sdp_chars,
                MAX_SOCKETIO_FRAME_BYTES,
                " (a frame must hold the longest SDP, limits.max_sdp_chars)",
            ),
            (
                "max_json_body_bytes",
                self.max_json_body_bytes,
                1,
                self.max_http_buffer_bytes,
                " (limits.max_http_buffer_bytes bounds every request body)",
            ),
            (
                "listener_queue_packets",
                self.listener_queue_packets,
                1,
                MAX_LISTENER_QUEUE_PACKETS,
                "",
            ),
            (
                "max_buffered_data_bytes",
                self.max_buffered_data_bytes,
                self.max_data_message_bytes,
                MAX_BUFFERED_DATA_BYTES,
                " (it must hold one message, limits.max_data_message_bytes)",
            ),
            ("max_early_candidates", self.max_early_candidates, 1, MAX_EARLY_CANDIDATES, ""),
            ("max_connections_per_user", self.max_connections_per_user, 1, 1000, ""),
            ("max_boards_per_connection", self.max_boards_per_connection, 1, 100, ""),
            ("login_per_minute", self.login_per_minute, 1, MAX_LOGINS_PER_MINUTE, ""),
        )
        for name, value, lowest, highest, why in bounds:
            if not lowest <= value <= highest:
                raise ConfigError(
                    f"limits.{name} must be between {lowest} and {highest}{why}, not {value}"
                )


@dataclass(frozen=True)
class FloorConfig:
    """Transmit safety: the server's dead-man and TX time-out (the station has its own)."""

    deadman_s: float = setting(
        1.0,
        "seconds without a keep-alive from the floor holder before PTT is released; "
        f"{MIN_DEADMAN_S:g} … {MAX_DEADMAN_S:g} (at least {DEADMAN_MIN_KEEPALIVES} keep-alive "
        f"intervals of {KEEPALIVE_INTERVAL_S:g} s)",
    )
    tx_timeout_s: float = setting(
        180.0, "longest continuous transmission, seconds (3 min is the usual remote default)"
    )
    tx_warning_s: float = setting(
        10.0, "seconds before the TX time-out at which the holder is warned (0: no warning)"
    )

    def __post_init__(self) -> None:
        refusal = deadman_refusal("floor.deadman_s", self.deadman_s)
        if refusal is not None:
            raise ConfigError(refusal)
        if not 1 <= self.tx_timeout_s <= 86400:
            raise ConfigError(f"floor.tx_timeout_s must be 1 … 86400 s, not {self.tx_timeout_s}")
        if not 0 <= self.tx_warning_s < self.tx_timeout_s:
            raise ConfigError(
                f"floor.tx_warning_s must be 0 or more and below floor.tx_timeout_s, "
                f"not {self.tx_warning_s}"
            )


@dataclass(frozen=True)
class AccessConfig:
    """Admission re-checked during sessions: rights live in the store, not in the token."""

    recheck_s: float = setting(
        2.0,
        "seconds between re-checks of every connected guest's access against the store (a "
        "withdrawn right, a cancelled booking, a block or a deleted account ends the session "
        "within this); a booking's end is acted on at its time; 0.05 … 60",
    )
    listen_grace_s: float = setting(
        5.0,
        "seconds a guest whose booking ended may still listen after its transmit right ended "
        "(the console shows why); 0 … 300",
    )

    def __post_init__(self) -> None:
        if not 0.05 <= self.recheck_s <= 60:
            raise ConfigError(f"access.recheck_s must be 0.05 … 60 s, not {self.recheck_s}")
        if not 0 <= self.listen_grace_s <= 300:
            raise ConfigError(f"access.listen_grace_s must be 0 … 300 s, not {self.listen_grace_s}")


@dataclass(frozen=True)
class MetricsConfig:
    """`GET /metrics` (Prometheus): answered on loopback, or to whoever sends the token."""

    token: str = setting(
        "",
        "a bearer token (32+ random characters) that opens GET /metrics to a scraper that is not "
        "on this machine (`Authorization: Bearer TOKEN`); empty: loopback only, never through a "
        "proxy",
        secret=True,
    )


@dataclass(frozen=True)
class ClusterConfig:
    """Several nodes sharing `redis_url`: which node each station is connected to."""

    node_name: str = setting(
        "",
        "this node's name in logs and in Redis, unique among the nodes; empty: the host name and "
        "a random suffix",
    )
    node_url: str = setting(
        "",
        "where the other nodes reach this one (http://ADDRESS:PORT/, on the network between "
        "the nodes) to pass on the requests of operators connected to them for this node's "
        "stations; empty: http://HOST:PORT/ from host and port when host is one address",
    )
    public_url: str = setting(
        "",
        "where board agents reach this node directly, as their --server/--other-server names it "
        "(https://node2.radio.example.org/); an agent connecting to another node may be placed "
        "on this one under that URL; empty: node_url",
    )
    placement_margin: int = setting(
        20,
        "with redis_url: a board agent connecting to this node that names other nodes it can "
        "reach is sent to the least loaded of them when this node serves more peer connections "
        "than it by more than this (its station is then on that node); -1: never",
    )
    presence_ttl_s: float = setting(
        9.0,
        "with redis_url: a node's presence entries (itself, its stations) expire this long after "
        "its last heartbeat (one every third of it), so a dead node's stations are shown offline "
        "everywhere within about this; 1.5 … 120",
    )

    relay_listeners: bool = setting(
        True,
        "with redis_url: operators who may only listen, connected to this node for a station on "
        "another node, get its audio from this node, which receives it once for all of them "
        "(a cascaded room); false: their media goes to the station's node, as an operator's who "
        "may transmit always does",
    )

    def __post_init__(self) -> None:
        if self.node_url and urlsplit(self.node_url).scheme not in ("http", "https"):
            raise ConfigError(f"cluster.node_url {self.node_url!r} must be http:// or https://")
        if self.public_url and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ConfigError(f"cluster.public_url {self.public_url!r} must be http:// or https://")
        if self.placement_margin < -1:
            raise ConfigError(
                f"cluster.placement_margin must be -1 (never) or more, not {self.placement_margin}"
            )
        if not 1.5 <= self.presence_ttl_s <= 120:
            raise ConfigError(
                f"cluster.presence_ttl_s must be 1.5 … 120 s, not {self.presence_ttl_s}"
            )
        name = self.node_name
        if name and not (len(name) <= 64 and name.isprintable() and ":" not in name):
            raise ConfigError(
                f"cluster.node_name {name!r}: at most 64 printable characters, no colon"
            )


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process is configured with; build it with `load_server_config`."""

    host: str = setting("127.0.0.1", "address to listen on", metavar="HOST")
    port: int = setting(8080, "port to listen on; 0 lets the operating system pick a free one")
    secret: str = setting(
        "",
        "signs operators' JWTs: a random secret of at least 32 characters; required unless demo",
        secret=True,
    )
    previous_secrets: tuple[str, ...] = setting(
        (),
        "JWT signing keys rotated out that tokens are still accepted from (never signed with): "
        "keep the old secret here for at least jwt_ttl_s after changing secret, then remove it; "
        "each is checked like secret; in the environment comma- or newline-separated",
        secret=True,
    )
    workers: int = setting(
        0,
        "server processes on this machine, this one included: operators who may only listen to "
        "this node's stations are placed on the least loaded (each extra process, a media "
        "worker, receives a station once and forwards it to its listeners); 0: one per core",
    )
    worker_spill_listeners: int = setting(
        100,
        "with workers above 1: the media workers start only once this process serves this "
        "many listeners (about a third of a core), so a small station spends no memory on them; "
        "0: they start with the server and take listeners from the first",
    )
    demo: bool = setting(
        False,
        "demo mode: an ephemeral secret is generated when none is set (tokens stop working "
        "at a restart)",
    )
    data_dir: Path = setting(
        Path("./radiocore-data"), "directory of the SQLite database and other state"
    )
    database_url: str = setting(
        "",
        "empty: the SQLite file data_dir/radiocore.sqlite3; else sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST/DB (a secret: it may carry a password)",
        secret=True,
        redact=redact_url,
    )
    redis_url: str = setting(
        "",
        "empty: rate limits (and, with scale-out, presence and rooms) in this process; else "
        "redis://[:PASSWORD@]HOST:PORT/DB, shared by every node (a secret: it may carry a "
        "password)",
        secret=True,
        redact=redact_url,
    )
    jwt_audience: str = setting("radiocore", "the `aud` claim tokens carry and must carry")
    jwt_issuer: str = setting(
        "", "the `iss` claim tokens carry and must carry; empty: none, and none is checked"
    )
    jwt_ttl_s: int = setting(
        900,
        "seconds an operator's access token (JWT) stays valid; clients renew it with their "
        "refresh token before then (POST /api/auth/refresh)",
    )
    jwt_leeway_s: float = setting(
        5.0, "clock difference tolerated between the nodes that issue and check tokens, seconds"
    )
    refresh_ttl_s: int = setting(
        30 * 86400,
        "seconds a refresh token stays valid unused: a sign-in lasts this long without the "
        "password (each refresh hands out a new token, valid this long again)",
    )
    log_level: str = setting(
        "INFO", f"log level: {', '.join(LOG_LEVELS)} (any case)", metavar="LEVEL"
    )
    log_format: str = setting(
        "text",
        "text: one readable line per message; json: one JSON object per line (time, level, "
        "logger, message, and board_id / operator_id where the line is about one)",
        choices=LOG_FORMATS,
    )
    media_latency_sample_every: int = setting(
        0, "record the SFU's ingress → egress latency of every Nth forwarded packet (0: off)"
    )
    forwarding_lane: str = setting(
        "auto",
        "the code that forwards audio to each listener: auto (the compiled lane when it is "
        "built, else pure Python), compiled (refuse to start without it), python",
    )
    web_root: Path | None = setting(
        None, "directory the operator console is served from; unset: the installed web package"
    )
    tls_cert_file: Path | None = setting(
        None,
        "HTTPS served by the server itself: PEM certificate chain (the server's certificate "
        "first, as certbot's fullchain.pem), with tls_key_file; reloaded when the file changes "
        "or on SIGHUP; unset: plain HTTP (for 127.0.0.1, or behind a TLS reverse proxy)",
        metavar="FILE",
    )
    tls_key_file: Path | None = setting(
        None,
        "PEM private key of tls_cert_file, unencrypted (keep it readable only by the server)",
        metavar="FILE",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "addresses or networks of reverse proxies in front of the server (e.g. 127.0.0.1 for "
        "deploy/nginx): a request from one of them is taken to come from the address its "
        "X-Forwarded-For names (rate limits are per client address); empty: none",
        flag="--trusted-proxy",
        metavar="IP",
    )
    ice: IceConfig = field(default_factory=IceConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    floor: FloorConfig = field(default_factory=FloorConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    #: True when `validate` generated the secret (demo mode): tokens do not survive a restart.
    #: Not configurable.
    secret_is_ephemeral: bool = field(default=False, init=False)

    def summary(self) -> str:
        """One line for the start-up log: every setting, with secrets masked."""
        if not self.secret:
            secret = "<unset>"
        elif self.secret_is_ephemeral:
            secret = "<ephemeral>"
        else:
            secret = "<set>"
        parts = [
            f"host={self.host}",
            f"port={self.port}",
            f"demo={self.demo}",
            f"secret={secret}",
            f"previous_secrets=<{len(self.previous_secrets)} set>",
            f"data_dir={self.data_dir}",
            f"database={redact_url(self.database_url) or 'sqlite (data_dir)'}",
            f"redis={redact_url(self.redis_url) or '(none: in-process)'}",
            f"jwt_audience={self.jwt_audience}",
            f"jwt_issuer={self.jwt_issuer or '-'}",
            f"jwt_ttl_s={self.jwt_ttl_s}",
            f"refresh_ttl_s={self.refresh_ttl_s}",
            f"log_level={self.log_level}",
            f"log_format={self.log_format}",
            f"media_latency_sample_every={self.media_latency_sample_every}",
            f"forwarding_lane={self.forwarding_lane}",
            f"web_root={self.web_root or '(installed web package)'}",
            f"tls_cert_file={self.tls_cert_file or '-'}",
            f"tls_key_file={self.tls_key_file or '-'}",
            f"ice.host_addresses={','.join(self.ice.host_addresses) or '(all interfaces)'}",
            f"ice.servers={','.join(self.ice.servers) or '(none)'}",
            f"ice.transport_policy={self.ice.transport_policy}",
            f"ice.announced_address={self.ice.announced_address or '-'}",
            f"ice.udp_ports={self.ice.udp_port_min}-{self.ice.udp_port_max}",
            f"ice.udp_port={self.ice.udp_port or '-'}",
            f"turn.urls={','.join(self.turn.urls) or '(none)'}",
            f"turn.secret={'<set>' if self.turn.secret else '<unset>'}",
            f"turn.ttl_s={self.turn.ttl_s}",
            f"limits={self.limits}",
            f"floor={self.floor}",
            f"access={self.access}",
            f"metrics.token={'<set>' if self.metrics.token else '<unset>'}",
            f"cluster={self.cluster}",
        ]
        return " ".join(parts)


def load_server_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    *,
    sources: MutableMapping[str, str] | None = None,
) -> ServerConfig:
    """The validated configuration from defaults, `file`, `env` (pass `os.environ`), overrides
    (from flags: never a secret). `sources` receives the layer of every key set (see
    `radiocore.configlayers.load_layered`).

    Raises `ConfigError` naming the offending key and where it came from.
    """
    try:
        config = load_layered(
            ServerConfig,
            file=file,
            env=env if env is not None else {},
            env_prefix=ENV_PREFIX,
            env_ignore=ENV_IGNORED_PREFIXES,
            overrides=overrides if overrides is not None else {},
            sources=sources,
        )
    except LayeredConfigError as exc:
        raise ConfigError(str(exc)) from None
    return validate(config)


def validate(config: ServerConfig) -> ServerConfig:
    """`config` checked and completed (log level upper-cased, demo secret generated)."""
    if not config.host:
        raise ConfigError("host must not be empty")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port} is outside 0 … 65535")
    if not 0 <= config.workers <= 256:
        raise ConfigError(f"workers must be 0 (one per core) … 256, not {config.workers}")
    if not 0 <= config.worker_spill_listeners <= 100_000:
        raise ConfigError(
            f"worker_spill_listeners must be 0 … 100000, not {config.worker_spill_listeners}"
        )
    workers = config.workers or max(1, os.cpu_count() or 1)
    if config.ice.udp_port and config.ice.udp_port + workers - 1 > 65535:
        raise ConfigError(
            f"ice.udp_port {config.ice.udp_port}: with {workers} process(es) the media ports "
            f"would reach {config.ice.udp_port + workers - 1} (each worker uses the next port)"
        )
    log_level = config.log_level.upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level {config.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    log_format = config.log_format.lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"log_format {config.log_format!r} is not one of {', '.join(LOG_FORMATS)}"
        )
    if config.metrics.token:
        weak = secret_problem(config.metrics.token)
        if weak is not None:
            raise ConfigError(
                f"metrics.token {weak}: set a random token of at least {MIN_SECRET_CHARS} "
                "characters (RADIOCORE_METRICS__TOKEN), or none for loopback-only scraping"
            )
    if not config.jwt_audience:
        raise ConfigError("jwt_audience must not be empty")
    if config.jwt_ttl_s <= 0:
        raise ConfigError(f"jwt_ttl_s must be positive, not {config.jwt_ttl_s}")
    if not 0 <= config.jwt_leeway_s < config.jwt_ttl_s:
        raise ConfigError(
            f"jwt_leeway_s must be between 0 and jwt_ttl_s, not {config.jwt_leeway_s}"
        )
    if config.refresh_ttl_s <= 0:
        raise ConfigError(f"refresh_ttl_s must be positive, not {config.refresh_ttl_s}")
    if config.forwarding_lane not in _LANES:
        raise ConfigError(
            f"forwarding_lane must be one of {', '.join(_LANES)}, not {config.forwarding_lane!r}"
        )
    if config.forwarding_lane == "compiled" and importlib.util.find_spec("media._lane") is None:
        raise ConfigError(
            "forwarding_lane = compiled, but the compiled lane (media._lane) is not built: "
            "install a C compiler and Python's headers, then reinstall RadioCore"
        )
    if config.media_latency_sample_every < 0:
        raise ConfigError(
            "media_latency_sample_every must be 0 (off) or more, "
            f"not {config.media_latency_sample_every}"
        )
    for proxy in config.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"trusted_proxies: {proxy!r} is not an IP address or network"
            ) from None
    _check_database_url(config.database_url)
    if config.redis_url and urlsplit(config.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"redis_url {redact_url(config.redis_url)!r} must be redis://, rediss:// or unix://"
        )
    _check_ice(config.ice, config.turn)
    _check_tls(config.tls_cert_file, config.tls_key_file)

    previous_secrets = _check_previous_secrets(config.previous_secrets, config.secret)
    problem = secret_problem(config.secret)
    if problem is not None and (config.secret or not config.demo):
        alternative = (
            "leave it unset in demo mode to get an ephemeral one"
            if config.demo
            else "for a throw-away demo, set RADIOCORE_DEMO=true instead"
        )
        raise ConfigError(
            f"refusing to start: the JWT secret {problem}; {_SECRET_HOWTO}; {alternative}"
        )
    ephemeral = problem is not None  # demo mode without a secret
    secret = secrets.token_urlsafe(48) if ephemeral else config.secret
    checked = dataclasses.replace(
        config,
        log_level=log_level,
        log_format=log_format,
        secret=secret,
        previous_secrets=previous_secrets,
    )
    if ephemeral:
        logger.warning(
            "demo mode: no secret set, generated an ephemeral one; "
            "tokens stop working when the server restarts"
        )
        # init=False keeps the flag out of every config layer; only this function sets it
        object.__setattr__(checked, "secret_is_ephemeral", True)
    return checked


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a real secret (a phrase for an error message), or None if it is."""
    if not secret:
        return "is not set"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    lowered = secret.lower()
    if any(fragment in lowered for fragment in _PLACEHOLDER_FRAGMENTS):
        return "is a placeholder from an example"
    if len(set(secret)) < _MIN_DISTINCT_SECRET_CHARS:
        return "is not random (too few distinct characters)"
    return None


def _check_previous_secrets(previous: tuple[str, ...], current: str) -> tuple[str, ...]:
    """`previous_secrets` split into keys (a value may hold several, one a line, as a multi-line
    environment variable does) and each checked like the current secret; never echoes one."""
    keys = tuple(line.strip() for item in previous for line in item.splitlines() if line.strip())
    seen: set[str] = set()
    for number, key in enumerate(keys, start=1):
        problem = secret_problem(key)
        if problem is not None:
            raise ConfigError(
                f"refusing to start: previous_secrets #{number} {problem}; a previous key is "
                "one the server signed with before (RADIOCORE_PREVIOUS_SECRETS, comma- or "
                "newline-separated)"
            )
        if key == current:
            raise ConfigError(
                f"previous_secrets #{number} is the current secret: to rotate, set the new key "
                "as secret and move the old one to previous_secrets"
            )
        if key in seen:
            raise ConfigError(f"previous_secrets #{number} repeats an earlier one")
        seen.add(key)
    return keys


def _check_ice(ice: IceConfig, turn: TurnConfig) -> None:
    if ice.announced_address:
        try:
            announced = ipaddress.ip_address(ice.announced_address)
        except ValueError:
            raise ConfigError(
                f"ice.announced_address: {ice.announced_address!r} is not an IP address"
            ) from None
        if announced.version != 4 or announced.is_unspecified or announced.is_multicast:
            raise ConfigError(
                f"ice.announced_address: {ice.announced_address!r} must be a unicast IPv4 address"
            )
    for address in ice.host_addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"ice.host_addresses: {address!r} is not an IP address") from None
    if not 1.0 <= ice.connect_timeout_s <= 60.0:
        raise ConfigError(f"ice.connect_timeout_s {ice.connect_timeout_s} is outside 1 … 60 s")
    low, high = ice.udp_port_min, ice.udp_port_max
    if (low, high) != (0, 0) and not 1024 <= low <= high <= 65535:
        raise ConfigError(
            f"ice.udp_port_min/udp_port_max: {low}-{high} is not a range within 1024 … 65535 "
            "(or 0-0 for any port)"
        )
    if ice.udp_port and not 1024 <= ice.udp_port <= 65535:
        raise ConfigError(f"ice.udp_port: {ice.udp_port} is not within 1024 … 65535 (or 0)")
    if ice.udp_port and (low, high) != (0, 0):
        raise ConfigError(
            "ice.udp_port and ice.udp_port_min/udp_port_max are both set: one shared port or a "
            "port per peer connection, not both"
        )
    for url in ice.servers:
        try:
            parsed = parse_ice_url(url)
        except ValueError as exc:
            raise ConfigError(f"ice.servers: {exc}") from None
        if parsed.is_turn:
            raise ConfigError(
                f"ice.servers: {url!r} is a TURN URL: put it in [turn] urls, with [turn] secret"
            )
    for url in turn.urls:
        try:
            parsed = parse_ice_url(url)
        except ValueError as exc:
            raise ConfigError(f"turn.urls: {exc}") from None
        if not parsed.is_turn:
            raise ConfigError(f"turn.urls: {url!r} is not a TURN URL (turn: or turns:)")
    if turn.urls:
        try:
            TurnCredentialIssuer(turn.secret, turn.ttl_s)
        except TurnCredentialError as exc:
            raise ConfigError(
                f"turn: {exc} (set RADIOCORE_TURN__SECRET or [turn] secret: the same as "
                "coturn's static-auth-secret)"
            ) from None
    if turn.check_interval_s != 0 and not 5 <= turn.check_interval_s <= 86400:
        raise ConfigError(
            f"turn.check_interval_s must be 0 (only at start) or 5 … 86400 s, "
            f"not {turn.check_interval_s}"
        )
    if ice.transport_policy == "relay" and not turn.urls:
        raise ConfigError("ice.transport_policy = relay needs a relay: set [turn] urls")


def _check_tls(cert_file: Path | None, key_file: Path | None) -> None:
    if cert_file is None and key_file is None:
        return
    if cert_file is None or key_file is None:
        raise ConfigError(
            "tls_cert_file and tls_key_file go together: set both (HTTPS) or neither (HTTP)"
        )
    for name, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ConfigError(f"{name} {str(path)!r} is not a file this process can read")
    try:
        check_pair(cert_file, key_file)
    except TlsError as exc:
        raise ConfigError(f"tls_cert_file/tls_key_file: {exc}") from None


def _check_database_url(url: str) -> None:
    if not url:
        return
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(
            f"database_url {redact_url(url)!r} must be empty (SQLite in data_dir), "
            "sqlite:///<path> or postgresql://…"
        )


def render_server_config(config: ServerConfig, sources: Mapping[str, str] | None = None) -> str:
    """The effective configuration as TOML `load_server_config` reads back, secrets redacted
    (`radiocore config show`); `sources` (from `load_server_config`) names each value's layer."""
    shown = dict(sources or {})
    if config.secret_is_ephemeral:
        shown["secret"] = "demo mode: generated, ephemeral"
    header = (
        "# RadioCore server: the effective configuration, from defaults, the --config file,\n"
        f"# {ENV_PREFIX}* environment variables and flags, in that order. Secrets are redacted\n"
        "# and commented out: set them in the environment. The comment after each value\n"
        "# names where it came from.\n\n"
    )
    return header + render_toml(config, env_prefix=ENV_PREFIX, sources=shown)


def resolve_web_root(config: ServerConfig) -> Path:
    """The directory the static console is served from."""
    if config.web_root is not None:
        return config.web_root
    spec = importlib.util.find_spec("web")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the `web` package is not installed; set web_root")
    return Path(next(iter(spec.submodule_search_locations)))
