"""The pairing sticker's QR code (signaling/qr.py): the link round-trips through URL parsing;
the SVG and the PNG are well-formed, the size the symbol's version calls for, and hold the
same symbol (read back from each file by this test's own SVG-path and PNG readers, checked
against the fixed patterns every QR code has); and a real decoder (ZBar, through pyzbar) reads
the link back from the PNG, as a phone would."""

from __future__ import annotations

import ctypes.util
import re
import struct
import urllib.parse
import uuid
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.errors import BadRequestError, ValidationFailedError
from signaling.qr import PNG_PIXELS_PER_MODULE, QUIET_ZONE_MODULES, pairing_link, write_qr
from tests.support.components import missing

BOARD_ID = "0b7c6e2a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
CODE = "7KQ2-M9XD-R4TB"
LINK = f"https://radio.example.org/pair?id={BOARD_ID}&code={CODE}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"

Matrix = list[list[bool]]  # True: a dark module; rows top to bottom


def query_of(link: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query, keep_blank_values=True)


# -- the link -----------------------------------------------------------------------------------


def test_the_link_carries_the_canonical_board_id_and_the_code() -> None:
    assert pairing_link("https://radio.example.org", BOARD_ID.upper(), CODE) == LINK
    assert pairing_link("https://radio.example.org/", BOARD_ID, f" {CODE} ") == LINK
    behind_a_proxy = pairing_link("https://example.org/radiocore/", BOARD_ID, CODE)
    assert behind_a_proxy == f"https://example.org/radiocore/pair?id={BOARD_ID}&code={CODE}"
    demo = pairing_link("http://127.0.0.1:8080", BOARD_ID, CODE)
    assert demo.startswith("http://127.0.0.1:8080/pair?")


def test_a_code_with_reserved_characters_is_encoded_and_reads_back() -> None:
    link = pairing_link("https://radio.example.org", BOARD_ID, "a&b=c d/é#?")
    assert "#" not in link and " " not in link and link.count("&") == 1
    assert query_of(link) == {"id": [BOARD_ID], "code": ["a&b=c d/é#?"]}


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(min_size=1, max_size=40).filter(lambda code: code.strip() == code))
def test_any_code_round_trips_through_url_parsing(code: str) -> None:
    link = pairing_link("https://radio.example.org/rc", BOARD_ID, code)
    parts = urllib.parse.urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "radio.example.org",
        "/rc/pair",
        "",
    )
    assert query_of(link) == {"id": [BOARD_ID], "code": [code]}


@pytest.mark.parametrize(
    "base_url",
    [
        "radio.example.org",
        "ftp://radio.example.org",
        "javascript:alert(1)",
        "https://",
        "https://radio.example.org/?x=1",
        "https://radio.example.org/#top",
        "https://user:secret@radio.example.org",
    ],
)
def test_a_base_url_that_is_not_a_plain_http_address_is_refused(base_url: str) -> None:
    with pytest.raises(ValidationFailedError, match=r"^base_url ") as caught:
        pairing_link(base_url, BOARD_ID, CODE)
    assert caught.value.field == "base_url"


def test_a_bad_board_id_or_an_empty_code_is_refused() -> None:
    with pytest.raises(BadRequestError, match="UUID"):
        pairing_link("https://radio.example.org", "board-1", CODE)
    with pytest.raises(ValidationFailedError, match=r"^code "):
        pairing_link("https://radio.example.org", BOARD_ID, "  ")


# -- reading the files back ---------------------------------------------------------------------


def svg_matrix(path: Path) -> tuple[ElementTree.Element, Matrix]:
    """The SVG's root and the modules its path draws (segno draws each row as horizontal
    runs: `M x y` / `m dx dy` moves, `h n` a run of n dark modules, the row at y - 0.5)."""
    root = ElementTree.parse(path).getroot()  # raises unless well-formed XML
    _, _, width, height = (float(n) for n in root.attrib["viewBox"].split())
    assert width == height and width.is_integer()
    size = int(width)
    matrix = [[False] * size for _ in range(size)]
    (drawing,) = root.iter(f"{SVG_NS}path")
    assert "transform" not in drawing.attrib  # drawn in modules, 1 unit each
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d.\s]+)", drawing.attrib["d"]):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            assert command == "h" and values[0] > 0
            row = int(y - 0.5)
            for column in range(int(x), int(x + values[0])):
                matrix[row][column] = True
            x += values[0]
    return root, matrix


def png_matrix(path: Path) -> tuple[int, int, bytes, Matrix]:
    """Width, height, 8-bit grey pixels (0 dark, 255 light) and the modules (each sampled at
    its centre) of a greyscale PNG; every chunk's CRC is checked."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    offset, chunks = len(PNG_SIGNATURE), {}
    idat = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = body
        idat += body if kind == b"IDAT" else b""
        offset += 12 + length
    assert b"IEND" in chunks
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert colour == 0 and depth in (1, 8) and interlace == 0  # greyscale, not interlaced
    raw = zlib.decompress(idat)
    stride = (width * depth + 7) // 8
    previous = bytearray(stride)
    pixels = bytearray()
    for row in range(height):
        line = raw[row * (stride + 1) : (row + 1) * (stride + 1)]
        filtered, current = line[0], bytearray(line[1:])
        for i in range(stride):  # PNG filters, one byte per "pixel" for depths ≤ 8
            left = current[i - 1] if i else 0
            up, up_left = previous[i], previous[i - 1] if i else 0
            if filtered == 1:
                current[i] = (current[i] + left) & 0xFF
            elif filtered == 2:
                current[i] = (current[i] + up) & 0xFF
            elif filtered == 3:
                current[i] = (current[i] + (left + up) // 2) & 0xFF
            elif filtered == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                current[i] = (current[i] + predictor) & 0xFF
            else:
                assert filtered == 0
        if depth == 1:
            bits = (current[x // 8] >> (7 - x % 8) & 1 for x in range(width))
            pixels += bytes(255 if bit else 0 for bit in bits)
        else:
            pixels += current
        previous = current
    assert len(pixels) == width * height
    scale = PNG_PIXELS_PER_MODULE
    size = width // scale
    matrix = [
        [
            pixels[(r * scale + scale // 2) * width + c * scale + scale // 2] < 128
            for c in range(size)
        ]
        for r in range(size)
    ]
    return width, height, bytes(pixels), matrix


def assert_is_a_qr_symbol(matrix: Matrix, modules: int) -> None:
    """The quiet zone is light, and the symbol of `modules` has its three finder patterns,
    their separators, both timing patterns and the dark module, where the standard puts them."""
    border = QUIET_ZONE_MODULES
    assert len(matrix) == modules + 2 * border
    for row in matrix[:border] + matrix[-border:]:
        assert not any(row)
    for row in matrix:
        assert not any(row[:border]) and not any(row[-border:])
    symbol = [row[border:-border] for row in matrix[border:-border]]
    for top, left in [(0, 0), (0, modules - 7), (modules - 7, 0)]:
        for r in range(7):
            for c in range(7):
                ring = max(abs(r - 3), abs(c - 3))
                assert symbol[top + r][left + c] is (ring != 2), (top, left, r, c)
    for i in range(8):  # the light separators around the finders
        assert not symbol[7][i] and not symbol[i][7]
        assert not symbol[7][modules - 1 - i] and not symbol[i][modules - 8]
        assert not symbol[modules - 8][i] and not symbol[modules - 1 - i][7]
    for i in range(8, modules - 8):  # timing patterns: alternating, dark on even
        assert symbol[6][i] is (i % 2 == 0) and symbol[i][6] is (i % 2 == 0)
    version = (modules - 17) // 4
    assert symbol[4 * version + 9][8]  # the dark module


# -- the files ----------------------------------------------------------------------------------


def test_the_svg_is_well_formed_and_sized_for_its_version(tmp_path: Path) -> None:
    path = tmp_path / "sticker.svg"
    drawn = write_qr(LINK, path)
    assert drawn.modules == 17 + 4 * drawn.version
    assert drawn.version == 6 and drawn.error in "MQH"  # 94 bytes of link at level M or better
    root, matrix = svg_matrix(path)
    assert root.tag == f"{SVG_NS}svg"
    side = drawn.modules + 2 * QUIET_ZONE_MODULES
    assert root.attrib["viewBox"] == f"0 0 {side} {side}"
    assert root.attrib["width"] == root.attrib["height"] == f"{side}mm"  # 1 mm per module
    assert root.findtext(f"{SVG_NS}title") == "RadioCore pairing code"
    assert_is_a_qr_symbol(matrix, drawn.modules)


def test_the_png_has_the_signature_the_size_and_the_same_symbol_as_the_svg(
    tmp_path: Path,
) -> None:
    drawn = write_qr(LINK, tmp_path / "sticker.PNG")  # the suffix in any case
    width, height, _, matrix = png_matrix(tmp_path / "sticker.PNG")
    side = (drawn.modules + 2 * QUIET_ZONE_MODULES) * PNG_PIXELS_PER_MODULE
    assert (width, height) == (side, side)
    assert_is_a_qr_symbol(matrix, drawn.modules)
    write_qr(LINK, tmp_path / "sticker.svg")
    assert svg_matrix(tmp_path / "sticker.svg")[1] == matrix


def test_a_longer_link_takes_a_larger_version(tmp_path: Path) -> None:
    short = write_qr("https://a.example/pair?id=1&code=2", tmp_path / "short.svg")
    long = write_qr(LINK + "&" + "x" * 300, tmp_path / "long.svg")
    assert short.version < 6 < long.version
    assert_is_a_qr_symbol(svg_matrix(tmp_path / "long.svg")[1], long.modules)


def test_another_suffix_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    for name in ("sticker.jpg", "sticker", "sticker.svg.txt"):
        with pytest.raises(ValueError, match=r"\.svg or \.png"):
            write_qr(LINK, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_real_decoder_reads_the_link_back_from_the_png(tmp_path: Path) -> None:
    """ZBar (Debian libzbar0) decodes the PNG's pixels, as read by this test: the link a phone
    camera would open, byte for byte."""
    if ctypes.util.find_library("zbar") is None:
        missing("the ZBar library is not installed (Debian: libzbar0)")
    from pyzbar import pyzbar  # loads libzbar

    for board_id, code in [(BOARD_ID, CODE), (str(uuid.uuid4()), "ab&c=d é")]:
        link = pairing_link("https://radio.example.org", board_id, code)
        write_qr(link, tmp_path / "sticker.png")
        width, height, pixels, _ = png_matrix(tmp_path / "sticker.png")
        (found,) = pyzbar.decode((pixels, width, height), symbols=[pyzbar.ZBarSymbol.QRCODE])
        assert found.data.decode() == link
        assert query_of(found.data.decode()) == {"id": [board_id], "code": [code]}
