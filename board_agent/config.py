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

from signaling.protocol import MAX_SECRET_CHARS

from .errors import ConfigError

logger = logging.getLogger(__name__)

#: Prefix of the environment variables that configure the agent (`RADIOCORE_AGENT_SECRET`, ...).
ENV_PREFIX: Final = "RADIOCORE_AGENT_"

#: Keys that must not come from command-line flags.
_SECRET_KEYS: Final = frozenset({"secret"})

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_SECRET_CHARS: Final = 16  # the server refuses shorter secrets (`AgentAuth`)
_MAX_TONE_HZ: Final = 20_000

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


_FIELDS: Final = {f.name: f for f in dataclasses.fields(AgentConfig)}


def _field_kind(name: str) -> str:
    """'str', 'int', 'float' or 'tuple' (the annotation, as a string under PEP 563)."""
    annotation = str(_FIELDS[name].type)
    return "tuple" if annotation.startswith("tuple") else annotation


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
            if kind == "int":
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
