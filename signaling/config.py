"""The signaling server's configuration: one frozen `ServerConfig` per process.

Built by `load_server_config` from defaults → TOML file → environment (`RADIOCORE_…`) →
command-line overrides, then validated (see `radiocore.configlayers` for the layering rules).
Environment names: `RADIOCORE_<KEY>` for a top-level key, `RADIOCORE_<SECTION>__<KEY>` for a key
of a section, e.g. `RADIOCORE_SECRET`, `RADIOCORE_PORT`, `RADIOCORE_ICE__HOST_ADDRESSES`,
`RADIOCORE_LIMITS__MAX_SDP_CHARS`.

The JWT secret and the database URL (which may carry a password) never appear in `repr`,
`str`, `summary()` or an error message.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from radiocore.configlayers import LayeredConfigError, load_layered
from radiocore_protocol import MAX_DATA_MESSAGE_BYTES, MAX_MESSAGES_PER_SECOND, MAX_SDP_CHARS
from signaling.errors import ConfigError

logger = logging.getLogger(__name__)

ENV_PREFIX: Final = "RADIOCORE_"
#: Variables under the prefix that are not server settings: the board agent's own
#: (`board_agent.config`, often exported in the same shell) and the password that
#: `radiocore user add` reads.
ENV_IGNORED_PREFIXES: Final = ("RADIOCORE_AGENT_", "RADIOCORE_PASSWORD")
MIN_SECRET_CHARS: Final = 32
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_SCHEMES: Final = ("sqlite", "postgres", "postgresql")
ICE_URL_SCHEMES: Final = ("stun:", "stuns:", "turn:", "turns:")

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


@dataclass(frozen=True)
class IceConfig:
    """ICE as the server's peer connections and its clients see it."""

    #: Addresses aioice gathers host candidates on; empty means every interface.
    host_addresses: tuple[str, ...] = ()
    #: STUN/TURN URLs: the explicit ICE server list given to peers (never a library default).
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what clients may send and on what the server buffers."""

    max_sdp_chars: int = MAX_SDP_CHARS
    max_data_message_bytes: int = MAX_DATA_MESSAGE_BYTES
    #: Packets queued per listener before the oldest is dropped.
    listener_queue_packets: int = 64
    max_http_buffer_bytes: int = 1_000_000
    #: Socket.IO events one connection may send per second; the excess gets `rate_limited`.
    max_events_per_second: int = MAX_MESSAGES_PER_SECOND
    #: Data-channel messages one peer may send per second; the excess gets `rate_limited`.
    max_data_messages_per_second: int = MAX_MESSAGES_PER_SECOND


@dataclass(frozen=True)
class FloorConfig:
    """Transmit safety: the server's dead-man and TX time-out (the station has its own)."""

    #: Seconds without a keep-alive from the holder before PTT is released.
    deadman_s: float = 1.0
    #: Longest continuous transmission, seconds (3 min is the usual remote default).
    tx_timeout_s: float = 180.0
    #: Seconds before the time-out at which the holder is warned (0: no warning).
    tx_warning_s: float = 10.0


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process is configured with; build it with `load_server_config`."""

    host: str = "127.0.0.1"
    #: 0 lets the operating system pick a free port (tests).
    port: int = 8080
    #: Signs operators' JWTs. Required (32+ characters) unless `demo`.
    secret: str = field(default="", repr=False)
    #: Demo mode: an ephemeral secret is generated when none is set.
    demo: bool = False
    data_dir: Path = Path("./radiocore-data")
    #: Empty means the SQLite file `data_dir/radiocore.sqlite3`; else `sqlite:///path` or
    #: `postgresql://…`. Hidden from repr: it may carry a password.
    database_url: str = field(default="", repr=False)
    jwt_audience: str = "radiocore"
    #: Empty means tokens carry no `iss` claim and none is checked.
    jwt_issuer: str = ""
    jwt_ttl_s: int = 86400
    #: Clock difference tolerated between the nodes that issue and check tokens.
    jwt_leeway_s: float = 5.0
    log_level: str = "INFO"
    #: Record the SFU's ingress → egress latency of every Nth forwarded packet (0: off).
    media_latency_sample_every: int = 0
    #: None means the installed `web` package's directory.
    web_root: Path | None = None
    ice: IceConfig = field(default_factory=IceConfig)
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
            f"limits={self.limits}",
            f"floor={self.floor}",
        ]
        return " ".join(parts)


def load_server_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> ServerConfig:
    """The validated configuration from defaults, `file`, `env` (pass `os.environ`), overrides.

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
    for url in config.ice.servers:
        if not url.startswith(ICE_URL_SCHEMES):
            raise ConfigError(
                f"ice.servers entry {url!r} must start with one of {', '.join(ICE_URL_SCHEMES)}"
            )
    _check_limits(config.limits)
    _check_floor(config.floor)

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


def _check_floor(floor: FloorConfig) -> None:
    if not 0.1 <= floor.deadman_s <= 60:
        raise ConfigError(f"floor.deadman_s must be 0.1 … 60 s, not {floor.deadman_s}")
    if not 1 <= floor.tx_timeout_s <= 86400:
        raise ConfigError(f"floor.tx_timeout_s must be 1 … 86400 s, not {floor.tx_timeout_s}")
    if not 0 <= floor.tx_warning_s < floor.tx_timeout_s:
        raise ConfigError(
            f"floor.tx_warning_s must be 0 or more and below floor.tx_timeout_s, "
            f"not {floor.tx_warning_s}"
        )


def _check_limits(limits: LimitsConfig) -> None:
    # The protocol promises peers these maxima; the server may be stricter, never looser.
    bounded = (
        ("max_sdp_chars", limits.max_sdp_chars, MAX_SDP_CHARS),
        ("max_data_message_bytes", limits.max_data_message_bytes, MAX_DATA_MESSAGE_BYTES),
        ("max_events_per_second", limits.max_events_per_second, MAX_MESSAGES_PER_SECOND),
        (
            "max_data_messages_per_second",
            limits.max_data_messages_per_second,
            MAX_MESSAGES_PER_SECOND,
        ),
    )
    for name, value, maximum in bounded:
        if not 1 <= value <= maximum:
            raise ConfigError(f"limits.{name} must be between 1 and {maximum}, not {value}")
    for name, value in (
        ("listener_queue_packets", limits.listener_queue_packets),
        ("max_http_buffer_bytes", limits.max_http_buffer_bytes),
    ):
        if value < 1:
            raise ConfigError(f"limits.{name} must be positive, not {value}")


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


def resolve_web_root(config: ServerConfig) -> Path:
    """The directory the static console is served from."""
    if config.web_root is not None:
        return config.web_root
    spec = importlib.util.find_spec("web")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the `web` package is not installed; set web_root")
    return Path(next(iter(spec.submodule_search_locations)))
