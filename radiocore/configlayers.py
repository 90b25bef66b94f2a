"""Layered loading of a frozen-dataclass configuration: defaults → TOML file → environment →
overrides.

Standard library only, and nothing of the project: the board agent may reuse this module.

The configuration class is a frozen dataclass; a field whose type is itself a dataclass is a
*section* (a TOML table, one level or more deep). Supported field types: `int`, `float`,
`bool`, `str`, `pathlib.Path`, `tuple[X, ...]` of those scalars, any of them `| None`, and
sections. Fields declared with `init=False` are not configurable.

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
   field that may be `None`;
4. overrides (from command-line flags): dotted keys (`"ice.host_addresses"`) with either typed
   values or strings, strings being converted as for the environment; `None` only for a field
   that may be `None`.

Unknown keys and values of the wrong type raise `LayeredConfigError`, naming the key and the
layer it came from. The value of a field declared with `repr=False` (a secret) is never
repeated in an error message.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["LayeredConfigError", "load_layered"]

T = TypeVar("T")

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_SCALAR_NAMES: dict[type, tuple[str, str]] = {
    bool: ("a boolean", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    Path: ("a path", "paths"),
}


class LayeredConfigError(ValueError):
    """A configuration layer holds an unknown key or a value of the wrong type."""


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


def load_layered(
    config_cls: type[T],
    *,
    file: Path | None,
    env: Mapping[str, str],
    env_prefix: str,
    overrides: Mapping[str, object],
    env_ignore: Sequence[str] = (),
) -> T:
    """Build `config_cls` from its defaults, then `file`, `env` and `overrides` (see module doc)."""
    if not (dataclasses.is_dataclass(config_cls) and isinstance(config_cls, type)):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    if not env_prefix:
        raise ValueError("env_prefix must not be empty: every variable would be a config key")
    loader = _Loader(config_cls)
    if file is not None:
        loader.apply_file(file)
    loader.apply_env(env, env_prefix, tuple(env_ignore))
    loader.apply_overrides(overrides)
    return typing.cast(T, loader.build())


class _Loader:
    def __init__(self, config_cls: type) -> None:
        self._cls = config_cls
        self._values: dict[str, Any] = {}  # nested dicts mirroring the sections

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
        self._apply_table(data, (), where)

    def _apply_table(self, table: Mapping[str, object], path: tuple[str, ...], where: str) -> None:
        for key, raw in table.items():
            key_path = (*path, key)
            ftype = self._lookup(key_path, where, _dotted(key_path))
            if ftype.section is not None:
                if not isinstance(raw, dict):
                    raise LayeredConfigError(
                        f"{_dotted(key_path)!r} in {where} must be a table ([{_dotted(key_path)}])"
                    )
                self._apply_table(raw, key_path, where)
            else:
                self._set(key_path, _convert_typed(raw, ftype, _dotted(key_path), where))

    def apply_env(self, env: Mapping[str, str], prefix: str, ignore: tuple[str, ...]) -> None:
        names = _env_names(self._cls, prefix)
        for var in sorted(env):
            if not var.startswith(prefix) or var.startswith(ignore):
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
            self._set(key_path, _convert_text(env[var], ftype, _dotted(key_path), where))

    def apply_overrides(self, overrides: Mapping[str, object]) -> None:
        where = "overrides"
        for dotted, raw in overrides.items():
            key_path = tuple(dotted.split("."))
            ftype = self._lookup(key_path, where, dotted)
            if ftype.section is not None:
                if not isinstance(raw, Mapping):
                    raise LayeredConfigError(
                        f"{dotted!r} in {where} is a section; give one of its keys ({dotted}.<key>)"
                    )
                self._apply_table(raw, key_path, where)
            elif isinstance(raw, str) and (ftype.is_tuple or ftype.scalar is not str):
                self._set(key_path, _convert_text(raw, ftype, dotted, where))
            else:
                self._set(key_path, _convert_typed(raw, ftype, dotted, where))

    # -- bookkeeping --------------------------------------------------------------------------

    def _lookup(self, key_path: tuple[str, ...], where: str, shown: str) -> _FieldType:
        """The type of the field at `key_path` below `self._cls`, or an unknown-key error."""
        cls = self._cls
        for depth, name in enumerate(key_path):
            known = _configurable_fields(cls)
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

    def _set(self, key_path: tuple[str, ...], value: object) -> None:
        node = self._values
        for name in key_path[:-1]:
            node = node.setdefault(name, {})
        node[key_path[-1]] = value

    def build(self) -> object:
        return _construct(self._cls, self._values, (), None)


def _construct(cls: type, given: dict[str, Any], path: tuple[str, ...], base: object) -> object:
    """An instance of `cls` with `given` values over `base` (or over the class defaults)."""
    known = _configurable_fields(cls)
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
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return None


# -- the schema -------------------------------------------------------------------------------


def _configurable_fields(cls: type) -> dict[str, _FieldType]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: _field_type(hints[f.name], f.repr, f"{cls.__name__}.{f.name}")
        for f in dataclasses.fields(cls)
        if f.init
    }


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
        for name, ftype in _configurable_fields(c).items():
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
            raise _wrong_type(raw, ftype, key, where)
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
    raise _wrong_type(raw, ftype, key, where)


def _convert_text(text: str, ftype: _FieldType, key: str, where: str) -> object:
    """A value given as a string (environment, command line), converted to the field's type."""
    if ftype.optional and text == "":
        return None
    if ftype.is_tuple:
        items = [item.strip() for item in text.split(",")]
        return tuple(_scalar_from_text(item, ftype, key, where) for item in items if item)
    return _scalar_from_text(text, ftype, key, where)


def _scalar_from_text(text: str, ftype: _FieldType, key: str, where: str) -> object:
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
    raise _wrong_type(text, ftype, key, where)


def _wrong_type(raw: object, ftype: _FieldType, key: str, where: str) -> LayeredConfigError:
    shown = "the value given" if ftype.secret else repr(raw)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if ftype.scalar is bool and not ftype.is_tuple and isinstance(raw, str):
        expected = "a boolean (true/false, 1/0, yes/no, on/off)"
    else:
        expected = ftype.describe()
    return LayeredConfigError(f"{key!r} in {where} must be {expected}; got {shown}")


def _dotted(key_path: tuple[str, ...]) -> str:
    return ".".join(key_path)


def _suggest(name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
