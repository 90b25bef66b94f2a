"""`radiocore bench fuzz`: generated input through every decoder that reads from the network.

A decoder here is the code a peer's bytes reach first, called the way the program calls it:

- `datachannel/*`: data-channel messages (`decode_operator_message` as the server's room and the
  board agent read an operator's, `decode_station_message` as the room reads the station's,
  `decode_server_message` as clients read the server's), with `message_type` on a refusal as
  the room does;
- `socketio/<namespace>/<event>`: `decode_payload` for the payload type of every event in the
  namespaces' `events` tables, and the `auth` of both namespaces;
- `agent/*`: what the board agent makes of the server: connect refusals (`connect_refusal`,
  `placed_elsewhere`),
  acks (`decode_ack`), the `error` and `shutdown` events; `turn/ice_url` the ICE URLs it is given;
- `rest/<operation>`: `decode_json` with the request type of every REST endpoint that takes a
  body, and `rest/field/*`, `rest/query/*`, `rest/path/*` the validators of what people type
  (callsign, email, password, locator, bands, board name, price, board id);
- `rigctld/reply`: a real `RigClient` reading what a rig behind rigctld answers (every typed
  command), through a socketpair the harness writes the reply into;
- `sfu/offer`, `sfu/candidate`: the SFU itself (`Sfu.connect_agent` applies an offer on a real
  aiortc peer connection and answers; `Sfu.add_candidate` after the `ice_candidate` payload is
  decoded). These open peer connections that gather on 127.0.0.1 and run ICE checks to whatever
  addresses an input names, so the whole run happens inside a private network namespace
  (`unshare -n`: loopback only, nothing leaves the machine); without one they are skipped, and
  the report says so.

Inputs: hypothesis draws each base input (`given`, in seeded runs of at most `RUN_EXAMPLES`
examples: the same command gives the same inputs) from strategies built from the protocol's own
types (msgspec's type information: field names, tags, literals, enum values, bounds, patterns),
JSON-shaped values made of the protocol's field names, raw bytes and text, and mutations of valid
messages (SDP offers from Chrome, Firefox and aiortc; rig replies; candidates). From each base
input `--mutants` more are derived with a PRNG the example seeds (bit flips, JSON tokens, deep
nesting, invalid UTF-8 and lone surrogates, fields dropped, added, renamed and retyped, values at
and past their bounds; SDP lines dropped, repeated and edited): hypothesis alone takes
milliseconds an example, which would make 100,000 inputs a decoder take hours. `inputs` counts
every call of the decoder.

An input is `accepted` (the decoder returned) or `refused` (it raised its documented error);
anything else is a crash, listed by kind (exception and where it was raised) with a count and the
first input, truncated. An accepted value that breaks the decoder's contract (a message that does
not encode and decode to itself, a rig reading that is not a finite number) is a crash too. An
input that took longer than `--hang-ms` (1 s) is a hang; one still running after `WATCHDOG_S` is
abandoned (and is a hang).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Final, cast

import msgspec
import msgspec.inspect as mi
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

import radiocore_protocol as protocol

#: Inputs per decoder unless told (the issue's target).
DEFAULT_EXAMPLES: Final = 100_000
#: Inputs derived from each hypothesis example, besides the example itself.
DEFAULT_MUTANTS: Final = 49
#: Most hypothesis examples in one seeded run (its memory grows with the examples it ran).
RUN_EXAMPLES: Final = 400
#: An input that takes longer than this is a hang.
DEFAULT_HANG_MS: Final = 1000
#: An input still running after this long is abandoned (and counted as a hang).
WATCHDOG_S: Final = 10.0
#: Longest repr of an input in the report.
MAX_REPR: Final = 300
#: Kinds of crash (exception, place) listed per decoder; all are counted.
MAX_CRASH_KINDS: Final = 10
#: The board the SFU decoders negotiate for.
BOARD: Final = "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e"
#: Trickled candidates applied to one agent connection before it is made anew.
CANDIDATES_PER_CONNECTION: Final = 100


# -- what a run reports ---------------------------------------------------------------------------


class Abandoned(BaseException):
    """An input ran longer than `WATCHDOG_S`: the harness gave up on it (a hang)."""


def shown(value: Any) -> str:
    """`value` for a report: its repr, cut to `MAX_REPR` characters."""
    text = repr(value)
    if len(text) <= MAX_REPR:
        return text
    return f"{text[:MAX_REPR]}… ({len(text)} characters)"


def _where(exc: BaseException) -> str:
    """The innermost frame `exc` went through: `file:line (function)`."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    frame = frames[-1]
    path = Path(frame.filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return f"{path}:{frame.lineno} ({frame.name})"


@dataclass
class DecoderReport:
    """What one decoder did with its inputs."""

    name: str
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    crash_count: int = 0
    crashes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hangs: list[dict[str, Any]] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def crash(self, data: Any, error: str, where: str) -> None:
        self.crash_count += 1
        kind = (error.split(":", 1)[0], where)
        entry = self.crashes.get(kind)
        if entry is not None:
            entry["count"] += 1
        elif len(self.crashes) < MAX_CRASH_KINDS:
            self.crashes[kind] = {"error": error[:MAX_REPR], "at": where, "count": 1,
                                  "input": shown(data)}  # fmt: skip

    def hang(self, data: Any, seconds: float, abandoned: bool) -> None:
        if len(self.hangs) < MAX_CRASH_KINDS:
            self.hangs.append(
                {"ms": round(seconds * 1000, 1), "abandoned": abandoned, "input": shown(data)}
            )
        else:
            self.hangs[-1]["more"] = self.hangs[-1].get("more", 0) + 1

    @property
    def hang_count(self) -> int:
        return len(self.hangs) + sum(int(h.get("more", 0)) for h in self.hangs)

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.durations)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0.0
        return {
            "inputs": self.inputs,
            "accepted": self.accepted,
            "refused": self.refused,
            "crashes": list(self.crashes.values()),
            "crash_count": self.crash_count,
            "hangs": self.hangs,
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else 0.0,
            "p99_ms": round(p99 * 1000, 3),
            "seconds": round(self.seconds, 1),
        }


# -- decoders -------------------------------------------------------------------------------------

#: A problem with a value the decoder accepted (None: none).
Check = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class AsyncTarget:
    """An asynchronous decoder as a session yields it; `tidy` runs between inputs, untimed."""

    decode: Callable[[Any], Awaitable[object]]
    tidy: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Decoder:
    """One decoder: how to call it, what it may raise, and how to make its inputs."""

    name: str
    #: What is called, and where the program calls it.
    what: str
    #: The documented errors: raising one of these is refusing the input.
    refused: tuple[type[BaseException], ...]
    #: Base inputs (hypothesis).
    inputs: SearchStrategy[Any]
    #: One more input derived from one (seeded PRNG).
    mutate: Callable[[random.Random, Any], Any]
    #: A synchronous decoder, or
    decode: Callable[[Any], object] | None = None
    #: an asynchronous one, with what it needs (opened once per run on its own event loop).
    session: Callable[[], AbstractAsyncContextManager[AsyncTarget]] | None = None
    check: Check | None = None
    #: Opens peer connections: runs only inside a network namespace.
    isolated: bool = False


# -- vocabularies and mutations -------------------------------------------------------------------

_COMMON_STRINGS: Final = (
    "", " ", "\x00", "\n", "\r\n", "null", "true", "0", "-1", "1e999", "NaN", "\u2028",
    "\u202e", "\U0001f4fb", "é", "ß", "\ufb00", "A" * 64, "%s%n", "\\u0000", "..", "/",
)  # fmt: skip
_COMMON_NUMBERS: Final[tuple[int | float, ...]] = (
    0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63),
    -(2**63) - 1, 10**30, 0.5, -0.0, 1e308, -1e308, 5e-324,
)  # fmt: skip
#: What a Socket.IO event argument can hold that JSON text decoded by msgspec cannot: Python's
#: json reads NaN and Infinity, a string may hold lone surrogates ("\ud800"), a binary
#: attachment is bytes.
_PYTHON_ONLY: Final = (
    math.nan, math.inf, -math.inf, 10**400, b"", b"\xff\x00", "\ud800", "a\udfffb",
)  # fmt: skip
_BYTE_TOKENS: Final = (
    b'"', b"\\", b"{", b"}", b"[", b"]", b":", b",", b"null", b"true", b"false", b"-", b"0",
    b"-0", b"1e999", b"1E-999", b"NaN", b"Infinity", b'"\\ud800"', b'"\\u0000"', b"\\u",
    b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b" ", b"\n", b"\t",
    b"\xef\xbb\xbf", b"9" * 400,
)  # fmt: skip
_INTERESTING_BYTES: Final = (0x00, 0x0A, 0x0D, 0x20, 0x22, 0x5C, 0x7F, 0x80, 0xC0, 0xED, 0xFF)
_CHARS: Final = (
    "\x00", "\n", "\r", "\t", " ", "\u2028", "\u00a0", "\ufeff", "\U0001f4fb", "é", "\u0301",
    "/", "\\", '"', ":", ";", ",", "=", "%", "a", "Z", "9", "-", ".",
)  # fmt: skip
_NESTING: Final = (10, 100, 1000, 3000)
#: Python values nest only so deep (json.loads gives up near the recursion limit).
_PYTHON_NESTING: Final = (10, 100, 400)
#: Repeating a piece never makes an input longer than this (characters or bytes): past every
#: limit the decoders enforce, and a chain of repeats stays bounded.
MAX_GROWTH: Final = 1 << 17


@dataclass(frozen=True)
class Vocabulary:
    """The words of a decoder's inputs: the keys, strings and numbers its types name."""

    keys: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    numbers: tuple[int | float, ...] = ()
    #: Lengths its strings and lists are bounded by.
    lengths: tuple[int, ...] = ()
    #: Whole values to splice in (valid messages, sub-objects).
    values: tuple[Any, ...] = ()


def _unwrap(info: Any) -> Any:
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def vocabulary_of(
    *types: Any, strings: Sequence[str] = (), values: Sequence[Any] = ()
) -> Vocabulary:
    """The field names, tags, literals, enum values and bounds of `types` (msgspec types)."""
    keys: set[str] = set()
    words: set[str] = set(strings)
    numbers: set[int | float] = set()
    lengths: set[int] = set()
    seen: set[type] = set()

    def walk(info: Any) -> None:
        info = _unwrap(info)
        if isinstance(info, mi.StructType):
            if info.cls in seen:
                return
            seen.add(info.cls)
            if info.tag_field is not None:
                keys.add(info.tag_field)
                words.add(str(info.tag))
            for f in info.fields:
                keys.add(f.encode_name)
                walk(f.type)
        elif isinstance(info, mi.UnionType):
            for member in info.types:
                walk(member)
        elif isinstance(info, mi.ListType):
            walk(info.item_type)
            lengths.update(n for n in (info.min_length, info.max_length) if n is not None)
        elif isinstance(info, mi.DictType):
            walk(info.value_type)
        elif isinstance(info, mi.StrType):
            lengths.update(n for n in (info.min_length, info.max_length) if n is not None)
            if info.pattern == protocol.BOARD_ID_PATTERN:
                words.update((BOARD, BOARD.upper(), BOARD[:-1], BOARD + "0", "{" + BOARD + "}"))
        elif isinstance(info, mi.IntType | mi.FloatType):
            for bound in (info.ge, info.le, info.gt, info.lt):
                if bound is not None:
                    numbers.update((bound, bound - 1, bound + 1))
        elif isinstance(info, mi.LiteralType):
            words.update(str(v) for v in info.values)
        elif isinstance(info, mi.EnumType):
            words.update(str(member.value) for member in info.cls)

    for t in types:
        walk(mi.type_info(t))
    return Vocabulary(
        keys=tuple(sorted(keys)),
        strings=tuple(sorted(words)),
        numbers=tuple(sorted(numbers, key=float)),
        lengths=tuple(sorted(lengths)),
        values=tuple(values),
    )


def _nested(depth: int, as_dict: bool) -> Any:
    value: Any = []
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


class Mutator:
    """Cheap seeded mutations of JSON-shaped values, texts and bytes, from a vocabulary.
    `python_values`: values as a Socket.IO event hands them over (NaN, bytes, lone surrogates)."""

    def __init__(self, vocab: Vocabulary, *, python_values: bool = False) -> None:
        self.vocab = vocab
        self.python_values = python_values
        self.strings: tuple[str, ...] = (*vocab.strings, *_COMMON_STRINGS)
        self.numbers: tuple[int | float, ...] = (*vocab.numbers, *_COMMON_NUMBERS)
        scalars: list[Any] = [None, True, False, [], {}, *self.numbers, *self.strings]
        scalars += vocab.values
        if python_values:
            scalars += _PYTHON_ONLY
        self.scalars: tuple[Any, ...] = tuple(scalars)
        self.keys: tuple[str, ...] = (*vocab.keys, "", "type", "__proto__", "x")
        self.tokens: tuple[bytes, ...] = (
            *_BYTE_TOKENS,
            *(json.dumps(k).encode() for k in vocab.keys),
            *(json.dumps(s).encode() for s in vocab.strings),
            *(str(n).encode() for n in vocab.numbers),
        )
        self.chars = _CHARS + (("\ud800", "\udfff") if python_values else ())

    # -- JSON-shaped values

    def value(self, rng: random.Random, value: Any, depth: int = 0) -> Any:
        """`value` with one node changed (copied along the way, never in place)."""
        if depth < 8 and rng.random() < 0.65:
            if isinstance(value, dict) and value:
                key = rng.choice(list(value))
                out = dict(value)
                out[key] = self.value(rng, value[key], depth + 1)
                return out
            if isinstance(value, list) and value:
                index = rng.randrange(len(value))
                items = list(value)
                items[index] = self.value(rng, value[index], depth + 1)
                return items
        return self._node(rng, value)

    def _node(self, rng: random.Random, value: Any) -> Any:
        roll = rng.randrange(11)
        if roll == 1 and isinstance(value, dict):
            return self._dict(rng, value)
        if roll == 2 and isinstance(value, list):
            return self._list(rng, value)
        if roll == 3 and isinstance(value, str):
            return self.text(rng, value)
        if roll == 4 and isinstance(value, int | float) and not isinstance(value, bool):
            return self._number(rng, value)
        if roll == 5:
            return [value] if rng.random() < 0.5 else {rng.choice(self.keys): value}
        if roll == 6:
            depth = rng.choice(_PYTHON_NESTING)
            return _nested(depth, rng.random() < 0.5)
        if roll == 7 and self.vocab.lengths:  # a string at or past a length bound
            return "x" * max(0, rng.choice(self.vocab.lengths) + rng.choice((-1, 0, 1)))
        if roll == 8:
            return rng.choice(self.strings)
        if roll == 9 and self.vocab.values:
            return rng.choice(self.vocab.values)
        return rng.choice(self.scalars)

    @staticmethod
    def _number(rng: random.Random, value: int | float) -> Any:
        op = rng.randrange(6)
        if op == 0:
            return value + 1
        if op == 1:
            return value - 1
        if op == 2:
            return -value
        if op == 3:
            return value * 2 ** rng.randrange(1, 70)
        if op == 4:
            return str(value)
        if isinstance(value, int):
            return float(value) if abs(value) < 2**1000 else value
        return int(value) if math.isfinite(value) else 0

    def _dict(self, rng: random.Random, value: dict[Any, Any]) -> dict[Any, Any]:
        out = dict(value)
        op = rng.randrange(4)
        if op == 0 and out:
            del out[rng.choice(list(out))]
        elif op == 1 and out:
            key = rng.choice(list(out))
            out[rng.choice(self.keys)] = out.pop(key)
        elif op == 2:
            out[rng.choice(self.keys)] = rng.choice(self.scalars)
        else:
            out[rng.choice(self.keys)] = self.value(rng, rng.choice(self.scalars))
        return out

    def _list(self, rng: random.Random, value: list[Any]) -> list[Any]:
        items = list(value)
        op = rng.randrange(5)
        if op == 0 and items:
            del items[rng.randrange(len(items))]
        elif op == 1 and items:
            items.insert(rng.randrange(len(items)), rng.choice(items))
        elif op == 2 and items and self.vocab.lengths:  # past a length bound (not a string's)
            items = [rng.choice(items)] * (min(rng.choice(self.vocab.lengths), 1000) + 1)
        elif op == 3:
            items.append(rng.choice(self.scalars))
        else:
            items = []
        return items

    # -- text

    def text(self, rng: random.Random, text: str) -> str:
        """`text` with one edit: a character or word put in, a piece cut, doubled, changed."""
        pos = rng.randint(0, len(text))
        end = min(len(text), pos + rng.randint(1, 16))
        op = rng.randrange(9)
        if op == 0:
            return text[:pos] + rng.choice(self.chars) + text[pos:]
        if op == 1:
            return text[:pos] + rng.choice(self.strings) + text[pos:]
        if op == 2:
            return text[:pos] + text[end:]
        if op == 3:
            return text[:end] + text[pos:end] + text[end:]
        if op == 4:
            return text[:pos]
        if op == 5 and pos < len(text):
            return text[:pos] + rng.choice(self.chars) + text[pos + 1 :]
        if op == 6:
            return text.swapcase()
        if op == 7 and text:
            return text * max(1, min(rng.choice((2, 10, 200)), MAX_GROWTH // len(text)))
        return rng.choice(self.strings)

    # -- bytes

    def data(self, rng: random.Random, data: bytes) -> bytes:
        """`data` with one edit: a bit flipped, a byte or token put in, a piece cut, doubled,
        deep nesting inserted, another input spliced on."""
        pos = rng.randint(0, len(data))
        end = min(len(data), pos + rng.randint(1, 16))
        op = rng.randrange(10)
        if op == 0 and pos < len(data):
            return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
        if op == 1 and pos < len(data):
            return data[:pos] + bytes([rng.choice(_INTERESTING_BYTES)]) + data[pos + 1 :]
        if op == 2:
            return data[:pos] + rng.choice(self.tokens) + data[pos:]
        if op == 3:
            return data[:pos] + data[end:]
        if op == 4:
            return data[:end] + data[pos:end] + data[end:]
        if op == 5:
            return data[:pos]
        if op == 6:
            opening = b"[" if rng.random() < 0.5 else b'{"a":'
            return data[:pos] + opening * rng.choice(_NESTING) + data[pos:]
        if op == 7 and self.vocab.values:
            other = _encode_json(rng.choice(self.vocab.values))
            return data[:pos] + other[rng.randint(0, len(other)) :]
        if op == 8 and data:
            return data * max(1, min(rng.choice((2, 3, 50)), MAX_GROWTH // len(data)))
        return data[:pos] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[end:]

    def wire(self, rng: random.Random, data: bytes | str) -> bytes | str:
        """A JSON message as it might arrive: bytes, or text (some of it undecodable)."""
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if rng.random() < 0.5:
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):
                raw = self.data(rng, raw)
            else:
                try:
                    raw = _dumps(rng, self.value(rng, value))
                except (ValueError, RecursionError, TypeError):
                    raw = self.data(rng, raw)
        else:
            raw = self.data(rng, raw)
        roll = rng.random()
        if roll < 0.55:
            return raw
        if roll < 0.85:
            return raw.decode("utf-8", "replace")
        return raw.decode("utf-8", "surrogateescape")  # invalid bytes become lone surrogates


def _encode_json(value: Any) -> bytes:
    try:
        return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        return repr(value).encode("utf-8", "surrogatepass")


def _dumps(rng: random.Random, value: Any) -> bytes:
    compact = rng.random() < 0.7
    return json.dumps(
        value,
        ensure_ascii=rng.random() < 0.5,
        allow_nan=True,
        separators=(",", ":") if compact else (", ", ": "),
    ).encode("utf-8", "surrogatepass")


# -- hypothesis strategies ------------------------------------------------------------------------


def _text(python_values: bool, max_size: int = 24) -> SearchStrategy[str]:
    base = st.text(max_size=max_size)
    if python_values:
        return st.one_of(base, st.sampled_from(("\ud800", "x\udfff", "\ud83d")))
    return base


def scalars(vocab: Vocabulary, python_values: bool) -> SearchStrategy[Any]:
    options: list[SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=python_values, allow_infinity=python_values),
        _text(python_values),
    ]
    if vocab.strings:
        options.append(st.sampled_from(vocab.strings))
    if vocab.numbers:
        options.append(st.sampled_from(vocab.numbers))
    if python_values:
        options.append(st.binary(max_size=8))
    return st.one_of(options)


def json_like(vocab: Vocabulary, python_values: bool) -> SearchStrategy[Any]:
    """JSON-shaped values whose objects use the vocabulary's keys (and others)."""
    keys = st.one_of(st.sampled_from(vocab.keys), st.text(max_size=6)) if vocab.keys else st.text()
    return st.recursive(
        scalars(vocab, python_values),
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=10,
    )


def _bounds(info: Any) -> tuple[Any, Any]:
    low = info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else None)
    high = info.le if info.le is not None else (info.lt - 1 if info.lt is not None else None)
    return low, high


def schema(t: Any, python_values: bool = False) -> SearchStrategy[Any]:
    """Values shaped like `t` (a msgspec type): mostly valid, with values at and past its
    bounds, wrong types now and then."""
    return _schema(mi.type_info(t), python_values)


def _schema(info: Any, python: bool) -> SearchStrategy[Any]:
    valid, off = _schema_parts(_unwrap(info), python)
    if off is None:
        return valid
    return st.one_of(valid, valid, valid, off)  # mostly valid: inputs get past the first field


def _schema_parts(
    info: Any, python: bool
) -> tuple[SearchStrategy[Any], SearchStrategy[Any] | None]:
    """(values that fit `info`, values that do not or only just: bounds, wrong types)."""
    if isinstance(info, mi.StructType):
        required: dict[str, SearchStrategy[Any]] = {}
        optional: dict[str, SearchStrategy[Any]] = {}
        if info.tag_field is not None:
            required[info.tag_field] = st.just(info.tag)
        for f in info.fields:
            (required if f.required else optional)[f.encode_name] = _schema(f.type, python)
        return st.fixed_dictionaries(required, optional=optional), None
    if isinstance(info, mi.UnionType):
        return st.one_of([_schema(member, python) for member in info.types]), None
    if isinstance(info, mi.StrType):
        low, high = info.min_length or 0, min(info.max_length or 40, 40)
        if info.pattern:
            valid: SearchStrategy[Any] = st.from_regex(info.pattern, fullmatch=True)
        elif low <= high:
            valid = st.text(min_size=low, max_size=high)
        else:
            valid = st.text(min_size=low, max_size=low).map(lambda t: t * 2)
        edges = [n for n in (info.min_length, info.max_length) if n is not None]
        offs = [_text(python)]
        if edges:
            offs.append(st.sampled_from(["x" * max(0, n + d) for n in edges for d in (-1, 0, 1)]))
        return valid, st.one_of(offs)
    if isinstance(info, mi.IntType):
        low, high = _bounds(info)
        edges = [b + d for b in (low, high) if b is not None for d in (-1, 0, 1)]
        return st.integers(low, high), st.one_of(st.sampled_from(edges or [0]), st.integers())
    if isinstance(info, mi.FloatType):
        low, high = _bounds(info)
        near: list[float] = [b + d for b in (low, high) if b is not None for d in (-1, 0, 1)]
        return st.floats(low, high, allow_nan=False), st.one_of(
            st.sampled_from(near or [0.0]), st.floats(allow_nan=python, allow_infinity=python)
        )
    if isinstance(info, mi.BoolType):
        return st.booleans(), st.sampled_from((0, 1, "true", None))
    if isinstance(info, mi.NoneType):
        return st.none(), None
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values), _text(python, 8)
    if isinstance(info, mi.EnumType):
        return st.sampled_from([m.value for m in info.cls]), _text(python, 8)
    if isinstance(info, mi.ListType):
        item = _schema(info.item_type, python)
        low = info.min_length or 0
        high = max(low, min(info.max_length if info.max_length is not None else 4, 4))
        over: SearchStrategy[Any] = st.just([])
        if info.max_length is not None:
            n = info.max_length + 1
            over = item.map(lambda x: [x] * n)
        return st.lists(item, min_size=low, max_size=high), st.one_of(over, item)
    if isinstance(info, mi.DictType):
        values = _schema(info.value_type, python)
        return st.dictionaries(st.text(max_size=8), values, max_size=3), None
    if isinstance(info, mi.DecimalType):
        return st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str), st.one_of(
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(("NaN", "Infinity", "-0", "1e999999", "12.345", "1E+2")),
        )
    if isinstance(info, mi.DateTimeType):
        aware = st.builds(
            lambda moment, minutes: moment.replace(
                tzinfo=timezone(timedelta(minutes=minutes))
            ).isoformat(),
            st.datetimes(),
            st.integers(-1439, 1439),
        )
        return aware, st.one_of(st.datetimes().map(datetime.isoformat), _text(python, 30))
    return json_like(Vocabulary(), python), None


def wire_inputs(t: Any, vocab: Vocabulary) -> SearchStrategy[bytes | str]:
    """Encoded JSON messages shaped like `t`, or made of its words, bytes and text."""
    encoded = st.one_of(schema(t), json_like(vocab, False)).map(_encode_json)
    return st.one_of(
        encoded,
        encoded.map(lambda b: b.decode("utf-8", "replace")),
        st.binary(max_size=64),
        st.text(max_size=64),
    )


def payload_inputs(t: Any, vocab: Vocabulary) -> SearchStrategy[Any]:
    """Socket.IO event arguments shaped like `t` (Python values, as python-socketio hands
    them over), or made of its words."""
    return st.one_of(schema(t, True), json_like(vocab, True), scalars(vocab, True))


# -- the decoders: the protocol package -----------------------------------------------------------


def _round_trip(decode: Callable[[bytes], object]) -> Check:
    """The message encodes (as the server does to forward it) and decodes to itself."""

    def check(_: Any, message: Any) -> str | None:
        again = decode(protocol.encode(message))
        return None if again == message else f"decodes again as {again!r}"

    return check


def _data_channel(
    name: str, decode: Callable[[bytes | str], object], union: Any, what: str
) -> Decoder:
    vocab = vocabulary_of(union, values=())
    samples = _valid_messages(union)
    vocab = Vocabulary(vocab.keys, vocab.strings, vocab.numbers, vocab.lengths, samples)
    mutator = Mutator(vocab)

    def receive(data: bytes | str) -> object:
        try:
            return decode(data)
        except protocol.ProtocolError:
            protocol.message_type(data)  # the room names the refused message's type
            raise

    return Decoder(
        name=name,
        what=what,
        refused=(protocol.ProtocolError,),
        inputs=st.one_of(wire_inputs(union, vocab), st.sampled_from(samples).map(_encode_json)),
        mutate=mutator.wire,
        decode=receive,
        check=_round_trip(decode),
    )


def _valid_messages(union: Any) -> tuple[Any, ...]:
    """One valid message of each type of `union`, as JSON values."""
    examples = {
        protocol.Ptt: protocol.Ptt(state=True),
        protocol.SetFrequency: protocol.SetFrequency(value=14_074_000),
        protocol.SetMode: protocol.SetMode(value="USB"),
        protocol.SetPower: protocol.SetPower(value=50),
        protocol.Keepalive: protocol.Keepalive(),
        protocol.FloorRequest: protocol.FloorRequest(state=True),
        protocol.Status: protocol.Status(
            ptt=False, freq=7_074_000, mode="LSB", smeter=-73, squelch=True, power=50
        ),
        protocol.Heartbeat: protocol.Heartbeat(timestamp=1_800_000_000.5),
        protocol.Capabilities: protocol.Capabilities(
            modes=["USB", "LSB"],
            freq_ranges=[protocol.FrequencyRange(low=100_000, high=30_000_000)],
        ),
        protocol.TxStopped: protocol.TxStopped(reason="deadman"),
        protocol.Error: protocol.Error(code=protocol.ErrorCode.RIG_ERROR, message="x", ref="ptt"),
        protocol.Floor: protocol.Floor(holder="DL1ABC", you=True, tx_limit_s=180),
        protocol.PttReleased: protocol.PttReleased(reason="override", by="DL1ABC"),
        protocol.TxWarning: protocol.TxWarning(remaining_s=10),
        protocol.Roster: protocol.Roster(
            listeners=[protocol.RosterEntry(callsign="DL1ABC", transmitting=True)],
            count=1,
            holder="DL1ABC",
        ),
    }
    members = [_unwrap(m).cls for m in _unwrap(mi.type_info(union)).types]
    return tuple(msgspec.to_builtins(examples[m]) for m in members)


def _payload(name: str, payload_type: type[Any], what: str) -> Decoder:
    vocab = vocabulary_of(payload_type)
    mutator = Mutator(vocab, python_values=True)

    def check(_: Any, value: Any) -> str | None:
        protocol.to_builtins(value)
        return None if isinstance(value, payload_type) else f"not a {payload_type.__name__}"

    return Decoder(
        name=name,
        what=what,
        refused=(protocol.ProtocolError,),
        inputs=payload_inputs(payload_type, vocab),
        mutate=mutator.value,
        decode=lambda value: protocol.decode_payload(payload_type, value),
        check=check,
    )


def _socketio_payload_types() -> list[tuple[str, type[Any], str]]:
    """(namespace, event, payload type) of every event the server's namespaces accept, from
    their `events` tables, and the `auth` of each namespace's connect."""
    from signaling.namespaces import AgentNamespace, OperatorNamespace
    from signaling.stations import StationService

    no_service = cast(StationService, None)  # the tables name handlers; none is called here
    found: list[tuple[str, type[Any], str]] = [
        (protocol.AGENT_NAMESPACE, protocol.AgentAuth, "connect"),
        (protocol.OPERATOR_NAMESPACE, protocol.OperatorAuth, "connect"),
    ]
    for namespace in (AgentNamespace(no_service, 1), OperatorNamespace(no_service, 1)):
        for event, (payload_type, _) in namespace.events.items():
            found.append((namespace.namespace, payload_type, event))
    return found


def protocol_decoders() -> list[Decoder]:
    decoders = [
        _data_channel(
            "datachannel/operator",
            protocol.decode_operator_message,
            protocol.OperatorMessage,
            "decode_operator_message: an operator's message in the server's room, and the "
            "server's relay of it in the board agent (StationControl.receive)",
        ),
        _data_channel(
            "datachannel/station",
            protocol.decode_station_message,
            protocol.StationMessage,
            "decode_station_message: the station's messages in the server's room",
        ),
        _data_channel(
            "datachannel/server",
            protocol.decode_server_message,
            protocol.ServerMessage,
            "decode_server_message: the server's messages in a client",
        ),
    ]
    for namespace, payload_type, event in _socketio_payload_types():
        decoders.append(
            _payload(
                f"socketio{namespace}/{event}",
                payload_type,
                f"decode_payload({payload_type.__name__}): the `{event}` "
                f"{'auth' if event == 'connect' else 'event'} of {namespace}",
            )
        )
    return decoders


# -- the decoders: the board agent's view of the server -------------------------------------------


def agent_decoders() -> list[Decoder]:
    from board_agent.errors import SessionError
    from board_agent.server_link import (
        _log_server_error,
        _log_shutdown,
        connect_refusal,
        decode_ack,
        placed_elsewhere,
    )
    from turn.urls import parse_ice_url

    refusal_vocab = vocabulary_of(protocol.ErrorBody, strings=("unauthorized", "Unauthorized!"))
    refusal_vocab = Vocabulary(
        (*refusal_vocab.keys, "data"), refusal_vocab.strings, refusal_vocab.numbers,
        refusal_vocab.lengths,
    )  # fmt: skip
    refusal = Mutator(refusal_vocab, python_values=True)
    refusals = st.one_of(
        st.fixed_dictionaries(
            {"message": _text(True, 40)}, optional={"data": schema(protocol.ErrorBody, True)}
        ),
        payload_inputs(protocol.ErrorBody, refusal_vocab),
    )

    placed_vocab = vocabulary_of(
        protocol.PlacedElsewhere, strings=("placed_elsewhere", "https://node2.example.org/")
    )
    placed_vocab = Vocabulary(
        (*placed_vocab.keys, "data"), placed_vocab.strings, placed_vocab.numbers,
        placed_vocab.lengths,
    )  # fmt: skip
    placements = st.one_of(
        st.fixed_dictionaries(
            {"message": _text(True, 40)}, optional={"data": schema(protocol.PlacedElsewhere, True)}
        ),
        refusals,
    )

    def check_placed(_: Any, value: Any) -> str | None:
        if value is None:
            return None
        ok = (
            isinstance(value, protocol.PlacedElsewhere)
            and value.code is protocol.ErrorCode.PLACED_ELSEWHERE
            and value.server.startswith(("http://", "https://"))
        )
        return None if ok else f"not a placed_elsewhere body: {value!r}"

    def check_refusal(_: Any, value: Any) -> str | None:
        if value is None:
            return None
        code, message = value
        ok = (code is None or isinstance(code, protocol.ErrorCode)) and isinstance(message, str)
        return None if ok else f"not (code, message): {value!r}"

    def ack(event: str, reply_type: type[Any]) -> Decoder:
        vocab = vocabulary_of(reply_type, protocol.ErrorBody, strings=("ok", "error"))
        keys = (*vocab.keys, "ok", "error")
        vocab = Vocabulary(keys, vocab.strings, vocab.numbers, vocab.lengths)
        good = schema(reply_type, True).map(lambda v: {"ok": True, **v})
        bad = schema(protocol.ErrorBody, True).map(lambda e: {"ok": False, "error": e})
        return Decoder(
            name=f"agent/ack/{event}",
            what=f"decode_ack: the ack of the agent's `{event}` ({reply_type.__name__})",
            refused=(SessionError,),
            inputs=st.one_of(good, bad, payload_inputs(reply_type, vocab)),
            mutate=Mutator(vocab, python_values=True).value,
            decode=lambda reply: decode_ack(event, reply, reply_type),
        )

    def server_error(data: Any) -> object:  # ServerLink._server_error
        try:
            return protocol.decode_payload(protocol.MediaFailed, data)
        except protocol.ProtocolError:
            _log_server_error(data)
            raise

    error_vocab = vocabulary_of(protocol.MediaFailed, protocol.ErrorBody)
    shutdown_vocab = vocabulary_of(protocol.Shutdown)
    url_vocab = Vocabulary(
        strings=("stun:", "stuns:", "turn:", "turns:", "?transport=udp", "?transport=tcp",
                 "[::1]", "example.org", ":3478", ":0", ":65536", "@", "//", "127.0.0.1"),
    )  # fmt: skip
    hosts = (
        "turn.example.org", "203.0.113.7", "[2001:db8::1]", "[::1", "a_b", "-x.org",
        "xn--bcher-kva.example", "",
    )  # fmt: skip
    urls = st.one_of(
        st.builds(
            lambda scheme, host, port, query: f"{scheme}:{host}{port}{query}",
            st.sampled_from(("stun", "stuns", "turn", "turns", "http", "")),
            st.sampled_from(hosts),
            st.sampled_from(("", ":3478", ":0", ":65535", ":65536", ":x", ":²", ":" + "9" * 5000)),
            st.sampled_from(("", "?transport=udp", "?transport=tcp", "?transport=tls", "?x=y")),
        ),
        st.text(max_size=40),
    )
    return [
        Decoder(
            name="agent/connect_error",
            what="connect_refusal: the server's refusal of the agent's connection "
            "(never raises: None for what it does not understand)",
            refused=(),
            inputs=refusals,
            mutate=refusal.value,
            decode=connect_refusal,
            check=check_refusal,
        ),
        Decoder(
            name="agent/connect_error/placed_elsewhere",
            what="placed_elsewhere: a refusal that places the station on another node, read "
            "before connect_refusal (never raises: None for anything else)",
            refused=(),
            inputs=placements,
            mutate=Mutator(placed_vocab, python_values=True).value,
            decode=placed_elsewhere,
            check=check_placed,
        ),
        ack("hello", protocol.AgentWelcome),
        ack("offer", protocol.Answer),
        Decoder(
            name="agent/event/error",
            what="the agent's `error` event: decode_payload(MediaFailed), else logged "
            "(_log_server_error) as ServerLink._server_error does",
            refused=(protocol.ProtocolError,),
            inputs=payload_inputs(protocol.MediaFailed, error_vocab),
            mutate=Mutator(error_vocab, python_values=True).value,
            decode=server_error,
        ),
        Decoder(
            name="agent/event/shutdown",
            what="_log_shutdown: the agent's `shutdown` event (never raises)",
            refused=(),
            inputs=payload_inputs(protocol.Shutdown, shutdown_vocab),
            mutate=Mutator(shutdown_vocab, python_values=True).value,
            decode=_log_shutdown,
        ),
        Decoder(
            name="turn/ice_url",
            what="parse_ice_url: each ICE URL the agent is given in `welcome` (probe_targets)",
            refused=(ValueError,),
            inputs=urls,
            mutate=Mutator(url_vocab).text,
            decode=parse_ice_url,
        ),
    ]


# -- the decoders: REST ---------------------------------------------------------------------------


def rest_decoders() -> list[Decoder]:
    import signaling.api  # noqa: F401 - each module declares its endpoints on import
    from signaling.api.boards import BoardUpdate, board_name, board_price
    from signaling.api.http import API, decode_json
    from signaling.errors import BadRequestError
    from signaling.store import canonical_board_id
    from signaling.validation import (
        canonical_bands,
        canonical_locator,
        canonical_locator_prefix,
        locator_centre,
        parse_bands,
        validate_callsign,
        validate_email,
        validate_password,
    )

    decoders: list[Decoder] = []
    for endpoint in API.endpoints:
        body_type = endpoint.request
        if body_type is None:
            continue
        vocab = vocabulary_of(body_type)
        mutator = Mutator(vocab)

        def body_check(_: Any, value: Any, body_type: type[Any] = body_type) -> str | None:
            return None if isinstance(value, body_type) else f"not a {body_type.__name__}"

        def body_mutate(rng: random.Random, data: Any, mutator: Mutator = mutator) -> Any:
            return _as_bytes(mutator.wire(rng, data))

        def body_decode(raw: Any, body_type: type[Any] = body_type) -> object:
            return decode_json(raw, body_type)

        decoders.append(
            Decoder(
                name=f"rest/{endpoint.operation_id}",
                what=f"decode_json({body_type.__name__}): the body of "
                f"{endpoint.method} {endpoint.path}",
                refused=(BadRequestError,),
                inputs=wire_inputs(body_type, vocab).map(
                    lambda d: d.encode("utf-8", "surrogatepass") if isinstance(d, str) else d
                ),
                mutate=body_mutate,
                decode=body_decode,
                check=body_check,
            )
        )

    def field_decoder(
        name: str, decode: Callable[[Any], object], words: Sequence[str], what: str
    ) -> Decoder:
        vocab = Vocabulary(strings=tuple(words))
        return Decoder(
            name=name,
            what=what,
            refused=(BadRequestError,),
            inputs=st.one_of(st.sampled_from(tuple(words)), st.text(max_size=40)),
            mutate=Mutator(vocab).text,
            decode=decode,
        )

    callsigns = ("DL1ABC", "G4ABC/P", "VK2/G4ABC", "KH6/W1AW/M", "3DA0RS", "K1A", "9A1AA",
                 "GB13COL", "DL1 ABC", "DL1ABC/", "ß", "\ufb00", "W1AW/QRP", "2E0ABC")  # fmt: skip
    emails = ("op@example.org", "a@b.c", "@x.org", "a@@b.org", "a@b..org", "a b@c.org",
              "a@b.org\n", "x" * 250 + "@b.org")  # fmt: skip
    locators = ("JO62", "jo62QM", "JO62qm12", "RR99xx99", "AA00aa00", "SA00", "JO6", "J")
    bands = ("20m", "40m", "2200m", "1.25m", "70CM", " 20m ", "20m,40m", ",", "13cm,13cm")

    def locator(text: str) -> object:
        value = canonical_locator(text)
        return value, locator_centre(value)  # the map shows a station at its centre

    def price(raw: bytes) -> object:  # price_eur as decode_json hands it to the handler
        body = decode_json(b'{"price_eur": ' + raw + b"}", BoardUpdate)
        return None if body.price_eur is msgspec.UNSET else board_price(body.price_eur)

    band_names = Mutator(Vocabulary(strings=bands))

    prices = st.one_of(
        st.sampled_from((b"12.50", b"0", b"10000", b"10000.01", b"-0.00", b'"1e-999999999"',
                         b'"NaN"', b'"Infinity"', b"1e999999", b"null", b'"12,50"')),
        st.decimals(allow_nan=True).map(lambda d: json.dumps(str(d)).encode()),
        st.floats().map(lambda f: json.dumps(f).encode()),
    )  # fmt: skip
    decoders += [
        field_decoder(
            "rest/field/callsign", validate_callsign, callsigns,
            "validate_callsign: `callsign` of register",
        ),
        field_decoder(
            "rest/field/email", validate_email, emails,
            "validate_email: `email` of register, login and grants",
        ),
        field_decoder(
            "rest/field/password", validate_password, ("p" * 10, "p" * 1024, "p" * 1025),
            "validate_password: `password` of register",
        ),
        field_decoder(
            "rest/field/locator", locator, locators,
            "canonical_locator (and locator_centre): a board's `locator`",
        ),
        field_decoder(
            "rest/query/grid", canonical_locator_prefix, locators,
            "canonical_locator_prefix: `grid` of GET /api/stations",
        ),
        field_decoder(
            "rest/query/bands", parse_bands, bands, "parse_bands: `bands` of GET /api/stations"
        ),
        field_decoder(
            "rest/field/name", board_name, ("Station", " x ", "\t", "x" * 65),
            "board_name: a board's `name` (pair, settings)",
        ),
        field_decoder(
            "rest/path/board_id", canonical_board_id, (BOARD, BOARD.upper(), "{" + BOARD + "}"),
            "canonical_board_id: `board_id` of a pairing",
        ),
        Decoder(
            name="rest/field/bands",
            what="canonical_bands: a board's `bands` (a JSON list; of strings once decoded, "
            "but it takes anything in it)",
            refused=(BadRequestError,),
            inputs=st.lists(st.one_of(st.sampled_from(bands), scalars(Vocabulary(), False))),
            mutate=lambda rng, names: _listed(band_names.value(rng, names)),
            decode=canonical_bands,
        ),
        Decoder(
            name="rest/field/price_eur",
            what="board_price: a board's `price_eur`, as decode_json hands it over (Decimal)",
            refused=(BadRequestError,),
            inputs=prices,
            mutate=Mutator(Vocabulary(strings=("0", "12.5", "1e999"))).data,
            decode=price,
        ),
    ]  # fmt: skip
    return decoders


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data


# -- the decoders: rigctld's replies --------------------------------------------------------------

_CAPS: Final = (
    "Caps dump for model: 1\nModel name:\tDummy\nMfg name:\tHamlib\nBackend version:\t20221128.0\n"
    "Rig type:\tOther \nDCD type:\tRig capable\nHas targetable VFO: Y\n"
    "Get level: PREAMP(0..0/0) STRENGTH(0..0/0) RFPOWER(0..0/0) SQL(0..0/0)\n"
    "Set level: PREAMP(0..0/0) RFPOWER(0..0/0)\nMode list: AM CW USB LSB RTTY FM WFM CWR RTTYR \n"
    "TX ranges #1 for Dummy#1:\n\t150000 Hz - 1500000000 Hz\n\t\tMode list: AM CW USB\n"
    "RX ranges #1 for Dummy#1:\n\t{value} Hz - 1500000000 Hz\n\t\tMode list: AM CW USB\n"
    "RX ranges #1 status for Dummy#1:\tOK (0)\nCan get DCD:\tY\n"
)

#: (command, the reply's lines before `RPRT n` with `{value}` where a number goes, the call).
_RIG_CALLS: Final[tuple[tuple[str, str, Callable[[Any], Awaitable[object]]], ...]] = (
    ("get_freq", "get_freq:\nFrequency: {value}\n", lambda c: c.get_freq()),
    ("get_mode", "get_mode:\nMode: USB\nPassband: {value}\n", lambda c: c.get_mode()),
    ("get_ptt", "get_ptt:\nPTT: {value}\n", lambda c: c.get_ptt()),
    ("get_level STRENGTH", "get_level: STRENGTH\n{value}\n", lambda c: c.get_level("STRENGTH")),
    ("get_level RFPOWER", "get_level: RFPOWER\n{value}\n", lambda c: c.get_level("RFPOWER")),
    ("get_dcd", "get_dcd:\nDCD: {value}\n", lambda c: c.get_dcd()),
    ("dump_caps", "dump_caps:\n" + _CAPS, lambda c: c.dump_caps()),
    ("set_freq", "set_freq: {value}\n", lambda c: c.set_freq(14_074_000)),
    ("set_mode", "set_mode: USB {value}\n", lambda c: c.set_mode("USB")),
    ("set_ptt", "set_ptt: {value}\n", lambda c: c.set_ptt(False)),
    ("set_level", "set_level: RFPOWER {value}\n", lambda c: c.set_level("RFPOWER", 0.5)),
)
_RIG_NUMBERS: Final = (
    "inf", "-inf", "nan", "NaN", "Infinity", "1e999", "-1e999", "1" * 400, "0x10", "1_000", " 7 ",
    "\u0661\u0662", "", "+", "-", ".", "1e", "14074000", "-54", "0.5", "1", "0", "2",
)  # fmt: skip
_RPRT_CODES: Final = ("0",) * 8 + ("-1", "-5", "-6", "-11", "-20", "1", "-999", "9" * 5000, "x")


def _rig_reply(index: int) -> SearchStrategy[tuple[int, bytes]]:
    template = _RIG_CALLS[index][1]
    number = st.one_of(
        st.sampled_from(_RIG_NUMBERS),
        st.integers().map(str),
        st.floats().map(repr),
        st.text(max_size=8),
    )
    return st.builds(
        lambda value, code, end: (
            index,
            (template.replace("{value}", value) + f"RPRT {code}{end}").encode(
                "utf-8", "surrogatepass"
            ),
        ),
        number,
        st.sampled_from(_RPRT_CODES),
        st.sampled_from(("\n", "\n", "\r\n", "", "\n\n")),
    )


def _rig_check(item: Any, value: Any) -> str | None:
    command = _RIG_CALLS[item[0]][0]
    if command.startswith("set_"):
        return None if value is None else f"{command} returned {value!r}"
    if command == "get_freq":
        ok = type(value) is int
    elif command == "get_mode":
        ok = isinstance(value[0], str) and type(value[1]) is int
    elif command in ("get_ptt", "get_dcd"):
        ok = type(value) is bool
    elif command.startswith("get_level"):
        ok = isinstance(value, float) and math.isfinite(value)
    else:
        ok = all(0 < low <= high for low, high in value.rx_ranges)
    return None if ok else f"{command} read {value!r}"


@contextlib.asynccontextmanager
async def _rig_session() -> AsyncIterator[AsyncTarget]:
    from board_agent.rigctld import MAX_LINE_BYTES, RigClient

    class ScriptedRig(RigClient):
        """A real client whose every connection is a socketpair answered with `reply` (what a
        rig behind rigctld might send), then closed."""

        def __init__(self, reply: bytes) -> None:
            super().__init__("fuzz", 0, timeout_s=1.0)
            self.reply = reply
            self.peers: list[asyncio.StreamWriter] = []

        async def _open_stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            ours, theirs = socket.socketpair()
            reader, writer = await asyncio.open_connection(sock=ours, limit=MAX_LINE_BYTES)
            _, peer = await asyncio.open_connection(sock=theirs)
            peer.write(self.reply)
            peer.close()  # after what is buffered: the client reads the reply, then EOF
            self.peers.append(peer)
            return reader, writer

        async def finish(self) -> None:
            await self.close()
            for peer in self.peers:
                with contextlib.suppress(OSError):
                    await peer.wait_closed()

    async def decode(item: Any) -> object:
        index, reply = item
        client = ScriptedRig(reply)
        try:
            return await _RIG_CALLS[index][2](client)
        finally:
            await client.finish()

    yield AsyncTarget(decode)


def rig_decoders() -> list[Decoder]:
    from board_agent.errors import RigError

    vocab = Vocabulary(
        strings=(*_RIG_NUMBERS, "RPRT 0\n", "RPRT -1\n", "\n", "Frequency: ", "Mode: ", "PTT: ",
                 "Passband: ", "RX ranges #1 for A:\n", "\t1 Hz - 2 Hz\n", "get_freq:\n"),
    )  # fmt: skip
    mutator = Mutator(vocab)
    mutator.tokens += tuple(s.encode() for s in vocab.strings)

    def mutate(rng: random.Random, item: Any) -> Any:
        index, reply = item
        roll = rng.random()
        if roll < 0.05:  # another command's reply
            return rng.randrange(len(_RIG_CALLS)), reply
        if roll < 0.5:  # one line of the reply edited, the others kept
            lines = reply.split(b"\n")
            at = rng.randrange(len(lines))
            if rng.random() < 0.5:
                head, sep, _ = lines[at].partition(b": ")
                lines[at] = head + sep + rng.choice(_RIG_NUMBERS).encode()
            else:
                lines[at] = mutator.data(rng, lines[at])
            return index, b"\n".join(lines)
        return index, mutator.data(rng, reply)

    return [
        Decoder(
            name="rigctld/reply",
            what="RigClient's typed commands (get_freq … dump_caps, set_*) reading a rig's "
            "reply through a real stream",
            refused=(RigError,),
            inputs=st.integers(0, len(_RIG_CALLS) - 1).flatmap(_rig_reply),
            mutate=mutate,
            session=_rig_session,
            check=_rig_check,
        )
    ]


# -- the decoders: the SFU's offers and candidates ------------------------------------------------

_FINGERPRINT: Final = ":".join(f"{b:02X}" for b in range(32))
#: An offer as Chrome makes it for the console: audio both ways and the control channel,
#: candidates trickled.
CHROME_OFFER: Final = f"""v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 4e1d6c0a
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Fw4p
a=ice-pwd:ZHUmD1AfbH9v/5qJ0dkiFbK2
a=ice-options:trickle
a=fingerprint:sha-256 {_FINGERPRINT}
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:4e1d6c0a 6f2b1c9e-8d7a-4c3b-9e2f-1a0b9c8d7e6f
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:Yq4n2kM6lJ0w8pXo
a=ssrc:3735928559 msid:4e1d6c0a 6f2b1c9e-8d7a-4c3b-9e2f-1a0b9c8d7e6f
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-ufrag:Fw4p
a=ice-pwd:ZHUmD1AfbH9v/5qJ0dkiFbK2
a=ice-options:trickle
a=fingerprint:sha-256 {_FINGERPRINT}
a=setup:actpass
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
""".replace("\n", "\r\n")
#: Firefox's: listen only, its own attribute order, a host candidate in the offer.
FIREFOX_OFFER: Final = f"""v=0
o=mozilla...THIS_IS_SDPARTA-128.0 3034719466374226542 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 {_FINGERPRINT}
a=group:BUNDLE 0 1
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=recvonly
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:3f1b8f0e9c2a4d6b8e0f1a2b3c4d5e6f
a=ice-ufrag:7a1b2c3d
a=mid:0
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000/1
a=setup:actpass
a=candidate:0 1 UDP 2122252543 127.0.0.1 40000 typ host
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-pwd:3f1b8f0e9c2a4d6b8e0f1a2b3c4d5e6f
a=ice-ufrag:7a1b2c3d
a=mid:1
a=setup:actpass
a=sctp-port:5000
a=max-message-size:1073741823
""".replace("\n", "\r\n")
#: aiortc's (the board agent's): bundled, candidates and end-of-candidates in the offer.
AIORTC_OFFER: Final = f"""v=0
o=- 4004802559 4004802559 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=audio 54333 UDP/TLS/RTP/SAVPF 96 9 0 8
c=IN IP4 127.0.0.1
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:0
a=msid:19d1f14c dcafc648
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:4189919124 cname:a81c7588
a=rtpmap:96 opus/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=candidate:16572de6 1 udp 2130706431 127.0.0.1 54333 typ host
a=end-of-candidates
a=ice-ufrag:9Vr1
a=ice-pwd:SGosdPU4Rgsar4RGkpJYtC
a=fingerprint:sha-256 {_FINGERPRINT}
a=setup:actpass
m=application 54333 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 127.0.0.1
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
a=candidate:16572de6 1 udp 2130706431 127.0.0.1 54333 typ host
a=end-of-candidates
a=ice-ufrag:9Vr1
a=ice-pwd:SGosdPU4Rgsar4RGkpJYtC
a=fingerprint:sha-256 {_FINGERPRINT}
a=setup:actpass
""".replace("\n", "\r\n")
OFFERS: Final = (CHROME_OFFER, FIREFOX_OFFER, AIORTC_OFFER)

#: SDP lines an offer might have (or should not), for insertion. No mDNS (`.local`) names:
#: aioice waits up to 1 s to resolve each (a bounded wait, not a hang worth finding again).
SDP_LINES: Final = (
    "a=group:BUNDLE", "a=group:BUNDLE 0 1 2", "a=group:BUNDLE 1", "a=group:LS 0 1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=audio 0 UDP/TLS/RTP/SAVPF 111",
    "m=audio 9 RTP/AVP 0", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=application 9 DTLS/SCTP 5000", "a=sctpmap:5000 webrtc-datachannel 1024",
    "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/48000", "a=rtpmap:111 OPUS/48000/2",
    "a=rtpmap:96 VP8/90000", "a=rtpmap:127 opus/0/2", "a=rtpmap:-1 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111", "a=rtcp-fb:111 nack",
    "a=ssrc:1 cname:x", "a=ssrc-group:FID 1 2", "a=ssrc:4294967296 cname:x",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:99999 x",
    "a=extmap-allow-mixed", "a=msid:- -", "a=setup:active", "a=setup:passive",
    "a=setup:holdconn", "a=setup:", f"a=fingerprint:sha-256 {_FINGERPRINT[:20]}",
    "a=fingerprint:md5 00:11", "a=fingerprint:", "a=ice-ufrag:", "a=ice-pwd:",
    "a=ice-ufrag:ab", "a=ice-lite", "a=ice-options:trickle",
    "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
    "a=candidate:1 1 udp 2122260223 ::1 9 typ host",
    "a=candidate:1 1 tcp 1518280447 127.0.0.1 9 typ host tcptype passive",
    "a=candidate:2 1 udp 1686052607 203.0.113.5 46154 typ srflx raddr 10.0.0.5 rport 46154",
    "a=candidate:3 1 udp 41885439 198.51.100.9 3478 typ relay raddr 0.0.0.0 rport 0",
    "a=candidate:x 99 udp -1 127.0.0.1 70000 typ prflx", "a=candidate:", "a=end-of-candidates",
    "a=inactive", "a=sendonly", "a=recvonly", "a=sendrecv", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=rtcp-mux", "a=rtcp-rsize", "a=max-message-size:0", "a=sctp-port:0",
    "a=sctp-port:70000", "c=IN IP6 ::1", "c=IN IP4", "b=AS:30", "a=mid:", "a=mid:0",
    "a=mid:1", "a=mid:2", "v=1", "o=", "s=", "t=x y", "m=", "a=", "a=rtpmap:", "x=y",
)  # fmt: skip


def _sdp_lines(sdp: str) -> tuple[list[str], str]:
    ending = "\r\n" if "\r\n" in sdp else "\n"
    return sdp.split(ending), ending


class SdpMutator:
    """Line edits of an SDP (dropped, repeated, moved, replaced, inserted from `SDP_LINES`) and
    character edits within a line."""

    def __init__(self) -> None:
        self.text = Mutator(Vocabulary(strings=SDP_LINES), python_values=True)

    def __call__(self, rng: random.Random, sdp: Any) -> Any:
        if not isinstance(sdp, str):
            return self.text.value(rng, sdp)
        lines, ending = _sdp_lines(sdp)
        pos = rng.randrange(len(lines) + 1)
        op = rng.randrange(8)
        if op == 0 and lines:
            del lines[min(pos, len(lines) - 1)]
        elif op == 1 and lines:
            lines.insert(pos, rng.choice(lines))
        elif op in (2, 3):
            lines.insert(pos, rng.choice(SDP_LINES))
        elif op == 4 and lines:
            index = min(pos, len(lines) - 1)
            lines[index] = self.text.text(rng, lines[index])
        elif op == 5 and lines:
            lines[min(pos, len(lines) - 1)] = rng.choice(SDP_LINES)
        elif op == 6:
            ending = rng.choice(("\n", "\r\n", "\r", ""))
        else:
            return self.text.text(rng, sdp)
        return ending.join(lines)


def _sdp_inputs() -> SearchStrategy[Any]:
    edits = st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from(("insert", "drop", "replace")),
                  st.sampled_from(SDP_LINES)),
        max_size=3,
    )  # fmt: skip

    def edited(sdp: str, changes: list[tuple[int, str, str]]) -> str:
        lines, ending = _sdp_lines(sdp)
        for pos, op, line in changes:
            index = pos % (len(lines) + 1)
            if op == "insert":
                lines.insert(index, line)
            elif lines:
                index = min(index, len(lines) - 1)
                if op == "drop":
                    del lines[index]
                else:
                    lines[index] = line
        return ending.join(lines)

    return st.one_of(
        st.builds(edited, st.sampled_from(OFFERS), edits),
        st.sampled_from(OFFERS),
        st.text(max_size=80),
        st.just(""),
    )


def _candidate_inputs() -> SearchStrategy[Any]:
    candidates = (
        "candidate:842163049 1 udp 1677729535 203.0.113.5 46154 typ srflx raddr 10.0.0.5 "
        "rport 46154 generation 0 ufrag Fw4p network-cost 999",
        "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
        "candidate:2 1 udp 2122262783 ::1 50001 typ host",
        "candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
        "candidate:4 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.5 rport 5000",
        "candidate:5 2 udp 1 127.0.0.1 1 typ host",
        "1 1 udp 2122260223 127.0.0.1 50002 typ host",
        "",
    )
    return st.one_of(
        st.fixed_dictionaries(
            {"candidate": st.sampled_from(candidates)},
            optional={
                "sdpMid": st.sampled_from(("0", "1", "2", "")) | st.none(),
                "sdpMLineIndex": st.integers(-1, 16) | st.none(),
            },
        ),
        payload_inputs(protocol.AgentCandidate, vocabulary_of(protocol.AgentCandidate)),
    )


class CandidateMutator:
    def __init__(self) -> None:
        words = (
            "udp", "tcp", "typ", "host", "srflx", "relay", "prflx", "raddr", "rport", "tcptype",
            "passive", "::1", "127.0.0.1", "0.0.0.0", "65536", "-1", "999999999999",
        )  # fmt: skip
        vocab = vocabulary_of(protocol.AgentCandidate, strings=words)
        self.values = Mutator(vocab, python_values=True)

    def __call__(self, rng: random.Random, payload: Any) -> Any:
        line = payload.get("candidate") if isinstance(payload, dict) else None
        if not isinstance(line, str) or rng.random() >= 0.6:
            return self.values.value(rng, payload)
        if rng.random() < 0.5:  # one field of the line
            parts = line.split(" ")
            index = rng.randrange(len(parts))
            parts[index] = self.values.text(rng, parts[index])
            return {**payload, "candidate": " ".join(parts)}
        return {**payload, "candidate": self.values.text(rng, line)}


@contextlib.asynccontextmanager
async def _sfu(config_host: str = "127.0.0.1") -> AsyncIterator[Any]:
    from media.config import SfuConfig
    from media.sfu import Sfu

    sfu = Sfu(SfuConfig(ice_host_addresses=(config_host,)))
    try:
        yield sfu
    finally:
        await sfu.close()


@contextlib.asynccontextmanager
async def _offer_session() -> AsyncIterator[AsyncTarget]:
    from media.participant import AGENT_KEY

    async with _sfu() as sfu:

        async def decode(sdp: Any) -> object:
            try:
                return await sfu.connect_agent(BOARD, "fuzz", sdp)
            finally:
                await sfu.disconnect(BOARD, AGENT_KEY)

        yield AsyncTarget(decode)


@contextlib.asynccontextmanager
async def _candidate_session() -> AsyncIterator[AsyncTarget]:
    from media.participant import AGENT_KEY

    async with _sfu() as sfu:
        left = 0
        trickled = CHROME_OFFER  # candidates trickled, none in the offer

        async def fresh() -> None:
            nonlocal left
            if left <= 0:
                await sfu.disconnect(BOARD, AGENT_KEY)
                await sfu.connect_agent(BOARD, "fuzz", trickled)
                left = CANDIDATES_PER_CONNECTION

        async def decode(value: Any) -> object:
            nonlocal left
            left -= 1
            message = protocol.decode_payload(protocol.AgentCandidate, value)
            return await sfu.add_candidate(
                BOARD, AGENT_KEY, message.candidate, message.sdpMid, message.sdpMLineIndex
            )

        await fresh()
        yield AsyncTarget(decode, fresh)


def sfu_decoders() -> list[Decoder]:
    from media.errors import MediaError

    return [
        Decoder(
            name="sfu/offer",
            what="Sfu.connect_agent: an offer applied to a real peer connection and answered "
            "(the `offer` event of either namespace reaches it)",
            refused=(MediaError,),
            inputs=_sdp_inputs(),
            mutate=SdpMutator(),
            session=_offer_session,
            isolated=True,
        ),
        Decoder(
            name="sfu/candidate",
            what="decode_payload(AgentCandidate), then Sfu.add_candidate on a connected peer "
            "(the `ice_candidate` event)",
            refused=(protocol.ProtocolError, MediaError),
            inputs=_candidate_inputs(),
            mutate=CandidateMutator(),
            session=_candidate_session,
            isolated=True,
        ),
    ]


def all_decoders() -> list[Decoder]:
    """Every decoder the bench knows, in report order."""
    return [
        *protocol_decoders(),
        *agent_decoders(),
        *rest_decoders(),
        *rig_decoders(),
        *sfu_decoders(),
    ]


def select(decoders: Sequence[Decoder], wanted: str | None) -> list[Decoder]:
    """The decoders `wanted` names (comma-separated; a name, or a prefix ending before a `/`:
    `socketio`, `rest/field`); all of them for None. `ValueError` for a name matching none."""
    if not wanted:
        return list(decoders)
    chosen: list[Decoder] = []
    unknown = []
    for item in (w.strip().rstrip("/") for w in wanted.split(",") if w.strip()):
        matches = [d for d in decoders if d.name == item or d.name.startswith(item + "/")]
        if not matches:
            unknown.append(item)
        chosen += [d for d in matches if d not in chosen]
    if unknown:
        raise ValueError(f"no decoder named {', '.join(unknown)}")
    return chosen


# -- running --------------------------------------------------------------------------------------


class _Watchdog:
    """Abandons a synchronous call after `seconds` (SIGALRM), where the harness owns the signal:
    in the main thread, when nothing else (pytest-timeout) uses it. Elsewhere calls run plain."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
        )
        self._previous: Any = None

    def __enter__(self) -> _Watchdog:
        if self.armed:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
        return self

    def __exit__(self, *_: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)

    @staticmethod
    def _fire(_signum: int, _frame: FrameType | None) -> None:
        raise Abandoned

    def run(self, decode: Callable[[Any], object], data: Any) -> object:
        if not self.armed:
            return decode(data)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            return decode(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _try(
    decoder: Decoder,
    call: Callable[[Any], object],
    report: DecoderReport,
    data: Any,
    hang_s: float,
) -> None:
    started = time.perf_counter()
    try:
        value = call(data)
    except Abandoned:
        elapsed = time.perf_counter() - started
        report.inputs += 1
        report.durations.append(elapsed)
        report.hang(data, elapsed, abandoned=True)
        return
    except decoder.refused:
        elapsed = time.perf_counter() - started
        report.refused += 1
    except (Exception, asyncio.CancelledError) as exc:
        elapsed = time.perf_counter() - started
        report.crash(data, f"{type(exc).__name__}: {exc}", _where(exc))
    else:
        elapsed = time.perf_counter() - started
        problem: str | None = None
        if decoder.check is not None:
            try:
                problem = decoder.check(data, value)
            except Exception as exc:
                report.crash(data, f"{type(exc).__name__}: {exc}", _where(exc))
                problem = ""
        if problem is None:
            report.accepted += 1
        elif problem:
            # not an exception: the decoder returned a value its contract rules out
            report.crash(data, f"ContractError: {problem}", "(the harness's check)")
    report.inputs += 1
    report.durations.append(elapsed)
    if elapsed >= hang_s:
        report.hang(data, elapsed, abandoned=False)


def _run_examples(
    decoder: Decoder,
    call: Callable[[Any], object],
    tidy: Callable[[], None] | None,
    report: DecoderReport,
    *,
    target: int,
    examples: int,
    run_seed: int,
    mutants: int,
    hang_s: float,
) -> None:
    """One seeded hypothesis run of at most `examples` examples."""

    @hypothesis_seed(run_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )
    @given(decoder.inputs, st.integers(0, 2**32 - 1))
    def body(base: Any, mutation_seed: int) -> None:
        rng = random.Random(mutation_seed)
        current = base
        for n in range(mutants + 1):
            if report.inputs >= target:
                return
            if n:
                current = decoder.mutate(rng, base if rng.random() < 0.5 else current)
            _try(decoder, call, report, current, hang_s)
            if tidy is not None:
                tidy()

    body()


def fuzz(
    decoder: Decoder,
    inputs: int,
    *,
    seed: int = 0,
    mutants: int = DEFAULT_MUTANTS,
    hang_ms: float = DEFAULT_HANG_MS,
    watchdog_s: float = WATCHDOG_S,
) -> DecoderReport:
    """Run `inputs` generated inputs through `decoder`; what it did with them."""
    report = DecoderReport(decoder.name)
    started = time.perf_counter()
    hang_s = hang_ms / 1000
    # each decoder its own seeds: adding one does not change another's inputs
    base_seed = seed * 1_000_003 + zlib.crc32(decoder.name.encode())

    def drive(call: Callable[[Any], object], tidy: Callable[[], None] | None) -> None:
        run = 0
        while report.inputs < inputs:
            before = report.inputs
            count = min(RUN_EXAMPLES, math.ceil((inputs - report.inputs) / (mutants + 1)))
            _run_examples(decoder, call, tidy, report, target=inputs, examples=count,
                          run_seed=base_seed + run, mutants=mutants, hang_s=hang_s)  # fmt: skip
            run += 1
            if report.inputs == before:  # the strategy has nothing more to give
                break
            gc.collect()  # between runs, untimed: a run's garbage is not the next input's pause

    if decoder.session is None:
        decode = decoder.decode
        if decode is None:
            raise ValueError(f"decoder {decoder.name} has neither decode nor session")
        with _Watchdog(watchdog_s) as watchdog:
            drive(lambda data: watchdog.run(decode, data), None)
    else:
        with _event_loop() as loop:
            manager = decoder.session()
            target = loop.run_until_complete(manager.__aenter__())
            try:

                async def guarded(data: Any) -> object:
                    limit = asyncio.timeout(watchdog_s)
                    try:
                        async with limit:
                            return await target.decode(data)
                    except TimeoutError:
                        if limit.expired():
                            raise Abandoned from None
                        raise

                tidy = target.tidy
                drive(
                    lambda data: loop.run_until_complete(guarded(data)),
                    None if tidy is None else lambda: loop.run_until_complete(tidy()),
                )
            finally:
                loop.run_until_complete(manager.__aexit__(None, None, None))
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def run_all(
    decoders: Sequence[Decoder],
    inputs: int,
    *,
    seed: int = 0,
    mutants: int = DEFAULT_MUTANTS,
    hang_ms: float = DEFAULT_HANG_MS,
    skipped: dict[str, str] | None = None,
    progress: Callable[[DecoderReport], None] | None = None,
) -> dict[str, Any]:
    """Fuzz each decoder in turn; the whole report (JSON-able)."""
    started = time.perf_counter()
    reports: dict[str, Any] = {}
    crashes = hangs = 0
    for decoder in decoders:
        report = fuzz(decoder, inputs, seed=seed, mutants=mutants, hang_ms=hang_ms)
        reports[decoder.name] = report.as_json()
        crashes += report.crash_count
        hangs += report.hang_count
        if progress is not None:
            progress(report)
    skipped = skipped or {}
    return {
        "ok": crashes == 0 and hangs == 0 and not skipped,
        "examples": inputs,
        "seed": seed,
        "mutants": mutants,
        "hang_ms": hang_ms,
        "crashes": crashes,
        "hangs": hangs,
        "seconds": round(time.perf_counter() - started, 1),
        "decoders": reports,
        "skipped": skipped,
    }


# -- the command ----------------------------------------------------------------------------------


def _isolated() -> bool:
    """Whether this network namespace has loopback only."""
    try:
        links = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if line]
    return names == ["lo"]


def _namespace_command() -> list[str] | None:
    """How to run a command in a new network namespace here (root, or a user namespace)."""
    for command in (["unshare", "-n"], ["unshare", "--map-root-user", "-n"]):
        try:
            probe = subprocess.run([*command, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return command
    return None


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    head = f"{'decoder':28} {'inputs':>8} {'accepted':>9} {'refused':>8} {'crashes':>8} " \
           f"{'hangs':>6} {'max_ms':>9} {'p99_ms':>8} {'seconds':>8}"  # fmt: skip
    print(head)
    for name, r in result["decoders"].items():
        print(
            f"{name:28} {r['inputs']:>8} {r['accepted']:>9} {r['refused']:>8} "
            f"{r['crash_count']:>8} {len(r['hangs']):>6} {r['max_ms']:>9.3f} {r['p99_ms']:>8.3f} "
            f"{r['seconds']:>8.1f}"
        )
    for name, why in result["skipped"].items():
        print(f"{name:28} skipped: {why}")
    for name, r in result["decoders"].items():
        for crash in r["crashes"]:
            print(f"\n{name}: {crash['count']} x {crash['error']}\n  at {crash['at']}\n"
                  f"  input {crash['input']}")  # fmt: skip
        for hang in r["hangs"]:
            print(f"\n{name}: hang {hang['ms']} ms: {hang['input']}")
    verdict = "no crash, no hang" if result["ok"] else "NOT OK"
    print(
        f"\n{verdict}: {result['crashes']} crash(es), {result['hangs']} hang(s), "
        f"{len(result['skipped'])} skipped, {result['seconds']} s"
    )


def _progress(report: DecoderReport) -> None:
    print(
        f"fuzz: {report.name}: {report.inputs} inputs, {report.crash_count} crashes, "
        f"{report.hang_count} hangs, {report.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def run_fuzz_bench(args: argparse.Namespace) -> int:
    """`radiocore bench fuzz`: re-runs itself under `unshare -n` when a chosen decoder opens
    peer connections and this is not an isolated namespace."""
    try:
        decoders = select(all_decoders(), args.decoders)
    except ValueError as exc:
        names = ", ".join(d.name for d in all_decoders())
        print(f"bench fuzz: {exc} (known: {names})", file=sys.stderr)
        return 2
    if args.examples < 1 or args.mutants < 0:
        print("bench fuzz: --examples must be at least 1, --mutants 0 or more", file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    if any(d.isolated for d in decoders):
        if _isolated():
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        else:
            namespace = _namespace_command()
            if namespace is not None:
                return _rerun(namespace, args)
            why = ("opens peer connections: needs a network namespace (`unshare -n` as root, or "
                   "unprivileged user namespaces)")  # fmt: skip
            skipped = {d.name: why for d in decoders if d.isolated}
            decoders = [d for d in decoders if not d.isolated]
    # the decoders log what they refuse, at every input: not here
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.CRITICAL, force=True)
    result = run_all(
        decoders,
        args.examples,
        seed=args.seed,
        mutants=args.mutants,
        hang_ms=args.hang_ms,
        skipped=skipped,
        progress=_progress,
    )
    _print(result, args.json)
    return 0 if result["ok"] else 1


def _rerun(namespace: list[str], args: argparse.Namespace) -> int:
    command = [
        *namespace, sys.executable, "-m", "bench.fuzz", "--examples", str(args.examples),
        "--seed", str(args.seed), "--mutants", str(args.mutants), "--hang-ms", str(args.hang_ms),
        "--json", *(["--decoders", args.decoders] if args.decoders else []),
    ]  # fmt: skip
    run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        print(
            f"bench fuzz: `{' '.join(command[:3])} …` gave no result (exit {run.returncode})",
            file=sys.stderr,
        )
        return 1
    result = json.loads(lines[-1])
    _print(result, args.json)
    return 0 if result.get("ok") else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bench.fuzz` (radiocore/cli.py gives `bench fuzz` the same)."""
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="inputs per decoder")
    parser.add_argument(
        "--decoders",
        metavar="LIST",
        help="comma-separated decoder names or prefixes (datachannel, socketio, agent, rest, "
        "rigctld, sfu, or e.g. rest/field/callsign); default: all",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the run's seed (same seed, same inputs)"
    )
    parser.add_argument(
        "--mutants",
        type=int,
        default=DEFAULT_MUTANTS,
        help="inputs derived from each hypothesis example, besides the example itself",
    )
    parser.add_argument(
        "--hang-ms", type=float, default=DEFAULT_HANG_MS, help="an input slower than this hangs"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON result")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    return run_fuzz_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
