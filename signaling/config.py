"""The signaling server's configuration: one frozen `ServerConfig` per process.

Built by `load_server_config` from defaults → TOML file → environment (`RADIOCORE_…`) →
command-line overrides, then validated (see `radiocore.configlayers` for the layering rules).
Environment names: `RADIOCORE_<KEY>` for a top-level key, `RADIOCORE_<SECTION>__<KEY>` for a key
of a section, e.g. `RADIOCORE_SECRET`, `RADIOCORE_PORT`, `RADIOCORE_ICE__HOST_ADDRESSES`,
`RADIOCORE_LIMITS__MAX_SDP_CHARS`.

The JWT secret and the database URL (which may carry a password) are secrets: never taken
from a command-line flag, and never shown in `repr`, `str`, `summary()`, an error message or
`render_server_config` (which prints them redacted). The flags of `radiocore serve` are derived
from these dataclasses (`radiocore.configlayers.add_config_flags`); every field says what it
means (`setting`), and deploy/server.example.toml lists them all (a test keeps it complete).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from radiocore.configlayers import LayeredConfigError, load_layered, render_toml, setting
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
from turn.credentials import MAX_TTL_S, MIN_TTL_S, TurnCredentialError, TurnCredentialIssuer
from turn.urls import parse_ice_url

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
    sfu_relay: bool = setting(
        False,
        "the SFU's own connections use the relay too (only for a server that cannot receive "
        "UDP directly: each connection then holds a second allocation)",
    )


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
    max_early_candidates: int = setting(
        32,
        "trickled ICE candidates kept for a connection whose offer is still being applied; "
        "later ones are dropped",
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
class ServerConfig:
    """Everything the server process is configured with; build it with `load_server_config`."""

    host: str = setting("127.0.0.1", "address to listen on", metavar="HOST")
    port: int = setting(8080, "port to listen on; 0 lets the operating system pick a free one")
    secret: str = setting(
        "",
        "signs operators' JWTs: a random secret of at least 32 characters; required unless demo",
        secret=True,
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
    jwt_audience: str = setting("radiocore", "the `aud` claim tokens carry and must carry")
    jwt_issuer: str = setting(
        "", "the `iss` claim tokens carry and must carry; empty: none, and none is checked"
    )
    jwt_ttl_s: int = setting(86400, "seconds an operator's token stays valid")
    jwt_leeway_s: float = setting(
        5.0, "clock difference tolerated between the nodes that issue and check tokens, seconds"
    )
    log_level: str = setting(
        "INFO", f"log level: {', '.join(LOG_LEVELS)} (any case)", metavar="LEVEL"
    )
    media_latency_sample_every: int = setting(
        0, "record the SFU's ingress → egress latency of every Nth forwarded packet (0: off)"
    )
    web_root: Path | None = setting(
        None, "directory the operator console is served from; unset: the installed web package"
    )
    ice: IceConfig = field(default_factory=IceConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    floor: FloorConfig = field(default_factory=FloorConfig)
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
            f"data_dir={self.data_dir}",
            f"database={redact_url(self.database_url) or 'sqlite (data_dir)'}",
            f"jwt_audience={self.jwt_audience}",
            f"jwt_issuer={self.jwt_issuer or '-'}",
            f"jwt_ttl_s={self.jwt_ttl_s}",
            f"log_level={self.log_level}",
            f"media_latency_sample_every={self.media_latency_sample_every}",
            f"web_root={self.web_root or '(installed web package)'}",
            f"ice.host_addresses={','.join(self.ice.host_addresses) or '(all interfaces)'}",
            f"ice.servers={','.join(self.ice.servers) or '(none)'}",
            f"ice.transport_policy={self.ice.transport_policy}",
            f"turn.urls={','.join(self.turn.urls) or '(none)'}",
            f"turn.secret={'<set>' if self.turn.secret else '<unset>'}",
            f"turn.ttl_s={self.turn.ttl_s}",
            f"limits={self.limits}",
            f"floor={self.floor}",
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
    log_level = config.log_level.upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level {config.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if not config.jwt_audience:
        raise ConfigError("jwt_audience must not be empty")
    if config.jwt_ttl_s <= 0:
        raise ConfigError(f"jwt_ttl_s must be positive, not {config.jwt_ttl_s}")
    if not 0 <= config.jwt_leeway_s < config.jwt_ttl_s:
        raise ConfigError(
            f"jwt_leeway_s must be between 0 and jwt_ttl_s, not {config.jwt_leeway_s}"
        )
    if config.media_latency_sample_every < 0:
        raise ConfigError(
            "media_latency_sample_every must be 0 (off) or more, "
            f"not {config.media_latency_sample_every}"
        )
    _check_database_url(config.database_url)
    _check_ice(config.ice, config.turn)

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
    checked = dataclasses.replace(config, log_level=log_level, secret=secret)
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


def _check_ice(ice: IceConfig, turn: TurnConfig) -> None:
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
    if ice.transport_policy == "relay" and not turn.urls:
        raise ConfigError("ice.transport_policy = relay needs a relay: set [turn] urls")


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
