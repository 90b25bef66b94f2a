"""The board agent's configuration: defaults → TOML file → environment → flags → validated.

One frozen `AgentConfig` per process. Unknown keys are errors wherever they come from (a typo
must not silently fall back to a default), and the board secret is never shown: it is kept out of
`repr`, never logged, and may come only from the file or the environment, never from a command
line flag (which every user of the machine can read in the process list).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from radiocore_protocol import KEEPALIVE_INTERVAL_S, MAX_SECRET_CHARS, RIG_MODES

from .errors import ConfigError

logger = logging.getLogger(__name__)

#: Prefix of the environment variables that configure the agent (`RADIOCORE_AGENT_SECRET`, ...).
ENV_PREFIX: Final = "RADIOCORE_AGENT_"

#: Keys that must not come from command-line flags.
_SECRET_KEYS: Final = frozenset({"secret"})

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_SECRET_CHARS: Final = 16  # the server refuses shorter secrets (`AgentAuth`)
_MAX_TONE_HZ: Final = 20_000

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

AudioKind: TypeAlias = Literal["tone", "file", "alsa", "pulse", "null", "raw"]


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

    @classmethod
    def parse_source(cls, spec: str) -> AudioSpec:
        """Parse `tone`, `tone:HZ`, `file:PATH`, `alsa:DEVICE` or `pulse:DEVICE`."""
        kind, _, target = spec.partition(":")
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
        raise ConfigError(
            f"audio_source {spec!r} is not one of tone, tone:HZ, file:PATH, alsa:DEVICE, "
            "pulse:DEVICE"
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
    """Everything the board agent needs; build it with `AgentConfig.load`."""

    server_url: str = "http://127.0.0.1:8080"
    board_id: str = ""
    secret: str = field(default="", repr=False)
    audio_source: str = "tone"
    audio_sink: str = "null"
    #: Addresses ICE gathers host candidates on; empty means every interface (aioice default).
    ice_host_addresses: tuple[str, ...] = ()
    opus_bitrate: int = 24000
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    status_interval_s: float = 1.0
    heartbeat_interval_s: float = 1.0
    #: Bound on one connection attempt: Socket.IO connect, hello, offer/answer, ICE + DTLS up
    #: to the open data channel (aiortc itself declares a peer `failed` only after ~63 s).
    connect_timeout_s: float = 20.0
    #: The agent's own transmit time-out: PTT is released after this long keyed, whatever the
    #: server says (defence in depth behind the server's time-out timer).
    tx_timeout_s: float = 180.0
    #: The agent's own dead-man: while keyed, PTT is released when no `keepalive` (or `ptt`
    #: on) has arrived from the server for this long.
    deadman_s: float = 1.0
    #: The rig: "simulated" (in-process), "rigctld" (connect to a running rigctld at
    #: rigctld_host:rigctld_port) or "hamlib" (the agent runs rigctld itself, on 127.0.0.1).
    rig: str = "simulated"
    rigctld_host: str = "127.0.0.1"
    #: 0 with rig = "hamlib": the agent picks a free port for the rigctld it runs.
    rigctld_port: int = 4532
    #: The rigctld program ("hamlib"): a path, or a name looked up in PATH.
    rigctld_path: str = "rigctld"
    #: Hamlib model number ("hamlib"; `rigctl --list`); 1 is Hamlib's dummy rig.
    rig_model: int = 1
    #: The rig's serial device or address ("hamlib"), e.g. /dev/ttyUSB0; the dummy needs none.
    rig_device: str = ""
    #: Serial speed in baud ("hamlib"); unset: the model's default.
    rig_speed: int | None = None
    #: Hamlib PTT type passed as `-P` ("hamlib"), e.g. RIG, DTR, RTS; unset: the model's
    #: default. The dummy rig on Hamlib 4.5 needs RIG (else PTT answers RPRT -1).
    rig_ptt_type: str = ""
    #: How often the rig's state is read (status is sent when it changed).
    rig_poll_hz: float = 5.0
    #: Bound on each rigctld request (and on connecting to it).
    rig_timeout_s: float = 1.0
    #: Longest pause between attempts to reach rigctld again after it was lost.
    rig_reconnect_max_s: float = 5.0
    #: Frequency ranges the station may use, "LOW-HIGH" in Hz, e.g. "7000000-7200000";
    #: intersected with the rig's own receive ranges. Empty: the rig's ranges.
    rig_freq_ranges: tuple[str, ...] = ()
    #: Modes the station may use (protocol spelling); empty: every mode the rig has.
    rig_modes: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> AgentConfig:
        """Layer defaults, the TOML file at `path`, `env` (`RADIOCORE_AGENT_*`) and `overrides`
        (from command-line flags; `None` values are skipped), then validate.

        Raises `ConfigError` naming the offending key.
        """
        values: dict[str, object] = {}
        if path is not None:
            values.update(_read_file(Path(path)))
        if env is not None:
            values.update(_read_env(env))
        if overrides is not None:
            values.update(_read_overrides(overrides))
        config = cls(**values)  # type: ignore[arg-type]  # every value was type-checked above
        config.validate()
        return config

    def validate(self) -> None:
        """Raise `ConfigError` if any value is out of range or inconsistent."""
        url = urlsplit(self.server_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"server_url {self.server_url!r} must be an http:// or https:// URL with a host"
            )
        if not self.board_id:
            raise ConfigError("board_id is required (the board's UUID, shown at pairing)")
        if not _UUID.match(self.board_id):
            raise ConfigError(
                f"board_id {self.board_id!r} is not a lower-case UUID "
                "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
            )
        if not self.secret:
            raise ConfigError(
                f"secret is required: set {ENV_PREFIX}SECRET or `secret` in the config file"
            )
        if not _MIN_SECRET_CHARS <= len(self.secret) <= MAX_SECRET_CHARS:
            raise ConfigError(
                f"secret must be {_MIN_SECRET_CHARS} … {MAX_SECRET_CHARS} characters long"
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
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be greater than 0")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError(
                f"reconnect_max_s ({self.reconnect_max_s}) must not be less than "
                f"reconnect_min_s ({self.reconnect_min_s})"
            )
        self._validate_rig()

    def _validate_rig(self) -> None:
        if self.rig not in RIG_KINDS:
            raise ConfigError(f"rig {self.rig!r} is not one of {', '.join(RIG_KINDS)}")
        if not self.deadman_s > KEEPALIVE_INTERVAL_S:
            raise ConfigError(
                f"deadman_s ({self.deadman_s}) must be longer than the operators' keep-alive "
                f"interval ({KEEPALIVE_INTERVAL_S} s)"
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


_FIELDS: Final = {f.name: f for f in dataclasses.fields(AgentConfig)}


def _field_kind(name: str) -> str:
    """'str', 'int', 'float' or 'tuple' (the annotation, as a string under PEP 563)."""
    annotation = str(_FIELDS[name].type).removesuffix(" | None")
    return "tuple" if annotation.startswith("tuple") else annotation


def _optional(name: str) -> bool:
    """Whether the field may be None (unset); the empty environment variable unsets it."""
    return str(_FIELDS[name].type).endswith(" | None")


def _check_key(name: str, where: str) -> None:
    if name not in _FIELDS:
        known = ", ".join(sorted(_FIELDS))
        raise ConfigError(f"{where}: unknown key {name!r} (known keys: {known})")


def _coerce(name: str, value: object, where: str) -> object:
    """A typed value from TOML or flags; bools are not numbers here."""
    kind = _field_kind(name)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if (
        kind == "tuple"
        and isinstance(value, list | tuple)
        and all(isinstance(v, str) for v in value)
    ):
        return tuple(value)
    wanted = {"str": "a string", "int": "an integer", "float": "a number"}.get(
        kind, "a list of strings"
    )
    raise ConfigError(f"{where}: {name} must be {wanted}, not {type(value).__name__}")


def _read_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
    if "secret" in data and path.stat().st_mode & 0o077:
        logger.warning(
            "config file %s holds the board secret but is readable by other users (chmod 600 it)",
            path,
        )
    values: dict[str, object] = {}
    for name, value in data.items():
        _check_key(name, f"config file {str(path)!r}")
        values[name] = _coerce(name, value, f"config file {str(path)!r}")
    return values


def _read_env(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for variable, text in env.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        _check_key(name, f"environment variable {variable}")
        kind = _field_kind(name)
        value: object
        try:
            if _optional(name) and not text.strip():
                value = None
            elif kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            elif kind == "tuple":
                value = tuple(part.strip() for part in text.split(",") if part.strip())
            else:
                value = text
        except ValueError:
            # never echo the value: it might be the secret put in the wrong variable
            raise ConfigError(f"environment variable {variable} must be a {kind}") from None
        values[name] = value
    return values


def _read_overrides(overrides: Mapping[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        _check_key(name, "command line")
        if name in _SECRET_KEYS:
            raise ConfigError(
                f"the secret must not be given on the command line; set {ENV_PREFIX}SECRET "
                "or `secret` in the config file"
            )
        values[name] = _coerce(name, value, "command line")
    return values
