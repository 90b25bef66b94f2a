"""Layered loading of a frozen-dataclass configuration: defaults → TOML file → environment →
overrides (the command-line flags); the flags derived from the same dataclass; and the TOML
text of a configuration, secrets redacted.

Standard library only, and nothing of the project: the board agent uses it as the server does,
so both processes follow one set of rules.

The configuration class is a frozen dataclass; a field whose type is itself a dataclass is a
*section* (a TOML table, one level or more deep). Supported field types: `int`, `float`,
`bool`, `str`, `pathlib.Path`, `tuple[X, ...]` of those scalars, any of them `| None`, and
sections. Fields declared with `init=False` are not configurable. A field declared with
`repr=False` is a *secret*: its value is never repeated in an error message nor rendered, and
it may not come from the command line, which every user of the machine can read in the process
list.

Each configurable field says what it means in `metadata["help"]` (declare it with `setting`):
the one text the `--help` of the flags, the example files and `render_toml` all show. A
section's meaning is its class docstring.

Layers, later ones winning key by key:

1. the dataclass defaults;
2. the TOML file, whose values must already have the field's type (a TOML integer for an
   `int`, an array of strings for a `tuple[str, ...]`, a string for a `Path`);
3. the environment: `<PREFIX><KEY>` for a top-level field and `<PREFIX><SECTION>__<KEY>` for a
   field of a section (double underscore between levels, since names contain single ones),
   all upper case. With prefix `RADIOCORE_`: `RADIOCORE_PORT`, `RADIOCORE_ICE__HOST_ADDRESSES`.
   Every variable that starts with the prefix must name a field, except those starting with
   one of `env_ignore` (another program's variables under the same prefix, such as the board
   agent's `RADIOCORE_AGENT_…` beside the server's `RADIOCORE_…`). Values are strings, converted
   to the field's type: integers and floats as Python writes them; booleans
   `true/false/1/0/yes/no/on/off` (any case); tuples comma-separated (items stripped, empty
   items dropped, so the empty string is the empty tuple); the empty string is `None` for a
   field that may be `None`. A value from the environment is never repeated in an error
   message: it may be a secret put in the wrong variable;
4. overrides (from command-line flags, see `add_config_flags` and `flag_overrides`): dotted keys
   (`"ice.host_addresses"`) with either typed values or strings, strings being converted as for
   the environment; `None` only for a field that may be `None`; never a secret.

Unknown keys and values of the wrong type raise `LayeredConfigError`, naming the key and the
layer it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = [
    "REDACTED",
    "ConfigKey",
    "LayeredConfigError",
    "add_config_flags",
    "config_keys",
    "flag_overrides",
    "load_layered",
    "render_toml",
    "setting",
]

T = TypeVar("T")

#: What `render_toml` shows instead of a secret's value.
REDACTED: Final = "<redacted>"
#: The layer name in `sources` for a value nobody set.
DEFAULT_SOURCE: Final = "default"
#: The layer name in error messages and `sources` for the overrides.
OVERRIDES_SOURCE: Final = "overrides"

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_SCALAR_NAMES: dict[type, tuple[str, str]] = {
    bool: ("a boolean", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    Path: ("a path", "paths"),
}
_METAVARS: dict[type, str] = {int: "N", float: "NUM", str: "TEXT", Path: "PATH"}
_HELP_WIDTH: Final = 98


class LayeredConfigError(ValueError):
    """A configuration layer holds an unknown key or a value of the wrong type."""


def setting(
    default: T,
    help: str,
    *,
    secret: bool = False,
    flag: str | None = None,
    metavar: str | None = None,
    choices: Sequence[str] = (),
    group: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> T:
    """A configurable dataclass field with its default and its meaning, in one place.

    `help` says what the key means (flags, example files and `render_toml` show it); `secret`
    declares the field `repr=False` (see the module docstring); `flag` replaces the derived
    spelling `--<section>-<key>` (to keep a published one); `metavar` and `choices` go to the
    flag; `group` titles the `--help` group of a top-level field; `redact` turns a secret's value
    into something safe to show (e.g. a URL without its password) instead of `REDACTED`.
    """
    metadata: dict[str, object] = {"help": help}
    if flag is not None:
        metadata["flag"] = flag
    if metavar is not None:
        metadata["metavar"] = metavar
    if choices:
        metadata["choices"] = tuple(choices)
    if group is not None:
        metadata["group"] = group
    if redact is not None:
        metadata["redact"] = redact
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class _FieldType:
    """What a configurable field accepts, worked out once from its annotation."""

    scalar: type | None  # bool, int, float, str or Path, for scalars and tuple items
    is_tuple: bool
    optional: bool
    section: type | None  # a dataclass, for sections
    secret: bool  # declared repr=False: never echo its value

    def describe(self) -> str:
        if self.scalar is None:
            return "a section (table)"
        one, many = _SCALAR_NAMES[self.scalar]
        text = f"a list of {many}" if self.is_tuple else one
        return f"{text} or nothing" if self.optional else text


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One configurable (non-section) field, as file, environment and command line name it."""

    path: tuple[str, ...]
    field_type: _FieldType
    default: object  # dataclasses.MISSING when the field has none
    metadata: Mapping[str, object]

    @property
    def key(self) -> str:
        """The dotted key: `port`, `ice.host_addresses`."""
        return _dotted(self.path)

    @property
    def secret(self) -> bool:
        return self.field_type.secret

    @property
    def help(self) -> str:
        """The field's meaning; empty when it declares none."""
        text = self.metadata.get("help", "")
        return text if isinstance(text, str) else ""

    @property
    def flag(self) -> str:
        """The command-line flag: declared, or `--<section>-<key>` with dashes."""
        declared = self.metadata.get("flag")
        if isinstance(declared, str):
            return declared
        return "--" + "-".join(self.path).replace("_", "-")

    def env_var(self, prefix: str) -> str:
        return prefix + "__".join(self.path).upper()


def config_keys(config_cls: type) -> tuple[ConfigKey, ...]:
    """Every configurable field of `config_cls` and its sections, in declaration order."""
    keys: list[ConfigKey] = []

    def walk(cls: type, path: tuple[str, ...]) -> None:
        for f, ftype in _configurable(cls):
            key_path = (*path, f.name)
            if ftype.section is not None:
                walk(ftype.section, key_path)
            else:
                keys.append(ConfigKey(key_path, ftype, _field_default(f), f.metadata))

    walk(config_cls, ())
    return tuple(keys)


# -- loading ----------------------------------------------------------------------------------


def load_layered(
    config_cls: type[T],
    *,
    file: Path | None,
    env: Mapping[str, str],
    env_prefix: str,
    overrides: Mapping[str, object],
    env_ignore: Sequence[str] = (),
    sources: MutableMapping[str, str] | None = None,
) -> T:
    """Build `config_cls` from its defaults, then `file`, `env` and `overrides` (see module doc).

    `sources`, when given, receives for every dotted key a layer set the layer it came from
    (`config file …`, `environment variable …`, `overrides`); keys it lacks kept their default.
    """
    if not (dataclasses.is_dataclass(config_cls) and isinstance(config_cls, type)):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    if not env_prefix:
        raise ValueError("env_prefix must not be empty: every variable would be a config key")
    loader = _Loader(config_cls, env_prefix)
    if file is not None:
        loader.apply_file(file)
    loader.apply_env(env, tuple(env_ignore))
    loader.apply_overrides(overrides)
    config = typing.cast(T, loader.build())
    if sources is not None:
        sources.update(loader.sources)
    return config


class _Loader:
    def __init__(self, config_cls: type, env_prefix: str) -> None:
        self._cls = config_cls
        self._prefix = env_prefix
        self._values: dict[str, Any] = {}  # nested dicts mirroring the sections
        self.sources: dict[str, str] = {}

    # -- layers -------------------------------------------------------------------------------

    def apply_file(self, file: Path) -> None:
        where = f"config file {file}"
        try:
            with file.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise LayeredConfigError(f"{where} does not exist") from None
        except OSError as exc:
            raise LayeredConfigError(f"{where} cannot be read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise LayeredConfigError(f"{where} is not valid TOML: {exc}") from None
        self._apply_table(data, (), where, from_flags=False)

    def _apply_table(
        self, table: Mapping[str, object], path: tuple[str, ...], where: str, *, from_flags: bool
    ) -> None:
        for key, raw in table.items():
            key_path = (*path, key)
            ftype = self._lookup(key_path, where, _dotted(key_path))
            if from_flags and ftype.secret:
                raise LayeredConfigError(self._secret_refused(key_path))
            if ftype.section is not None:
                if not isinstance(raw, Mapping):
                    raise LayeredConfigError(
                        f"{_dotted(key_path)!r} in {where} must be a table ([{_dotted(key_path)}])"
                    )
                self._apply_table(raw, key_path, where, from_flags=from_flags)
            else:
                value = _convert_typed(raw, ftype, _dotted(key_path), where)
                self._set(key_path, value, where)

    def apply_env(self, env: Mapping[str, str], ignore: tuple[str, ...]) -> None:
        names = _env_names(self._cls, self._prefix)
        for var in sorted(env):
            if not var.startswith(self._prefix) or var.startswith(ignore):
                continue
            where = f"environment variable {var}"
            known = names.get(var)
            if known is None:
                raise LayeredConfigError(
                    f"unknown configuration key in {where}{_suggest(var, names)}"
                )
            key_path, ftype = known
            if ftype.section is not None:
                raise LayeredConfigError(
                    f"{where} names the section {_dotted(key_path)!r}; set its keys as {var}__<KEY>"
                )
            value = _convert_text(env[var], ftype, _dotted(key_path), where, echo=False)
            self._set(key_path, value, where)

    def apply_overrides(self, overrides: Mapping[str, object]) -> None:
        where = OVERRIDES_SOURCE
        for dotted, raw in overrides.items():
            key_path = tuple(dotted.split("."))
            ftype = self._lookup(key_path, where, dotted)
            if ftype.secret:
                raise LayeredConfigError(self._secret_refused(key_path))
            if ftype.section is not None:
                if not isinstance(raw, Mapping):
                    raise LayeredConfigError(
                        f"{dotted!r} in {where} is a section; give one of its keys ({dotted}.<key>)"
                    )
                self._apply_table(raw, key_path, where, from_flags=True)
            elif isinstance(raw, str) and (ftype.is_tuple or ftype.scalar is not str):
                self._set(key_path, _convert_text(raw, ftype, dotted, where, echo=True), where)
            else:
                self._set(key_path, _convert_typed(raw, ftype, dotted, where), where)

    def _secret_refused(self, key_path: tuple[str, ...]) -> str:
        table = f"the [{_dotted(key_path[:-1])}] table of " if len(key_path) > 1 else ""
        env_var = self._prefix + "__".join(key_path).upper()
        return (
            f"{_dotted(key_path)!r} is a secret and must not be given on the command line, where "
            f"every user of the machine can read it; set the environment variable {env_var} or "
            f"`{key_path[-1]}` in {table}the config file"
        )

    # -- bookkeeping --------------------------------------------------------------------------

    def _lookup(self, key_path: tuple[str, ...], where: str, shown: str) -> _FieldType:
        """The type of the field at `key_path` below `self._cls`, or an unknown-key error."""
        cls = self._cls
        for depth, name in enumerate(key_path):
            known = dict(_configurable_types(cls))
            if name not in known:
                hint = _suggest(name, known)
                raise LayeredConfigError(f"unknown configuration key {shown!r} in {where}{hint}")
            ftype = known[name]
            if depth == len(key_path) - 1:
                return ftype
            if ftype.section is None:
                prefix = _dotted(key_path[: depth + 1])
                raise LayeredConfigError(
                    f"unknown configuration key {shown!r} in {where}: {prefix!r} is not a section"
                )
            cls = ftype.section
        raise LayeredConfigError(f"empty configuration key in {where}")

    def _set(self, key_path: tuple[str, ...], value: object, where: str) -> None:
        node = self._values
        for name in key_path[:-1]:
            node = node.setdefault(name, {})
        node[key_path[-1]] = value
        self.sources[_dotted(key_path)] = where

    def build(self) -> object:
        return _construct(self._cls, self._values, (), None)


def _construct(cls: type, given: dict[str, Any], path: tuple[str, ...], base: object) -> object:
    """An instance of `cls` with `given` values over `base` (or over the class defaults)."""
    known = dict(_configurable_types(cls))
    kwargs: dict[str, object] = {}
    for name, value in given.items():
        section = known[name].section
        if section is None:
            kwargs[name] = value
        else:
            inner_base = getattr(base, name) if base is not None else _default_of(cls, name)
            kwargs[name] = _construct(section, value, (*path, name), inner_base)
    where = f"section {_dotted(path)!r}" if path else "configuration"
    try:
        if base is not None:
            return dataclasses.replace(typing.cast(Any, base), **kwargs)
        return cls(**kwargs)
    except TypeError as exc:
        # a field without a default that no layer set
        raise LayeredConfigError(f"{where} is incomplete: {exc}") from None
    except ValueError as exc:
        raise LayeredConfigError(f"{where} is invalid: {exc}") from None


def _default_of(cls: type, name: str) -> object:
    for f in dataclasses.fields(cls):
        if f.name == name:
            default = _field_default(f)
            return None if default is dataclasses.MISSING else default
    return None


def _field_default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# -- the schema -------------------------------------------------------------------------------


def _configurable(cls: type) -> list[tuple[dataclasses.Field[Any], _FieldType]]:
    hints = typing.get_type_hints(cls)
    return [
        (f, _field_type(hints[f.name], f.repr, f"{cls.__name__}.{f.name}"))
        for f in dataclasses.fields(cls)
        if f.init
    ]


def _configurable_types(cls: type) -> list[tuple[str, _FieldType]]:
    return [(f.name, ftype) for f, ftype in _configurable(cls)]


def _field_type(annotation: object, shown: bool, owner: str) -> _FieldType:
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{owner}: unions other than `X | None` are not supported")
        optional = True
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if optional:
            raise TypeError(f"{owner}: a section cannot be optional")
        return _FieldType(None, False, False, annotation, not shown)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALAR_NAMES:
            return _FieldType(args[0], True, optional, None, not shown)
        raise TypeError(f"{owner}: only tuple[X, ...] of a scalar type is supported")
    if isinstance(annotation, type) and annotation in _SCALAR_NAMES:
        return _FieldType(annotation, False, optional, None, not shown)
    raise TypeError(f"{owner}: type {annotation!r} is not supported in a configuration")


def _env_names(cls: type, prefix: str) -> dict[str, tuple[tuple[str, ...], _FieldType]]:
    """Every environment variable name the configuration understands → its key path and type."""
    names: dict[str, tuple[tuple[str, ...], _FieldType]] = {}

    def walk(c: type, path: tuple[str, ...]) -> None:
        for name, ftype in _configurable_types(c):
            key_path = (*path, name)
            names[prefix + "__".join(key_path).upper()] = (key_path, ftype)
            if ftype.section is not None:
                walk(ftype.section, key_path)

    walk(cls, ())
    return names


# -- conversion -------------------------------------------------------------------------------


def _convert_typed(raw: object, ftype: _FieldType, key: str, where: str) -> object:
    """A value from TOML or a typed override, which must already have the field's type."""
    if raw is None:
        if ftype.optional:
            return None
        raise LayeredConfigError(f"{key!r} in {where} must be {ftype.describe()}, not nothing")
    if ftype.is_tuple:
        if not isinstance(raw, list | tuple):
            raise _wrong_type(raw, ftype, key, where, echo=True)
        return tuple(_convert_scalar(item, ftype, key, where) for item in raw)
    return _convert_scalar(raw, ftype, key, where)


def _convert_scalar(raw: object, ftype: _FieldType, key: str, where: str) -> object:
    scalar = ftype.scalar
    # bool is an int subclass: never accept True for a number or 1 for a flag
    if scalar is bool and isinstance(raw, bool):
        return raw
    if scalar is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if scalar is float and isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise LayeredConfigError(f"{key!r} in {where} must be a finite number")
        return float(raw)
    if scalar is str and isinstance(raw, str):
        return raw
    if scalar is Path and isinstance(raw, str | Path):
        if str(raw) == "":
            raise LayeredConfigError(f"{key!r} in {where} must be a non-empty path")
        return Path(raw)
    raise _wrong_type(raw, ftype, key, where, echo=True)


def _convert_text(text: str, ftype: _FieldType, key: str, where: str, *, echo: bool) -> object:
    """A value given as a string (environment, command line), converted to the field's type."""
    if ftype.optional and text == "":
        return None
    if ftype.is_tuple:
        items = [item.strip() for item in text.split(",")]
        return tuple(
            _scalar_from_text(item, ftype, key, where, echo=echo) for item in items if item
        )
    return _scalar_from_text(text, ftype, key, where, echo=echo)


def _scalar_from_text(text: str, ftype: _FieldType, key: str, where: str, *, echo: bool) -> object:
    scalar = ftype.scalar
    if scalar is str:
        return text
    if scalar is Path:
        return _convert_scalar(text, ftype, key, where)
    if scalar is bool:
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    elif scalar is int:
        try:
            return int(text.strip())
        except ValueError:
            pass
    elif scalar is float:
        try:
            number = float(text.strip())
        except ValueError:
            pass
        else:
            return _convert_scalar(number, ftype, key, where)
    raise _wrong_type(text, ftype, key, where, echo=echo)


def _wrong_type(
    raw: object, ftype: _FieldType, key: str, where: str, *, echo: bool
) -> LayeredConfigError:
    if ftype.scalar is bool and not ftype.is_tuple and isinstance(raw, str):
        expected = "a boolean (true/false, 1/0, yes/no, on/off)"
    else:
        expected = ftype.describe()
    if ftype.secret or not echo:
        return LayeredConfigError(f"{key!r} in {where} must be {expected}")
    shown = repr(raw)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return LayeredConfigError(f"{key!r} in {where} must be {expected}; got {shown}")


def _dotted(key_path: tuple[str, ...]) -> str:
    return ".".join(key_path)


def _suggest(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- command-line flags -----------------------------------------------------------------------


def add_config_flags(
    parser: argparse.ArgumentParser, config_cls: type, *, exclude: Collection[str] = ()
) -> None:
    """Add a flag for every configurable field of `config_cls` but secrets and `exclude`.

    Flags are `--<section>-<key>` (or the field's declared `flag`), with the field's help and
    default; a tuple's flag is repeatable (one item each time), a boolean's is `--x/--no-x`, and
    the empty string unsets a field that may be `None`. A flag not given leaves its key out of
    `flag_overrides`, so it overrides nothing. Raises `TypeError` for a field without help.
    """
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for key in config_keys(config_cls):
        if key.secret or key.key in exclude:
            continue
        if not key.help:
            raise TypeError(f"configuration key {key.key!r} declares no help (use `setting`)")
        container: argparse._ActionsContainer = parser
        group = key.metadata.get("group")
        if len(key.path) > 1:
            if key.path[:-1] not in groups:
                groups[key.path[:-1]] = _section_group(parser, config_cls, key.path[:-1])
            container = groups[key.path[:-1]]
        elif isinstance(group, str):
            if (group,) not in groups:
                groups[(group,)] = parser.add_argument_group(group)
            container = groups[(group,)]
        _add_flag(container, key)


def _section_group(
    parser: argparse.ArgumentParser, config_cls: type, path: tuple[str, ...]
) -> argparse._ArgumentGroup:
    cls = config_cls
    for name in path:
        section = dict(_configurable_types(cls))[name].section
        if section is None:
            raise TypeError(f"{_dotted(path)!r} is not a section of {config_cls.__name__}")
        cls = section
    summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    return parser.add_argument_group(f"[{_dotted(path)}]", summary or None)


def _add_flag(container: argparse._ActionsContainer, key: ConfigKey) -> None:
    ftype = key.field_type
    help_text = key.help.replace("%", "%%")
    shown = _shown_default(key.default)
    if ftype.scalar is bool and not ftype.is_tuple:
        container.add_argument(
            key.flag,
            dest=key.key,
            action=argparse.BooleanOptionalAction,
            default=argparse.SUPPRESS,
            help=f"{help_text} (default: {shown})",
        )
        return
    choices = key.metadata.get("choices")
    metavar = key.metadata.get("metavar")
    if not isinstance(metavar, str):
        seconds = ftype.scalar is float and key.path[-1].endswith("_s")
        metavar = (
            None if choices else "S" if seconds else _METAVARS[typing.cast(type, ftype.scalar)]
        )
    container.add_argument(
        key.flag,
        dest=key.key,
        action="append" if ftype.is_tuple else "store",
        type=_flag_converter(key),
        choices=typing.cast(Sequence[str], choices) if choices else None,
        metavar=metavar,
        default=argparse.SUPPRESS,
        help=f"{help_text} ({'repeatable; ' if ftype.is_tuple else ''}default: {shown})",
    )


def _flag_converter(key: ConfigKey) -> Callable[[str], object]:
    ftype = key.field_type
    scalar = typing.cast(type, ftype.scalar)

    def convert(text: str) -> object:
        if ftype.optional and not ftype.is_tuple and text == "":
            return None
        try:
            return _scalar_from_text(text, ftype, key.key, OVERRIDES_SOURCE, echo=True)
        except LayeredConfigError:
            one = "a finite number" if scalar is float else _SCALAR_NAMES[scalar][0]
            raise argparse.ArgumentTypeError(f"{text!r} is not {one}") from None

    return convert


def flag_overrides(args: argparse.Namespace, config_cls: type) -> dict[str, object]:
    """The dotted overrides `load_layered` takes, from the flags `add_config_flags` added and
    the command line gave."""
    given = vars(args)
    overrides: dict[str, object] = {}
    for key in config_keys(config_cls):
        if key.key in given:
            value = given[key.key]
            overrides[key.key] = tuple(value) if isinstance(value, list) else value
    return overrides


def _shown_default(value: object) -> str:
    if value is None or value is dataclasses.MISSING:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) if value else "none"
    text = str(value)
    return text if text else "empty"


# -- rendering --------------------------------------------------------------------------------


def render_toml(
    config: object,
    *,
    env_prefix: str,
    sources: Mapping[str, str] | None = None,
    with_help: bool = False,
) -> str:
    """`config` as TOML that `load_layered` reads back, secrets redacted and commented out.

    A secret is shown as `# key = "<redacted>"` (or as its `redact` form), with the environment
    variable that should hold it; a field that is `None` as a commented-out line. `sources` (from
    `load_layered`) adds each value's layer as a trailing comment; `with_help` puts each key's
    meaning above it, as in the example files.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"{config!r} is not a dataclass instance")
    lines: list[str] = []
    _render_table(config, (), lines, env_prefix, sources, with_help)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def _render_table(
    table: object,
    path: tuple[str, ...],
    lines: list[str],
    env_prefix: str,
    sources: Mapping[str, str] | None,
    with_help: bool,
) -> None:
    fields = _configurable(type(table))
    sections: list[tuple[str, object]] = []
    if path:
        if with_help:
            doc = (type(table).__doc__ or "").strip()
            lines.extend(_comment(" ".join(doc.split())))
        lines.append(f"[{_dotted(path)}]")
        if with_help:
            lines.append("")
    for f, ftype in fields:
        value = getattr(table, f.name)
        if ftype.section is not None:
            sections.append((f.name, value))
            continue
        key = ConfigKey((*path, f.name), ftype, _field_default(f), f.metadata)
        if with_help and key.help:
            lines.extend(_comment(key.help))
        lines.append(_render_key(key, value, env_prefix, sources))
        if with_help:
            lines.append("")
    if not with_help:
        lines.append("")
    for name, section in sections:
        _render_table(section, (*path, name), lines, env_prefix, sources, with_help)


def _render_key(
    key: ConfigKey, value: object, env_prefix: str, sources: Mapping[str, str] | None
) -> str:
    name = key.path[-1]
    source = sources.get(key.key, DEFAULT_SOURCE) if sources is not None else None
    if source == OVERRIDES_SOURCE:
        source = "command line"
    if key.secret:
        if not value:
            note = f"secret, not set: set {key.env_var(env_prefix)} in the environment"
            return f'# {name} = ""  # {note}'
        redact = key.metadata.get("redact")
        shown = _toml_value(redact(str(value)) if callable(redact) else REDACTED)
        note = f"secret, from {source}" if source is not None else "secret, set"
        return f"# {name} = {shown}  # {note}"
    if value is None:
        return f"# {name} = <unset>" + (f"  # {source}" if source is not None else "")
    return f"{name} = {_toml_value(value)}" + (f"  # {source}" if source is not None else "")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, _HELP_WIDTH - 2)] if text else []
