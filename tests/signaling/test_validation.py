"""What the REST API accepts from people (signaling/validation.py): callsigns, Maidenhead
locators, amateur bands, email addresses and passwords. Examples pin the documented grammar;
hypothesis generates the rest, valid and invalid, and every refusal must be the 422 that
names the field."""

from __future__ import annotations

import itertools
import re
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from signaling.errors import BadRequestError, ValidationFailedError
from signaling.store import interface as store_rules
from signaling.validation import (
    BAND_NAMES,
    BANDS,
    MAX_CALLSIGN_CHARS,
    MAX_EMAIL_CHARS,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    band_of,
    canonical_bands,
    canonical_locator,
    canonical_locator_prefix,
    locator_at,
    locator_centre,
    locator_matches_prefix,
    parse_bands,
    parse_callsign,
    validate_callsign,
    validate_email,
    validate_password,
)

#: No example database on disk (no .hypothesis/ in the work tree), no deadline on a busy box.
PROPERTY = settings(max_examples=400, deadline=None, database=None)


def refused(field: str) -> pytest.RaisesExc[ValidationFailedError]:
    """The refusal every validator raises: 422 `bad_request`, naming `field` first."""
    return pytest.raises(ValidationFailedError, match=rf"^{re.escape(field)} ")


def assert_refusal(exc: ValidationFailedError, field: str) -> None:
    assert isinstance(exc, BadRequestError)
    assert exc.http_status == 422
    assert exc.code.value == "bad_request"
    assert exc.field == field
    assert exc.message.startswith(f"{field} ")


# -- callsigns ----------------------------------------------------------------------------------

UPPER = string.ascii_uppercase
letter = st.sampled_from(UPPER)
digit = st.sampled_from(string.digits)
itu_prefix = st.tuples(
    st.one_of(
        st.tuples(letter).map("".join),
        st.tuples(letter, letter).map("".join),
        st.tuples(letter, digit).map("".join),
        st.tuples(digit, letter).map("".join),
    ),
    st.one_of(st.just(""), letter),
).map("".join)
base_callsign = st.tuples(
    itu_prefix,
    st.text(string.digits, min_size=1, max_size=4),
    st.text(UPPER, min_size=1, max_size=4),
).map("".join)
location = st.text(UPPER + string.digits, min_size=1, max_size=4).filter(
    lambda text: any(char.isalpha() for char in text)
)
modifier = st.text(UPPER + string.digits, min_size=1, max_size=4)


@st.composite
def callsigns(draw: st.DrawFn) -> tuple[str, str, str | None, str | None]:
    """A callsign of the documented grammar: (whole, base, location, modifier)."""
    base = draw(base_callsign)
    where = draw(st.one_of(st.none(), location))
    how = draw(st.one_of(st.none(), modifier))
    whole = f"{where + '/' if where else ''}{base}{'/' + how if how else ''}"
    assume(len(whole) <= MAX_CALLSIGN_CHARS)  # the grammar's parts could make 21
    return whole, base, where, how


def mixed_case(text: str) -> st.SearchStrategy[str]:
    """`text` with any of its letters swapped to the other case."""
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(
            c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True)
        )
    )


ACCEPTED_CALLSIGNS = {
    "DL1ABC": "DL1ABC",
    "9A1AA": "9A1AA",
    "3DA0RS": "3DA0RS",
    "VK2/G4ABC": "VK2/G4ABC",
    "G4ABC/P": "G4ABC/P",
    "KH6/W1AW/M": "KH6/W1AW/M",
    "dl1abc": "DL1ABC",
    "w1aw/mm": "W1AW/MM",
    "K1A": "K1A",
    "2E0ABC": "2E0ABC",
    "E51ABC": "E51ABC",
    "GB13COL": "GB13COL",
    "W1AW/4": "W1AW/4",
    "F/G4ABC/QRP": "F/G4ABC/QRP",
    " DL1ABC\n": "DL1ABC",
}
REFUSED_CALLSIGNS = [
    "",
    "   ",
    "DL1 ABC",
    "DL1\tABC",
    "ABCDEF",  # no digit
    "DL1",  # no suffix
    "123ABC",  # no letter in the prefix
    "DL1ABC5",  # ends in a digit
    "DL1ABCDE",  # a five-letter suffix
    "DL12345A",  # five digits
    "DL1ABC/",
    "/DL1ABC",
    "DL1ABC//P",
    "12/DL1ABC",  # a location without a letter
    "VK2/G4ABC/P/M",
    "ABCDE/DL1ABC",  # a five-character location
    "DL1ABC/QRPPP",  # a five-character modifier
    "DL1-ABC",
    "DL1ABC;DROP",
    "ÄL1ABC",
    "DL1ÄBC",
    "\uff24\uff2c\uff11\uff21\uff22\uff23",  # DL1ABC in fullwidth letters
    "DL\uff11ABC",  # a fullwidth digit
    "ß1ABC",  # `ß`.upper() is `SS` (SS1ABC): never upper-case before checking ASCII
    "\ufb001A",  # the ligature ﬀ upper-cases to FF (FF1A)
    "DL1AB\u0000",
    "ABCD/DL1ABC/QRPQ" + "X" * 10,  # too long
]


@pytest.mark.parametrize(("given_text", "stored"), ACCEPTED_CALLSIGNS.items())
def test_the_documented_callsigns_are_accepted_in_upper_case(given_text: str, stored: str) -> None:
    assert validate_callsign(given_text) == stored


def test_a_callsign_is_taken_apart_into_location_base_and_modifier() -> None:
    call = parse_callsign("kh6/w1aw/m")
    assert (call.location, call.base, call.modifier) == ("KH6", "W1AW", "M")
    assert str(call) == "KH6/W1AW/M"
    assert parse_callsign("3DA0RS").location is None
    assert parse_callsign("G4ABC/P").modifier == "P"


@pytest.mark.parametrize("text", REFUSED_CALLSIGNS)
def test_garbage_is_not_a_callsign(text: str) -> None:
    with refused("callsign") as caught:
        validate_callsign(text)
    assert_refusal(caught.value, "callsign")


def test_a_long_callsign_is_refused_for_its_length_and_the_field_is_renamed() -> None:
    with refused("operator") as caught:
        validate_callsign("A" * (MAX_CALLSIGN_CHARS + 1), field="operator")
    assert f"at most {MAX_CALLSIGN_CHARS}" in caught.value.message
    assert_refusal(caught.value, "operator")


@PROPERTY
@given(st.data(), callsigns())
def test_every_callsign_of_the_grammar_is_accepted_and_upper_cased(
    data: st.DataObject, call: tuple[str, str, str | None, str | None]
) -> None:
    whole, base, where, how = call
    typed = data.draw(mixed_case(whole))
    parsed = parse_callsign(typed)
    assert str(parsed) == whole
    if whole.count("/") == 1:
        # one slash can be read both ways when both sides are short calls (K1A/W1AW): the
        # first is then the location
        assert parsed.base in whole.split("/")
    else:
        assert (parsed.base, parsed.location, parsed.modifier) == (base, where, how)
    assert validate_callsign(whole) == whole  # idempotent


@PROPERTY
@given(callsigns(), st.integers(min_value=1), st.sampled_from([" ", "\t", "\u00a0", "-", ".", "Ä"]))
def test_a_callsign_with_a_blank_or_a_stray_character_inside_is_refused(
    call: tuple[str, str, str | None, str | None], where: int, stray: str
) -> None:
    whole = call[0]
    cut = where % (len(whole) - 1) + 1  # strictly inside
    with refused("callsign"):
        validate_callsign(whole[:cut] + stray + whole[cut:])


@PROPERTY
@given(callsigns(), st.integers(min_value=1, max_value=10))
def test_a_callsign_is_refused_past_its_length_limit(
    call: tuple[str, str, str | None, str | None], extra: int
) -> None:
    padded = (call[0] * MAX_CALLSIGN_CHARS)[: MAX_CALLSIGN_CHARS + extra]
    with refused("callsign") as caught:
        validate_callsign(padded)
    assert f"at most {MAX_CALLSIGN_CHARS} characters" in caught.value.message


@PROPERTY
@given(st.text(max_size=40))
def test_any_text_is_either_refused_with_422_or_a_clean_upper_case_callsign(text: str) -> None:
    try:
        stored = validate_callsign(text)
    except ValidationFailedError as exc:
        assert_refusal(exc, "callsign")
        return
    assert stored == text.strip().upper()
    assert stored.isascii() and stored == stored.upper()
    assert 3 <= len(stored) <= MAX_CALLSIGN_CHARS
    assert not any(char.isspace() for char in stored)
    assert validate_callsign(stored) == stored


# -- Maidenhead locators ------------------------------------------------------------------------

FIELD, SQUARE, SUBSQUARE = "ABCDEFGHIJKLMNOPQR", string.digits, "abcdefghijklmnopqrstuvwx"
locators = st.tuples(
    st.sampled_from(FIELD),
    st.sampled_from(FIELD),
    st.sampled_from(SQUARE),
    st.sampled_from(SQUARE),
    st.sampled_from(SUBSQUARE),
    st.sampled_from(SUBSQUARE),
    st.sampled_from(SQUARE),
    st.sampled_from(SQUARE),
    st.sampled_from([2, 4, 6, 8]),
).map(lambda parts: "".join(parts[:8])[: parts[8]])


@pytest.mark.parametrize(
    ("given_text", "stored"),
    [
        ("JO62", "JO62"),
        ("jo62", "JO62"),
        ("JO62QM", "JO62qm"),
        ("jo62qm", "JO62qm"),
        ("JO62QM12", "JO62qm12"),
        ("jo", "JO"),
        ("RR99XX99", "RR99xx99"),
        (" AA00aa00 ", "AA00aa00"),
    ],
)
def test_locators_of_2_4_6_and_8_characters_take_canonical_case(
    given_text: str, stored: str
) -> None:
    assert canonical_locator(given_text) == stored


@pytest.mark.parametrize(
    "text",
    [
        "",
        "J",
        "JO6",
        "JO62q",
        "JO62qm1",
        "JO62qm123",
        "JS62",  # fields end at R
        "SA00",
        "J062",  # a zero for an O
        "JO6A",
        "JO62qy",  # subsquares end at x
        "JO62qmab",
        "JO 62",
        "\uff2a\uff2f62",  # fullwidth JO
        "JO62\u212ak",  # the Kelvin sign folds to k: refused, not folded
    ],
)
def test_anything_else_is_not_a_locator(text: str) -> None:
    with refused("locator") as caught:
        canonical_locator(text)
    assert_refusal(caught.value, "locator")


def test_known_centres() -> None:
    assert locator_centre("JO62") == pytest.approx((52.5, 13.0))
    # Berlin's subsquare: 13°20'…13°25' E, 52°30'…52°32.5' N
    assert locator_centre("jo62QM") == pytest.approx((52.5 + 1.25 / 60, 13 + 22.5 / 60))
    assert locator_centre("AA") == pytest.approx((-85.0, -170.0))
    assert locator_centre("RR99xx99") == pytest.approx((90 - 0.5 / 240, 180 - 0.5 / 120))
    assert locator_at(52.52, 13.405, 6) == "JO62qm"
    assert locator_at(-33.86, 151.21, 4) == "QF56"  # Sydney
    assert locator_at(90, 180, 8) == "RR99xx99"  # the edges fall in the last cell
    assert locator_at(-90, -180, 2) == "AA"
    for bad in [(91.0, 0.0), (0.0, -180.5), (float("nan"), 0.0)]:
        with pytest.raises(ValueError, match="not a point"):
            locator_at(*bad)
    with pytest.raises(ValueError, match="2, 4, 6 or 8"):
        locator_at(0, 0, 5)


@PROPERTY
@given(st.data(), locators)
def test_a_locator_round_trips_through_its_centre_and_matches_its_own_prefixes(
    data: st.DataObject, locator: str
) -> None:
    typed = data.draw(mixed_case(locator))
    assert canonical_locator(typed) == locator
    latitude, longitude = locator_centre(typed)
    assert -90 < latitude < 90 and -180 < longitude < 180
    assert locator_at(latitude, longitude, len(locator)) == locator
    for cut in range(1, len(locator) + 1):
        assert locator_matches_prefix(typed, locator[:cut].swapcase())
        # the prefix's cell holds this locator's centre
        if cut % 2 == 0:
            assert locator_at(latitude, longitude, cut) == locator[:cut]


@PROPERTY
@given(locators, locators)
def test_a_prefix_matches_exactly_the_locators_that_start_with_it(
    locator: str, prefix: str
) -> None:
    expected = len(prefix) <= len(locator) and locator[: len(prefix)] == prefix
    assert locator_matches_prefix(locator, prefix) is expected
    if len(prefix) > len(locator):  # a station known only to JO62 is not known to be in JO62qm
        assert not locator_matches_prefix(locator, prefix)


def test_a_malformed_grid_or_locator_is_refused_naming_the_field() -> None:
    with refused("grid") as caught:
        locator_matches_prefix("JO62qm", "JO6Z")
    assert_refusal(caught.value, "grid")
    with refused("grid"):
        locator_matches_prefix("JO62qm", "")
    with refused("locator"):
        locator_matches_prefix("JO6", "JO")
    assert canonical_locator_prefix("jo6") == "JO6"
    assert canonical_locator_prefix("JO62Q") == "JO62q"


# -- bands --------------------------------------------------------------------------------------


def test_the_bands_are_the_stores_in_its_order_with_sane_edges() -> None:
    assert BAND_NAMES == store_rules.BANDS  # the store keeps these, in this order
    for lower, upper in itertools.pairwise(BANDS):
        assert lower.low_hz < lower.high_hz < upper.low_hz
    assert {"2200m", "630m", "160m", "60m", "2m", "70cm", "23cm"} <= set(BAND_NAMES)


@pytest.mark.parametrize(
    ("frequency_hz", "band"),
    [
        (136_000, "2200m"),
        (475_000, "630m"),
        (1_840_000, "160m"),
        (3_573_000, "80m"),
        (5_357_000, "60m"),
        (7_074_000, "40m"),
        (10_136_000, "30m"),
        (14_074_000, "20m"),
        (14_000_000, "20m"),  # edges included
        (14_350_000, "20m"),
        (18_100_000, "17m"),
        (21_074_000, "15m"),
        (24_915_000, "12m"),
        (28_074_000, "10m"),
        (50_313_000, "6m"),
        (70_200_000, "4m"),
        (144_174_000, "2m"),
        (432_100_000, "70cm"),
        (1_296_200_000, "23cm"),
        (14_349_999.5, "20m"),
    ],
)
def test_band_of_a_frequency(frequency_hz: float, band: str) -> None:
    found = band_of(frequency_hz)
    assert found is not None and found.name == band


@pytest.mark.parametrize(
    "frequency_hz", [0, 1_000_000, 13_999_999, 14_350_001, 27_000_000, 100_000_000, float("nan")]
)
def test_frequencies_outside_the_bands_have_none(frequency_hz: float) -> None:
    assert band_of(frequency_hz) is None


@PROPERTY
@given(st.integers(min_value=0, max_value=3_000_000_000))
def test_band_of_agrees_with_the_edges(frequency_hz: int) -> None:
    found = band_of(frequency_hz)
    inside = [band for band in BANDS if band.low_hz <= frequency_hz <= band.high_hz]
    assert len(inside) <= 1
    assert found == (inside[0] if inside else None)


def test_a_comma_list_of_bands_is_read_in_band_order_without_repeats() -> None:
    assert parse_bands("20m,40m") == ("40m", "20m")
    assert parse_bands(" 20M , 40m,20m,70CM ") == ("40m", "20m", "70cm")
    assert parse_bands("1.25m") == ("1.25m",)
    assert canonical_bands(["2m", "160M"]) == ("160m", "2m")
    assert canonical_bands([]) == ()


def test_unknown_bands_are_refused_all_named() -> None:
    with refused("bands") as caught:
        parse_bands("20m,13m,40m,5m")
    assert_refusal(caught.value, "bands")
    assert "'13m'" in caught.value.message and "'5m'" in caught.value.message
    assert "'20m'" not in caught.value.message
    with refused("bands"):
        parse_bands("")
    with refused("bands"):
        parse_bands("20m,,40m")
    with refused("bands"):
        parse_bands("20m," * 1000)
    with refused("band_list"):
        canonical_bands("20m", field="band_list")  # a string is not a list of bands
    with refused("bands") as caught:
        canonical_bands(["20m", 20, None])  # type: ignore[list-item]
    assert "'20'" in caught.value.message and "'None'" in caught.value.message
    with refused("bands") as caught:
        parse_bands("x" * 100)
    assert len(caught.value.message) < 300  # what the client sent is cut short


@PROPERTY
@given(st.lists(st.sampled_from([*BAND_NAMES, *(n.upper() for n in BAND_NAMES)]), max_size=30))
def test_known_band_lists_canonicalise_in_band_order(names: list[str]) -> None:
    canonical = canonical_bands(names)
    assert list(canonical) == [b for b in BAND_NAMES if b in {n.lower() for n in names}]
    if names:
        assert parse_bands(",".join(names)) == canonical_bands(names)


@PROPERTY
@given(st.text(max_size=60))
def test_any_bands_query_is_refused_or_known_bands(text: str) -> None:
    try:
        bands = parse_bands(text)
    except ValidationFailedError as exc:
        assert_refusal(exc, "bands")
        return
    assert bands and set(bands) <= set(BAND_NAMES)


# -- email and passwords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a@b.c",
        "dl1abc@darc.de",
        "First.Last+radio@Mail.Example.org",
        "o'brien@example.ie",
        "用户@例子.中国",
        "x" * 64 + "@" + "d" * (MAX_EMAIL_CHARS - 64 - 1 - 4) + ".org",
    ],
)
def test_plausible_addresses_are_accepted_unchanged(address: str) -> None:
    assert validate_email(address) == address
    assert validate_email(f"  {address}\n") == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "a@",
        "@example.org",
        "a@example",
        "a@example.",
        "a@.example.org",
        "a@example..org",
        "a@@example.org",
        "a@b@example.org",
        "a b@example.org",
        "a@exa mple.org",
        "a\t@example.org",
        "a\u0000@example.org",
        "a\u200b@example.org\u0007",
    ],
)
def test_implausible_addresses_are_refused(address: str) -> None:
    with refused("email") as caught:
        validate_email(address)
    assert_refusal(caught.value, "email")


def test_an_address_over_254_characters_is_refused_for_its_length() -> None:
    address = "x" * 64 + "@" + "d" * (MAX_EMAIL_CHARS - 64 - 1 - 3) + ".org"
    with refused("email") as caught:
        validate_email(address)
    assert f"at most {MAX_EMAIL_CHARS}" in caught.value.message


@PROPERTY
@given(st.text(max_size=300))
def test_any_text_is_refused_or_an_address_with_one_at_and_a_dotted_domain(text: str) -> None:
    try:
        address = validate_email(text)
    except ValidationFailedError as exc:
        assert_refusal(exc, "email")
        return
    local, domain = address.split("@")
    assert local and "." in domain.strip(".") and len(address) <= MAX_EMAIL_CHARS
    assert not any(char.isspace() for char in address)


PASSWORD_MESSAGES = {
    f"password must have at least {MIN_PASSWORD_CHARS} characters",
    f"password must have at most {MAX_PASSWORD_CHARS} characters",
}


def test_password_lengths() -> None:
    for length in (0, 1, MIN_PASSWORD_CHARS - 1, MAX_PASSWORD_CHARS + 1, 10 * MAX_PASSWORD_CHARS):
        with refused("password") as caught:
            validate_password("p" * length)
        assert caught.value.message in PASSWORD_MESSAGES
    for length in (MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS):
        assert validate_password("p" * length) == "p" * length
    # never stripped: the blanks are part of it
    assert validate_password(" " * MIN_PASSWORD_CHARS) == " " * MIN_PASSWORD_CHARS
    with refused("new_password"):
        validate_password("short", field="new_password")


@PROPERTY
@given(st.text(max_size=1100))
def test_a_refused_password_is_never_repeated(password: str) -> None:
    try:
        assert validate_password(password) == password
    except ValidationFailedError as exc:
        assert_refusal(exc, "password")
        assert exc.message in PASSWORD_MESSAGES  # fixed sentences: the password is not in it
