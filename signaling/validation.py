"""What the REST API accepts from people: callsigns, Maidenhead locators, amateur bands, email
addresses and passwords. Pure functions, no I/O.

Each `validate_*`/`canonical_*` function returns the value in its one stored form or raises
`ValidationFailedError` (a `BadRequestError`: 422 with `field`), whose message begins with the
field's name (`callsign must be …`) and never repeats a password. `field=` names the field as
the request calls it (`grid` for the stations filter, `locator` in a board's settings).
Surrounding blanks are dropped (a form field pasted with a space), blanks inside refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from signaling.errors import ValidationFailedError

__all__ = [
    "BANDS",
    "BAND_NAMES",
    "MAX_CALLSIGN_CHARS",
    "MAX_EMAIL_CHARS",
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "Band",
    "Callsign",
    "band_of",
    "canonical_bands",
    "canonical_locator",
    "canonical_locator_prefix",
    "locator_at",
    "locator_centre",
    "locator_matches_prefix",
    "parse_bands",
    "parse_callsign",
    "validate_callsign",
    "validate_email",
    "validate_password",
]


def _refuse(field: str, problem: str) -> ValidationFailedError:
    return ValidationFailedError(f"{field} {problem}", field=field)


def _shown(value: str, chars: int = 16) -> str:
    """A piece of what the client sent, quoted and cut short, for a message."""
    return repr(value[:chars] + ("…" if len(value) > chars else ""))


# -- callsigns ----------------------------------------------------------------------------------

#: The longest callsign accepted, prefix and suffix included (`VK2/G4ABC/QRP` has 13).
MAX_CALLSIGN_CHARS: Final = 20

# The ITU prefix: its first two characters are letter-letter, letter-digit or digit-letter
# (one letter alone too: K, W, F, G …); a third letter may follow (3DA0RS, VP2E…).
_ITU_PREFIX: Final = r"(?:[A-Z]{1,2}|[A-Z][0-9]|[0-9][A-Z])[A-Z]?"
_BASE: Final = rf"{_ITU_PREFIX}[0-9]{{1,4}}[A-Z]{{1,4}}"
# Before the slash: where the station is (VK2/, KH6/, F/, 3D2/), at least one letter.
_LOCATION: Final = r"(?=[A-Z0-9]{0,3}[A-Z])[A-Z0-9]{1,4}"
# After the slash: P, M, MM, AM, QRP, a call area (4) or a location (VE3).
_MODIFIER: Final = r"[A-Z0-9]{1,4}"
_CALLSIGN: Final = re.compile(
    rf"(?:(?P<location>{_LOCATION})/)?(?P<base>{_BASE})(?:/(?P<modifier>{_MODIFIER}))?",
    re.ASCII,
)
_CALLSIGN_PROBLEM: Final = "must be an amateur radio callsign such as DL1ABC, G4ABC/P or VK2/G4ABC"


@dataclass(frozen=True)
class Callsign:
    """A callsign taken apart: `KH6/W1AW/M` is location `KH6`, base `W1AW`, modifier `M`."""

    base: str
    location: str | None = None
    modifier: str | None = None

    def __str__(self) -> str:
        location = f"{self.location}/" if self.location else ""
        modifier = f"/{self.modifier}" if self.modifier else ""
        return f"{location}{self.base}{modifier}"


def parse_callsign(value: str, field: str = "callsign") -> Callsign:
    """`value` as an amateur radio callsign, upper-cased and taken apart.

    The grammar (ASCII letters in either case, at most `MAX_CALLSIGN_CHARS` in all)::

        callsign  = [ location "/" ] base [ "/" modifier ]
        base      = prefix digits suffix
        prefix    = ( L [L] | L D | D L ) [L]     the ITU prefix: DL, K, 9A, E5, 2E, 3DA, VP2…
        digits    = 1*4 D                          the call area (GB13COL, TM100X: special calls)
        suffix    = 1*4 L                          always ends the base in a letter
        location  = 1*4 ( L | D ), one L at least  VK2/, KH6/, F/, 3D2/
        modifier  = 1*4 ( L | D )                  P, M, MM, AM, QRP, a call area (4), VE3
        L = A-Z, D = 0-9

    So `DL1ABC`, `9A1AA`, `3DA0RS`, `K1A`, `VK2/G4ABC`, `G4ABC/P` and `KH6/W1AW/M` pass;
    `DL1 ABC`, `ABCDEF` (no digit), `DL1` (no suffix), `123ABC` (no letter in the prefix),
    `DL1ABC/` and anything not ASCII are refused. Surrounding blanks are dropped.
    """
    text = value.strip()
    if len(text) > MAX_CALLSIGN_CHARS:
        raise _refuse(field, f"must have at most {MAX_CALLSIGN_CHARS} characters")
    # ASCII first: str.upper() turns `ß` into `SS` and `ﬀ` into `FF`
    found = _CALLSIGN.fullmatch(text.upper()) if text.isascii() else None
    if found is None:
        raise _refuse(field, _CALLSIGN_PROBLEM)
    return Callsign(found["base"], found["location"], found["modifier"])


def validate_callsign(value: str, field: str = "callsign") -> str:
    """`value` as a callsign in upper case (`parse_callsign` says which are accepted)."""
    return str(parse_callsign(value, field))


# -- Maidenhead locators ------------------------------------------------------------------------

# The characters of each pair, in canonical case: field A-R, square 0-9, subsquare a-x,
# extended square 0-9.
_LOCATOR_PAIRS: Final = (
    "ABCDEFGHIJKLMNOPQR",
    "0123456789",
    "abcdefghijklmnopqrstuvwx",
    "0123456789",
)
_LOCATOR_PROBLEM: Final = "must be a Maidenhead locator such as JO62, JO62qm or JO62qm12"
# Longitude and latitude are counted in extended squares: 1/120° of longitude, 1/240° of
# latitude; a pair's cell holds this many of them (field, square, subsquare, extended).
_CELL_UNITS: Final = (2400, 240, 10, 1)
_LON_UNITS_PER_DEGREE: Final = 120
_LAT_UNITS_PER_DEGREE: Final = 240


def canonical_locator_prefix(value: str, field: str = "locator") -> str:
    """The start of a Maidenhead locator (1 … 8 characters: `J`, `jo6`, `JO62QM`) in canonical
    case: field letters upper, subsquare letters lower."""
    text = value.strip()
    if not 1 <= len(text) <= 8 or not text.isascii():
        raise _refuse(field, _LOCATOR_PROBLEM)
    out = []
    for index, char in enumerate(text):
        allowed = _LOCATOR_PAIRS[index // 2]
        folded = char.upper() if index < 2 else char.lower()
        if folded not in allowed:
            raise _refuse(field, _LOCATOR_PROBLEM)
        out.append(folded)
    return "".join(out)


def canonical_locator(value: str, field: str = "locator") -> str:
    """A whole Maidenhead locator, 2, 4, 6 or 8 characters (`JO`, `JO62`, `JO62qm`,
    `JO62qm12`), in canonical case (`jo62QM` → `JO62qm`)."""
    locator = canonical_locator_prefix(value, field)
    if len(locator) % 2:
        raise _refuse(field, _LOCATOR_PROBLEM)
    return locator


def locator_matches_prefix(locator: str, prefix: str) -> bool:
    """Whether the station at `locator` lies in the area `prefix` names (`GET /api/stations?
    grid=JO62`): `prefix` is the start of a locator, 1 … 8 characters, and no longer than
    `locator` (a station known only to `JO62` is not known to be in `JO62qm`). Case does not
    matter. A malformed locator or prefix (`grid`) is a `ValidationFailedError`.

    The canonical forms compare as strings, so a store holding canonical locators can filter
    with `locator LIKE prefix || '%'` and get the same answer."""
    whole = canonical_locator(locator)
    start = canonical_locator_prefix(prefix, "grid")
    return whole.startswith(start)


def _locator_units(locator: str) -> tuple[int, int, int]:
    """The south-west corner of `locator` in extended squares (lon, lat), and its cell size."""
    lon = lat = 0
    for pair in range(len(locator) // 2):
        alphabet = _LOCATOR_PAIRS[pair]
        lon += alphabet.index(locator[2 * pair]) * _CELL_UNITS[pair]
        lat += alphabet.index(locator[2 * pair + 1]) * _CELL_UNITS[pair]
    return lon, lat, _CELL_UNITS[len(locator) // 2 - 1]


def locator_centre(locator: str) -> tuple[float, float]:
    """The centre of `locator`'s cell as (latitude, longitude) in degrees: `JO62` → (52.5, 13.0)."""
    lon, lat, cell = _locator_units(canonical_locator(locator))
    return (
        (lat + cell / 2) / _LAT_UNITS_PER_DEGREE - 90.0,
        (lon + cell / 2) / _LON_UNITS_PER_DEGREE - 180.0,
    )


def locator_at(latitude: float, longitude: float, chars: int = 6) -> str:
    """The locator of `chars` characters (2, 4, 6 or 8) of the cell holding the point; the
    north pole and the antimeridian fall in the last row and column. `ValueError` outside
    -90…90 (latitude) and -180…180 (longitude)."""
    if chars not in (2, 4, 6, 8):
        raise ValueError(f"a locator has 2, 4, 6 or 8 characters, not {chars}")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise ValueError(f"({latitude}, {longitude}) is not a point on Earth")
    total = 18 * _CELL_UNITS[0]
    lon = min(int((longitude + 180.0) * _LON_UNITS_PER_DEGREE), total - 1)
    lat = min(int((latitude + 90.0) * _LAT_UNITS_PER_DEGREE), total - 1)
    out = []
    for pair in range(chars // 2):
        alphabet, cell = _LOCATOR_PAIRS[pair], _CELL_UNITS[pair]
        out += [alphabet[lon // cell], alphabet[lat // cell]]
        lon, lat = lon % cell, lat % cell
    return "".join(out)


# -- amateur bands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """An amateur band and its edges in Hz (both included)."""

    name: str
    low_hz: int
    high_hz: int

    def __contains__(self, frequency_hz: object) -> bool:
        return isinstance(frequency_hz, int | float) and self.low_hz <= frequency_hz <= self.high_hz


#: The amateur bands a station can list, long to short waves. The edges are the widest of the
#: three IARU regions (a station anywhere may use some of it): 160 m is 1.8 MHz in regions 2
#: and 3 where region 1 starts at 1.81; 80 m, 40 m, 2 m and 70 cm are the region 2 allocations;
#: 60 m spans the national allocations around the WRC-15 band (5351.5 … 5366.5 kHz); 4 m is
#: region 1's; 1.25 m and 33 cm exist in region 2 only. Names and order are the store's.
BANDS: Final = (
    Band("2200m", 135_700, 137_800),
    Band("630m", 472_000, 479_000),
    Band("160m", 1_800_000, 2_000_000),
    Band("80m", 3_500_000, 4_000_000),
    Band("60m", 5_250_000, 5_450_000),
    Band("40m", 7_000_000, 7_300_000),
    Band("30m", 10_100_000, 10_150_000),
    Band("20m", 14_000_000, 14_350_000),
    Band("17m", 18_068_000, 18_168_000),
    Band("15m", 21_000_000, 21_450_000),
    Band("12m", 24_890_000, 24_990_000),
    Band("10m", 28_000_000, 29_700_000),
    Band("6m", 50_000_000, 54_000_000),
    Band("4m", 70_000_000, 70_500_000),
    Band("2m", 144_000_000, 148_000_000),
    Band("1.25m", 219_000_000, 225_000_000),
    Band("70cm", 420_000_000, 450_000_000),
    Band("33cm", 902_000_000, 928_000_000),
    Band("23cm", 1_240_000_000, 1_300_000_000),
    Band("13cm", 2_300_000_000, 2_450_000_000),
)
BAND_NAMES: Final = tuple(band.name for band in BANDS)
_BANDS_BY_NAME: Final = {band.name: band for band in BANDS}
#: A `bands` query longer than every band named once (with commas and blanks) is refused
#: unread.
_MAX_BANDS_QUERY_CHARS: Final = 4 * len(",".join(BAND_NAMES))


def band_of(frequency_hz: int | float) -> Band | None:
    """The amateur band `frequency_hz` lies in (edges included), or None outside them all."""
    for band in BANDS:
        if frequency_hz in band:
            return band
    return None


def canonical_bands(names: Iterable[str], field: str = "bands") -> tuple[str, ...]:
    """Band names (any case, surrounding blanks dropped) without repeats, in `BANDS` order; an
    empty list is fine (a station that lists none). Unknown names are refused, all named."""
    if isinstance(names, str):  # "20m" alone would be read as characters
        raise _refuse(field, "must be a list of band names such as 20m and 40m")
    wanted: set[str] = set()
    unknown: list[str] = []
    for name in names:
        # a JSON list may hold anything: a number is an unknown band, not a crash
        folded = name.strip().lower() if isinstance(name, str) else ""
        if folded in _BANDS_BY_NAME:
            wanted.add(folded)
        elif len(unknown) < 5:
            unknown.append(_shown(str(name)))
    if unknown:
        named, known = ", ".join(unknown), ", ".join(BAND_NAMES)
        raise _refuse(field, f"must be amateur bands; unknown: {named} (known: {known})")
    return tuple(name for name in BAND_NAMES if name in wanted)


def parse_bands(text: str, field: str = "bands") -> tuple[str, ...]:
    """A comma-separated list of bands (`20m,40m`, `20M, 40m`) as `canonical_bands`; at least
    one band (an empty `?bands=` is refused rather than read as "any band")."""
    if len(text) > _MAX_BANDS_QUERY_CHARS:
        raise _refuse(field, "is too long: name each band once, such as 20m,40m")
    names = text.split(",")
    if any(not name.strip() for name in names):
        raise _refuse(field, "must be band names separated by commas, such as 20m,40m")
    return canonical_bands(names, field)


# -- email addresses and passwords --------------------------------------------------------------

#: The longest address SMTP can deliver to (RFC 5321's path limit less its brackets).
MAX_EMAIL_CHARS: Final = 254
MIN_PASSWORD_CHARS: Final = 10
#: Long enough for any passphrase; short enough that hashing it costs nothing extra.
MAX_PASSWORD_CHARS: Final = 1024
_EMAIL_PROBLEM: Final = "must be an email address such as name@example.org"


def validate_email(value: str, field: str = "email") -> str:
    """`value` as an email address, surrounding blanks dropped, otherwise unchanged (the store
    folds case). Pragmatic, not RFC 5322: one `@`, a non-empty local part, a domain of at least
    two non-empty dot-separated labels, no blanks or control characters, at most
    `MAX_EMAIL_CHARS` characters. Whether it receives mail only sending to it can tell."""
    text = value.strip()
    if len(text) > MAX_EMAIL_CHARS:
        raise _refuse(field, f"must have at most {MAX_EMAIL_CHARS} characters")
    local, _, domain = text.partition("@")
    if (
        text.count("@") != 1
        or not local
        or not all(char.isprintable() and not char.isspace() for char in text)
        or any(not label for label in domain.split("."))
        or "." not in domain
    ):
        raise _refuse(field, _EMAIL_PROBLEM)
    return text


def validate_password(value: str, field: str = "password") -> str:
    """`value` unchanged if it can be a password: `MIN_PASSWORD_CHARS` … `MAX_PASSWORD_CHARS`
    characters, anything allowed (blanks and all; it is never stripped). The message says
    which rule, never the password."""
    if len(value) < MIN_PASSWORD_CHARS:
        raise _refuse(field, f"must have at least {MIN_PASSWORD_CHARS} characters")
    if len(value) > MAX_PASSWORD_CHARS:
        raise _refuse(field, f"must have at most {MAX_PASSWORD_CHARS} characters")
    return value
