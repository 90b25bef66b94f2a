"""The board agent's configuration: defaults → TOML file → environment → flags → validated.

One frozen `AgentConfig` per process, loaded by the loader the server uses
(`radiocore.configlayers`), so both follow the same rules: unknown keys are errors wherever
they come from (a typo must not silently fall back to a default), and the board secret is never
shown: it is kept out of `repr`, never logged, and may come only from the file or the
environment (`RADIOCORE_AGENT_SECRET`), never from a command-line flag (which every user of the
machine can read in the process list). Or `secret_file` names a file holding only the secret
(mode 0600), read again before every connection attempt (`AgentConfig.board_secret`), so that
a rotated secret written into it is picked up without a restart. The flags are derived from
the fields (`radiocore.configlayers.add_config_flags`), so a new field is a new flag, with its
help.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from radiocore.configlayers import LayeredConfigError, load_layered, render_toml, setting
from radiocore.logs import LOG_FORMATS
from radiocore_protocol import (
    DEADMAN_MIN_KEEPALIVES,
    KEEPALIVE_INTERVAL_S,
    MAX_DATA_MESSAGE_BYTES,
    MAX_DEADMAN_S,
    MAX_SECRET_CHARS,
    MIN_DEADMAN_S,
    RIG_MODES,
    deadman_refusal,
)

from .errors import ConfigError
from .ptt_guard import DEFAULT_TIMEOUT_S as DEFAULT_GUARD_TIMEOUT_S
from .ptt_guard import MAX_TIMEOUT_S as MAX_GUARD_TIMEOUT_S
from .ptt_guard import MIN_TIMEOUT_S as MIN_GUARD_TIMEOUT_S

logger = logging.getLogger(__name__)

#: Prefix of the environment variables that configure the agent (`RADIOCORE_AGENT_SECRET`, ...).
ENV_PREFIX: Final = "RADIOCORE_AGENT_"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_SECRET_CHARS: Final = 16  # the server refuses shorter secrets (`AgentAuth`)
_MAX_TONE_HZ: Final = 20_000
#: `clicks:MS`: the period between clicks, in milliseconds (a measurement source).
_CLICK_PERIOD_MS: Final = (100, 60_000)

#: Where the agent's rig is: in-process, a running rigctld, or a rigctld the agent runs.
RIG_KINDS: Final = ("simulated", "rigctld", "hamlib")
#: rigctld's `-P` values (Hamlib 4.5).
HAMLIB_PTT_TYPES: Final = (
    "RIG",
    "RIGMICDATA",
    "DTR",
    "RTS",
    "PARALLEL",
    "CM108",
    "GPIO",
    "GPION",
    "NONE",
)
_MAX_POLL_HZ: Final = 50
_MAX_RIG_TIMEOUT_S: Final = 30.0
_MAX_FREQ_HZ: Final = 300_000_000_000
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_CONTROL_QUEUE_SIZE: Final = 1024
MAX_CHANNEL_BUFFERED_BYTES: Final = 16 * 1024 * 1024
_RIG_GROUP: Final = "the rig (Hamlib) and transmit safety"

AudioKind: TypeAlias = Literal["tone", "clicks", "file", "alsa", "pulse", "lavfi", "null", "raw"]


@dataclass(frozen=True)
class AudioSpec:
    """A parsed audio source or sink specification such as `file:/srv/rx.ogg` or `alsa:hw:1,0`.

    `target` is what follows the first colon (a path, a device name, a tone frequency), or ""
    for `tone` and `null`.
    """

    kind: AudioKind
    target: str = ""

    @property
    def tone_hz(self) -> int:
        """The frequency of a `tone` source (1000 Hz unless given as `tone:HZ`)."""
        return int(self.target) if self.target else 1000

    @property
    def click_period_ms(self) -> int:
        """The period of a `clicks` source (500 ms unless given as `clicks:MS`)."""
        period = self.target.partition(":")[0]
        return int(period) if period else 500

    @property
    def click_log(self) -> str | None:
        """Where a `clicks:MS:PATH` source records each click's emit time, if anywhere."""
        return self.target.partition(":")[2] or None

    @classmethod
    def parse_source(cls, spec: str) -> AudioSpec:
        """Parse `tone`, `tone:HZ`, `clicks`, `clicks:MS[:PATH]`, `file:PATH`, `alsa:DEVICE`,
        `pulse:DEVICE` or `lavfi:GRAPH`."""
        kind, _, target = spec.partition(":")
        if kind == "clicks":
            period, _, log = target.partition(":")
            low, high = _CLICK_PERIOD_MS
            if period and not (period.isdigit() and low <= int(period) <= high):
                raise ConfigError(
                    f"audio_source {spec!r}: the click period must be whole milliseconds, "
                    f"{low} … {high}"
                )
            if log and not Path(log).parent.is_dir():
                raise ConfigError(f"audio_source {spec!r}: the log's directory does not exist")
            return cls("clicks", target)
        if kind == "tone":
            if target and not (target.isdigit() and 20 <= int(target) <= _MAX_TONE_HZ):
                raise ConfigError(
                    f"audio_source {spec!r}: the tone frequency must be whole hertz, "
                    f"20 … {_MAX_TONE_HZ}"
                )
            return cls("tone", target)
        if kind == "file":
            if not target:
                raise ConfigError("audio_source 'file:' needs a path, e.g. file:/srv/rx.ogg")
            if not Path(target).is_file():
                raise ConfigError(f"audio_source {spec!r}: no such file")
            return cls("file", target)
        if kind in ("alsa", "pulse"):
            if not target:
                raise ConfigError(f"audio_source {spec!r} needs a device, e.g. {kind}:default")
            return cls("alsa" if kind == "alsa" else "pulse", target)
        if kind == "lavfi":
            if not target:
                raise ConfigError(
                    "audio_source 'lavfi:' needs an FFmpeg filter graph, "
                    "e.g. lavfi:sine=frequency=700"
                )
            return cls("lavfi", target)
        raise ConfigError(
            f"audio_source {spec!r} is not one of tone, tone:HZ, clicks, clicks:MS[:PATH], "
            "file:PATH, alsa:DEVICE, pulse:DEVICE, lavfi:GRAPH"
        )

    @classmethod
    def parse_sink(cls, spec: str) -> AudioSpec:
        """Parse `null`, `raw:PATH`, `alsa:DEVICE` or `pulse:DEVICE`."""
        kind, _, target = spec.partition(":")
        if kind == "null" and not target:
            return cls("null")
        if kind == "raw":
            if not target:
                raise ConfigError("audio_sink 'raw:' needs a path, e.g. raw:/tmp/tx.raw")
            if not Path(target).parent.is_dir():
                raise ConfigError(f"audio_sink {spec!r}: the directory does not exist")
            return cls("raw", target)
        if kind in ("alsa", "pulse"):
            if not target:
                raise ConfigError(f"audio_sink {spec!r} needs a device, e.g. {kind}:default")
            return cls("alsa" if kind == "alsa" else "pulse", target)
        raise ConfigError(
            f"audio_sink {spec!r} is not one of null, raw:PATH, alsa:DEVICE, pulse:DEVICE"
        )


@dataclass(frozen=True)
class AgentConfig:
    """Everything the board agent needs, validated on construction; load it with
    `AgentConfig.load`."""

    server_url: str = setting(
        "http://127.0.0.1:8080",
        "the RadioCore server's URL, e.g. https://radio.example.org",
        flag="--server",
        metavar="URL",
    )
    other_server_urls: tuple[str, ...] = setting(
        (),
        "other nodes of the same RadioCore server (sharing its database and Redis), tried in "
        "turn after an attempt to reach the current one failed; the node connected to may "
        "place the station on the least loaded of them (the agent then connects there)",
        flag="--other-server",
        metavar="URL",
    )
    board_id: str = setting(
        "", "this board's id (a UUID, shown when the board is registered); required", metavar="UUID"
    )
    secret: str = setting(
        "",
        f"this board's secret ({_MIN_SECRET_CHARS} … {MAX_SECRET_CHARS} characters, shown once "
        "when the board is registered); required",
        secret=True,
    )
    secret_file: str = setting(
        "",
        "instead of secret: a file holding only this board's secret, readable by the agent's "
        "user alone (mode 0600); read again before every connection attempt, so a rotated "
        "secret written into it (`radiocore board rotate-secret`) brings the agent back "
        "online without a restart",
        metavar="PATH",
    )
    audio_source: str = setting(
        "tone",
        "receiver audio sent to operators: tone, tone:HZ, file:PATH, alsa:DEVICE, pulse:DEVICE; "
        "clicks or clicks:MS[:PATH] (a latency test signal, clicks every MS ms aligned to the "
        "wall clock, each click's emit time appended to PATH); lavfi:GRAPH (an FFmpeg filter "
        "graph captured like a device; end it with arealtime to pace it in real time, e.g. "
        "lavfi:sine=frequency=700,arealtime)",
        metavar="SPEC",
    )
    audio_sink: str = setting(
        "null",
        "where operators' TX audio goes: null, raw:PATH, alsa:DEVICE, pulse:DEVICE",
        metavar="SPEC",
    )
    ice_host_addresses: tuple[str, ...] = setting(
        (),
        "addresses ICE gathers host candidates on; empty: every interface",
        flag="--ice-host-address",
        metavar="IP",
    )
    ice_transport_policy: str = setting(
        "all",
        "all: any path to the server that works; relay: only through the server's TURN relay "
        "(the server may also require it)",
        choices=("all", "relay"),
    )
    opus_bitrate: int = setting(24000, "Opus bit rate of the receiver audio, 6000 … 510000 bit/s")
    audio_retry_s: float = setting(
        2.0,
        "when the receiver audio source fails mid-session (a sound card unplugged), silence is "
        "sent and the source reopened this often, seconds; the session and PTT go on",
    )
    reconnect_min_s: float = setting(
        1.0, "first pause before connecting again after the server was lost, seconds"
    )
    reconnect_max_s: float = setting(
        60.0, "longest pause between attempts to reach the server (the pause doubles up to it)"
    )
    status_interval_s: float = setting(
        1.0, "longest time between two status messages, even when nothing changed, seconds"
    )
    heartbeat_interval_s: float = setting(1.0, "seconds between heartbeats on the control channel")
    connect_timeout_s: float = setting(
        10.0,
        "bound on one connection attempt (Socket.IO, hello, offer/answer, ICE and DTLS up to "
        "the open data channel), seconds; aiortc alone gives up only after about 63 s",
    )
    tx_timeout_s: float = setting(
        180.0,
        "the station's own TX time-out: PTT is released after this long keyed, whatever the "
        "server says, seconds",
        flag="--tx-timeout",
        metavar="S",
        group=_RIG_GROUP,
    )
    deadman_s: float = setting(
        1.0,
        "the station's own dead-man: while keyed, PTT is released when no keep-alive has come "
        f"from the server for this long; {MIN_DEADMAN_S:g} … {MAX_DEADMAN_S:g} s (at least "
        f"{DEADMAN_MIN_KEEPALIVES} keep-alive intervals of {KEEPALIVE_INTERVAL_S:g} s)",
        flag="--deadman",
        metavar="S",
        group=_RIG_GROUP,
    )
    ptt_guard_timeout_s: float = setting(
        DEFAULT_GUARD_TIMEOUT_S,
        "the PTT guard (a small process beside the agent, for rig = rigctld or hamlib) "
        "releases PTT when the agent has given no sign of life for this long while keyed (its "
        f"event loop stalled, or the process stopped; it releases at once when the agent "
        f"dies); {MIN_GUARD_TIMEOUT_S:g} … {MAX_GUARD_TIMEOUT_S:g} s",
        metavar="S",
        group=_RIG_GROUP,
    )
    rig: str = setting(
        "simulated",
        "the rig: simulated (in-process), rigctld (connect to a running rigctld at "
        "rigctld_host:rigctld_port) or hamlib (the agent runs rigctld itself, on 127.0.0.1, "
        "under its PTT guard)",
        choices=RIG_KINDS,
        group=_RIG_GROUP,
    )
    rigctld_host: str = setting(
        "127.0.0.1", "rigctld's address (rig = rigctld)", metavar="HOST", group=_RIG_GROUP
    )
    rigctld_port: int = setting(
        4532,
        "rigctld's port; 0 with rig = hamlib: the agent picks a free one",
        metavar="PORT",
        group=_RIG_GROUP,
    )
    rigctld_path: str = setting(
        "rigctld",
        "the rigctld program (rig = hamlib): a path, or a name looked up in PATH",
        metavar="PATH",
        group=_RIG_GROUP,
    )
    rig_model: int = setting(
        1,
        "Hamlib model number (rig = hamlib; `rigctl --list`); 1 is Hamlib's dummy rig",
        group=_RIG_GROUP,
    )
    rig_device: str = setting(
        "",
        "the rig's serial device or address (rig = hamlib), e.g. /dev/ttyUSB0; the dummy needs "
        "none",
        metavar="DEVICE",
        group=_RIG_GROUP,
    )
    rig_speed: int | None = setting(
        None,
        "serial speed in baud (rig = hamlib); unset: the model's default",
        metavar="BAUD",
        group=_RIG_GROUP,
    )
    rig_ptt_type: str = setting(
        "",
        f"Hamlib PTT type, rigctld's -P (rig = hamlib): {', '.join(HAMLIB_PTT_TYPES)}; empty: "
        "the model's default (the dummy rig on Hamlib 4.5 needs RIG)",
        metavar="TYPE",
        group=_RIG_GROUP,
    )
    rig_poll_hz: float = setting(
        5.0,
        f"how often the rig's state is read, 1 … {_MAX_POLL_HZ} per second (status is sent "
        "when it changed)",
        metavar="HZ",
        group=_RIG_GROUP,
    )
    rig_timeout_s: float = setting(
        1.0,
        "bound on each rigctld request and on connecting to it, seconds",
        flag="--rig-timeout",
        metavar="S",
        group=_RIG_GROUP,
    )
    rig_reconnect_max_s: float = setting(
        5.0,
        "longest pause between attempts to reach rigctld again after it was lost, seconds",
        metavar="S",
        group=_RIG_GROUP,
    )
    rig_freq_ranges: tuple[str, ...] = setting(
        (),
        "frequency ranges the station may use, LOW-HIGH in Hz, e.g. 7000000-7200000, "
        "intersected with the rig's own; empty: the rig's ranges",
        flag="--rig-freq-range",
        metavar="LOW-HIGH",
        group=_RIG_GROUP,
    )
    rig_modes: tuple[str, ...] = setting(
        (),
        "modes the station may use; empty: every mode the rig has",
        flag="--rig-mode",
        choices=RIG_MODES,
        metavar="MODE",
        group=_RIG_GROUP,
    )
    control_queue_size: int = setting(
        32,
        "control messages waiting for the rig (tuning coalesces: the latest value wins); when "
        "full the oldest tuning message or key-up is dropped, never a release of PTT; "
        f"1 … {MAX_CONTROL_QUEUE_SIZE}",
        group=_RIG_GROUP,
    )
    max_channel_buffered_bytes: int = setting(
        64 * 1024,
        "bytes queued on the control channel above which status and heartbeats are skipped "
        f"rather than queued; {MAX_DATA_MESSAGE_BYTES} … {MAX_CHANNEL_BUFFERED_BYTES}",
    )
    health_port: int = setting(
        0,
        "port of the agent's own GET /health (JSON; 503 when degraded) and GET /metrics "
        "(Prometheus), served on health_host only; 0: off",
        metavar="PORT",
    )
    health_host: str = setting(
        "127.0.0.1",
        "address /health and /metrics are served on: a loopback address only (they have no "
        "authentication), e.g. 127.0.0.1 or ::1",
        metavar="IP",
    )
    log_level: str = setting(
        "INFO", f"log level: {', '.join(LOG_LEVELS)} (any case)", metavar="LEVEL"
    )
    log_format: str = setting(
        "text",
        "text: one readable line per message; json: one JSON object per line (time, level, "
        "logger, message)",
        choices=LOG_FORMATS,
    )

    def __post_init__(self) -> None:
        # frozen: the canonical spelling replaces what was given, once, at construction
        object.__setattr__(self, "log_level", self.log_level.upper())
        object.__setattr__(self, "log_format", self.log_format.lower())
        self.validate()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
        sources: MutableMapping[str, str] | None = None,
    ) -> AgentConfig:
        """Layer defaults, the TOML file at `path`, `env` (`RADIOCORE_AGENT_*`) and `overrides`
        (dotted keys from command-line flags, never the secret), then validate. `sources`
        receives the layer of every key set (see `radiocore.configlayers.load_layered`).

        Raises `ConfigError` naming the offending key.
        """
        file = Path(path) if path is not None else None
        if file is not None:
            _warn_if_secret_is_exposed(file)
        try:
            return load_layered(
                cls,
                file=file,
                env=env if env is not None else {},
                env_prefix=ENV_PREFIX,
                overrides=overrides if overrides is not None else {},
                sources=sources,
            )
        except LayeredConfigError as exc:
            raise ConfigError(str(exc)) from None

    def validate(self) -> None:
        """Raise `ConfigError` if any value is out of range or inconsistent (construction
        already did)."""
        for name, value in (
            ("server_url", self.server_url),
            *(("other_server_urls", other) for other in self.other_server_urls),
        ):
            url = urlsplit(value)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ConfigError(
                    f"{name} {value!r} must be an http:// or https:// URL with a host"
                )
        if not self.board_id:
            raise ConfigError("board_id is required (the board's UUID, shown at pairing)")
        if not _UUID.match(self.board_id):
            raise ConfigError(
                f"board_id {self.board_id!r} is not a lower-case UUID "
                "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            )
        if self.secret and self.secret_file:
            raise ConfigError(
                "secret and secret_file are both set: give the board secret one way only (a "
                f"rotated secret written to secret_file would lose to {ENV_PREFIX}SECRET)"
            )
        if not self.secret and not self.secret_file:
            raise ConfigError(
                f"secret is required: set {ENV_PREFIX}SECRET or `secret` in the config file, "
                "or secret_file (a file holding it)"
            )
        if self.secret and not _MIN_SECRET_CHARS <= len(self.secret) <= MAX_SECRET_CHARS:
            raise ConfigError(
                f"secret must be {_MIN_SECRET_CHARS} … {MAX_SECRET_CHARS} characters long"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"log_level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        if self.log_format.lower() not in LOG_FORMATS:
            raise ConfigError(
                f"log_format {self.log_format!r} is not one of {', '.join(LOG_FORMATS)}"
            )
        AudioSpec.parse_source(self.audio_source)
        AudioSpec.parse_sink(self.audio_sink)
        for address in self.ice_host_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"ice_host_addresses: {address!r} is not an IP address") from None
        if not 6000 <= self.opus_bitrate <= 510_000:
            raise ConfigError(f"opus_bitrate {self.opus_bitrate} is outside 6000 … 510000 bit/s")
        for name in (
            "reconnect_min_s",
            "status_interval_s",
            "heartbeat_interval_s",
            "connect_timeout_s",
            "tx_timeout_s",
            "audio_retry_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be greater than 0")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError(
                f"reconnect_max_s ({self.reconnect_max_s}) must not be less than "
                f"reconnect_min_s ({self.reconnect_min_s})"
            )
        if not 1 <= self.control_queue_size <= MAX_CONTROL_QUEUE_SIZE:
            raise ConfigError(
                f"control_queue_size must be between 1 and {MAX_CONTROL_QUEUE_SIZE}, "
                f"not {self.control_queue_size}"
            )
        if (
            not MAX_DATA_MESSAGE_BYTES
            <= self.max_channel_buffered_bytes
            <= (MAX_CHANNEL_BUFFERED_BYTES)
        ):
            raise ConfigError(
                f"max_channel_buffered_bytes must be between {MAX_DATA_MESSAGE_BYTES} (one "
                f"message) and {MAX_CHANNEL_BUFFERED_BYTES}, not {self.max_channel_buffered_bytes}"
            )
        self._validate_health()
        self._validate_rig()

    def _validate_health(self) -> None:
        if not 0 <= self.health_port <= 65535:
            raise ConfigError(f"health_port {self.health_port} is outside 0 … 65535 (0: off)")
        try:
            loopback = ipaddress.ip_address(self.health_host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"health_host {self.health_host!r} is not a loopback address: /health and "
                "/metrics have no authentication and are served on this machine only "
                "(127.0.0.1 or ::1; scrape them through a local Prometheus agent or an SSH tunnel)"
            )

    def _validate_rig(self) -> None:
        if self.rig not in RIG_KINDS:
            raise ConfigError(f"rig {self.rig!r} is not one of {', '.join(RIG_KINDS)}")
        refusal = deadman_refusal("deadman_s", self.deadman_s)
        if refusal is not None:
            raise ConfigError(refusal)
        if not MIN_GUARD_TIMEOUT_S <= self.ptt_guard_timeout_s <= MAX_GUARD_TIMEOUT_S:
            raise ConfigError(
                f"ptt_guard_timeout_s {self.ptt_guard_timeout_s} is outside "
                f"{MIN_GUARD_TIMEOUT_S:g} … {MAX_GUARD_TIMEOUT_S:g} s"
            )
        if not 1 <= self.rig_poll_hz <= _MAX_POLL_HZ:
            raise ConfigError(f"rig_poll_hz {self.rig_poll_hz} is outside 1 … {_MAX_POLL_HZ}")
        if not 0 < self.rig_timeout_s <= _MAX_RIG_TIMEOUT_S:
            raise ConfigError(
                f"rig_timeout_s {self.rig_timeout_s} is outside 0 … {_MAX_RIG_TIMEOUT_S} s"
            )
        if not self.rig_reconnect_max_s > 0:
            raise ConfigError("rig_reconnect_max_s must be greater than 0")
        if not self.rigctld_host:
            raise ConfigError("rigctld_host must not be empty")
        if not 0 <= self.rigctld_port <= 65535:
            raise ConfigError(f"rigctld_port {self.rigctld_port} is outside 0 … 65535")
        if self.rigctld_port == 0 and self.rig != "hamlib":
            raise ConfigError("rigctld_port 0 (a free port) is only for rig = 'hamlib'")
        if self.rig_model < 1:
            raise ConfigError(f"rig_model {self.rig_model} is not a Hamlib model number")
        if self.rig_speed is not None and self.rig_speed <= 0:
            raise ConfigError(f"rig_speed {self.rig_speed} must be a positive baud rate")
        if self.rig_ptt_type and self.rig_ptt_type.upper() not in HAMLIB_PTT_TYPES:
            raise ConfigError(
                f"rig_ptt_type {self.rig_ptt_type!r} is not one of {', '.join(HAMLIB_PTT_TYPES)}"
            )
        if self.rig == "hamlib":
            if self.rigctld_host != "127.0.0.1":
                raise ConfigError(
                    "rig = 'hamlib' runs rigctld on 127.0.0.1 only (it has no authentication); "
                    f"rigctld_host must be 127.0.0.1, not {self.rigctld_host!r}"
                )
            if self.rig_model != 1 and not self.rig_device:
                raise ConfigError(
                    f"rig_device is required for rig_model {self.rig_model} "
                    "(the rig's serial device, e.g. /dev/ttyUSB0)"
                )
            if not self.rigctld_path:
                raise ConfigError("rigctld_path must not be empty")
        self.freq_ranges()
        for mode in self.rig_modes:
            if mode not in RIG_MODES:
                raise ConfigError(f"rig_modes: {mode!r} is not one of {' '.join(RIG_MODES)}")

    def board_secret(self) -> str:
        """The secret to connect with: `secret`, or what `secret_file` holds now (read again
        on every call, see `read_secret_file`); `ConfigError` saying what is wrong with the
        file. (Not checked at load: `--unkey` and `--print-config` need no secret, and an
        agent whose file is missing or bad keeps running and tries again.)"""
        if not self.secret_file:
            return self.secret
        return read_secret_file(Path(self.secret_file))

    def freq_ranges(self) -> tuple[tuple[int, int], ...]:
        """`rig_freq_ranges` as (low, high) pairs in Hz; raises `ConfigError`."""
        ranges: list[tuple[int, int]] = []
        for text in self.rig_freq_ranges:
            low, sep, high = text.replace(" ", "").partition("-")
            if not (sep and low.isdigit() and high.isdigit()):
                raise ConfigError(
                    f"rig_freq_ranges: {text!r} is not LOW-HIGH in Hz, e.g. 7000000-7200000"
                )
            if not 1 <= int(low) <= int(high) <= _MAX_FREQ_HZ:
                raise ConfigError(
                    f"rig_freq_ranges: {text!r} must have 1 <= LOW <= HIGH <= {_MAX_FREQ_HZ}"
                )
            ranges.append((int(low), int(high)))
        return tuple(ranges)


#: The most bytes of a `secret_file` read: a secret and its line break, with room to spare.
_MAX_SECRET_FILE_BYTES: Final = 4 * MAX_SECRET_CHARS + 2


def read_secret_file(path: Path) -> str:
    """The board secret held in the file at `path`: its only line, blanks and the line break
    around it stripped. `ConfigError` (naming `secret_file`, never showing the content) when
    the file is missing or unreadable, not a regular file, readable or writable by anyone but
    its owner (it must be mode 0600 or 0400: a secret others can read is no longer this
    board's alone), or does not hold one secret of 16 … `MAX_SECRET_CHARS` characters."""
    where = f"secret_file {path}"
    try:
        with path.open("rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise ConfigError(f"{where} is not a regular file")
            if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{where} may be read or changed by other users (mode "
                    f"{stat.S_IMODE(status.st_mode):04o}): it must be readable by the agent's "
                    "user only (chmod 600 it)"
                )
            data = file.read(_MAX_SECRET_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except PermissionError:
        raise ConfigError(f"{where} cannot be read by this user (check its owner)") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is not a regular file") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where} does not hold a board secret (it is not text)") from None
    if len(data) > _MAX_SECRET_FILE_BYTES or len(secret.split()) > 1:
        raise ConfigError(f"{where} must hold only the board secret, on one line")
    if not _MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS:
        raise ConfigError(
            f"{where} must hold the board secret, {_MIN_SECRET_CHARS} … {MAX_SECRET_CHARS} "
            f"characters ({'it is empty' if not secret else f'it has {len(secret)}'})"
        )
    return secret


def render_agent_config(config: AgentConfig, sources: Mapping[str, str] | None = None) -> str:
    """The effective configuration as TOML `AgentConfig.load` reads back, the secret redacted
    (`radiocore agent --print-config`); `sources` (from `load`) names each value's layer."""
    header = (
        "# RadioCore board agent: the effective configuration, from defaults, the --config\n"
        f"# file, {ENV_PREFIX}* environment variables and flags, in that order. The secret is\n"
        "# redacted and commented out: set it in the environment. The comment after each\n"
        "# value names where it came from.\n\n"
    )
    return header + render_toml(config, env_prefix=ENV_PREFIX, sources=sources)


def _warn_if_secret_is_exposed(path: Path) -> None:
    """Warn when the file at `path` holds the secret but other users may read it (the loader
    reports a missing or broken file)."""
    try:
        if not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return
        with path.open("rb") as file:
            holds_secret = "secret" in tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return
    if holds_secret:
        logger.warning(
            "config file %s holds the board secret but is readable by other users (chmod 600 it)",
            path,
        )
