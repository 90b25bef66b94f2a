"""The pairing sticker's QR code: the link a phone opens to claim a board, as SVG or PNG.

The link carries the board's id and its one-time pairing code
(`https://HOST/pair?id=<uuid>&code=<code>`): seeing the id alone (the seed's sticker) is not
enough to claim a board. `segno` draws the symbol (pure Python, no image library): error
correction level M at least (raised when that fits in the same size), a quiet zone of four
modules as the standard asks.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import segno

from signaling.errors import ValidationFailedError
from signaling.store import canonical_board_id

__all__ = ["QUIET_ZONE_MODULES", "QrSymbol", "pairing_link", "write_qr"]

#: The light border around the symbol, in modules (ISO/IEC 18004 asks for 4).
QUIET_ZONE_MODULES: Final = 4
#: PNG: pixels per module (a version 6 symbol with its quiet zone: 49 modules, 490 px).
PNG_PIXELS_PER_MODULE: Final = 10
#: SVG: the drawing is in modules (its viewBox) and 1 mm per module on paper (49 mm for
#: version 6); a printer or editor scales it to any size without blur.
SVG_UNIT: Final = "mm"


def pairing_link(base_url: str, board_id: str, code: str) -> str:
    """The pairing link of a board: `<base_url>/pair?id=<board id>&code=<code>`, the query
    URL-encoded; `base_url` is the console's public address (`https://radio.example.org`,
    or with a path: `https://example.org/radiocore/`). `BadRequestError` (naming the field)
    for a base URL that is not http(s) or carries a query, a fragment or credentials, for a
    board id that is not a UUID, or for an empty code."""
    parts = urllib.parse.urlsplit(base_url.strip())
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
    ):
        raise ValidationFailedError(
            "base_url must be the console's http(s) address, such as https://radio.example.org",
            field="base_url",
        )
    if not code.strip():
        raise ValidationFailedError("code must not be empty", field="code")
    query = urllib.parse.urlencode({"id": canonical_board_id(board_id), "code": code.strip()})
    path = parts.path.rstrip("/") + "/pair"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


@dataclass(frozen=True)
class QrSymbol:
    """What was drawn: the QR version (1 … 40), its error correction level (`L`, `M`, `Q`,
    `H`) and its width in modules, quiet zone not included (17 + 4 * version)."""

    version: int
    error: str
    modules: int


def write_qr(link: str, path: Path | str) -> QrSymbol:
    """Draw `link` as a QR code into `path`: SVG for `.svg`, PNG for `.png` (any case);
    `ValueError` for another suffix (nothing is written). Replaces an existing file."""
    target = Path(path)
    kind = target.suffix.lower().lstrip(".")
    if kind not in ("svg", "png"):
        raise ValueError(f"a QR code is written as .svg or .png, not {target.name!r}")
    symbol = segno.make_qr(link, error="m", boost_error=True)
    if kind == "svg":
        symbol.save(
            str(target),
            kind="svg",
            border=QUIET_ZONE_MODULES,
            scale=1,
            unit=SVG_UNIT,
            title="RadioCore pairing code",
        )
    else:
        symbol.save(str(target), kind="png", border=QUIET_ZONE_MODULES, scale=PNG_PIXELS_PER_MODULE)
    modules = int(symbol.symbol_size(scale=1, border=0)[0])
    return QrSymbol(version=int(symbol.version), error=str(symbol.error), modules=modules)
