"""Public stations and bookings over the REST API, through real HTTP, on SQLite and on a real
PostgreSQL: the stations filter (grid prefix, bands), booking a window, who may book, the lists,
cancelling, that no one sees or cancels another's bookings, and 50 concurrent requests for
overlapping windows: exactly one is booked, by the database itself."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from signaling.api.bookings import BookingReply, BookingsReply, BookingView
from signaling.api.stations import StationsReply
from tests.signaling.test_api_boards import (  # noqa: F401 (fixtures)
    Api,
    Operator,
    a_uuid,
    api_fixture,
)


def soon(hours: float = 24.0) -> datetime:
    """A time `hours` from now, on a whole minute."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


async def book(
    api: Api, who: Operator, board_id: str, start: datetime | str, minutes: object = 60
) -> BookingReply | int:
    """The booking, or the refusal's status."""
    text = start if isinstance(start, str) else start.isoformat()
    reply = await api.call(
        "POST",
        f"/api/stations/{board_id}/book",
        who,
        {"start": text, "duration_minutes": minutes},
    )
    if reply.status == 201:
        return reply.decode(BookingReply)
    assert reply.error.code, reply.body
    return reply.status


# -- public stations -------------------------------------------------------------------------------


async def test_public_stations_filter_by_grid_prefix_and_bands(api: Api) -> None:
    alice, bob, carol = (
        await api.operator("DL1AAA"),
        await api.operator("G4BBB"),
        await api.operator("DL3CCC"),
    )
    berlin = await api.public_board(
        alice, name="Berlin", locator="JO62qm", bands=["20m", "40m"], price_eur="2.50"
    )
    potsdam = await api.public_board(alice, name="Potsdam", locator="JO62ab", bands=["80m"])
    london = await api.public_board(bob, name="London", locator="IO91wm", bands=["20m"])
    nowhere = await api.public_board(bob, name="Nowhere", bands=["20m"])
    private = await api.pair(alice, "Private")
    await api.call("PUT", f"/api/boards/{private.id}", alice, {"locator": "JO62", "bands": ["20m"]})

    async def names(query: str, who: Operator = carol) -> list[str]:
        reply = await api.call("GET", "/api/stations" + query, who)
        assert reply.status == 200, (query, reply.body)
        return [station.name for station in reply.decode(StationsReply).stations]

    assert await names("") == ["Berlin", "Potsdam", "London", "Nowhere"]
    assert await names("?grid=JO62") == ["Berlin", "Potsdam"]
    assert await names("?grid=jo62QM") == ["Berlin"]
    assert await names("?grid=J") == ["Berlin", "Potsdam"]
    assert await names("?grid=JO62qm12") == []  # Berlin is known only to the subsquare
    assert await names("?grid=JO62&bands=20m") == ["Berlin"]
    assert await names("?bands=20M,%2080m") == ["Berlin", "Potsdam", "London", "Nowhere"]
    assert await names("?bands=40m") == ["Berlin"]
    assert await names("?bands=6m") == []

    reply = await api.call("GET", "/api/stations?grid=JO62qm", carol)
    (station,) = reply.decode(StationsReply).stations
    assert (station.id, station.owner_callsign, station.locator) == (berlin.id, "DL1AAA", "JO62qm")
    assert (station.bands, station.price_eur, station.online) == (
        ["40m", "20m"],
        Decimal("2.50"),
        False,
    )
    assert {potsdam.id, london.id, nowhere.id}.isdisjoint({station.id})

    for query, field in [
        ("?grid=ZZ99", "grid"),
        ("?grid=", "grid"),
        ("?grid=JO62%00", "grid"),
        ("?grid=JO62qm12345", "grid"),
        ("?bands=21m", "bands"),
        ("?bands=", "bands"),
        ("?bands=20m,,40m", "bands"),
    ]:
        reply = await api.call("GET", "/api/stations" + query, carol)
        assert (reply.status, reply.error.field) == (422, field), query
        assert field in reply.error.message
    assert (await api.call("GET", "/api/stations")).status == 401

    # a station whose owner blocked the caller is not listed to them
    await api.call("POST", f"/api/boards/{berlin.id}/blocks", alice, {"user_id": carol.user_id})
    assert await names("?grid=JO62", carol) == ["Potsdam"]
    assert await names("?grid=JO62", bob) == ["Berlin", "Potsdam"]


# -- booking --------------------------------------------------------------------------------------


async def test_a_booking_is_made_listed_and_cancelled(api: Api) -> None:
    owner, guest, other = (
        await api.operator("DL1OWN"),
        await api.operator("DL2GST"),
        await api.operator("DL3OTH"),
    )
    station = await api.public_board(owner, name="Contest station", price_eur="10.00")
    start = soon()
    # an RFC 3339 time with any offset; the answer is in UTC
    local = start.astimezone(timezone(timedelta(hours=2)))
    reply = await api.call(
        "POST",
        f"/api/stations/{station.id}/book",
        guest,
        {"start": local.isoformat(), "duration_minutes": 90},
    )
    assert reply.status == 201, reply.body
    booking = reply.decode(BookingReply)
    assert (booking.board_id, booking.start, booking.end) == (
        station.id,
        start,
        start + timedelta(minutes=90),
    )
    assert booking.price_eur == Decimal("15.00")
    raw = json.loads(reply.body)
    assert raw["start"].endswith("Z") and raw["price_eur"] == "15.00"

    mine = (await api.call("GET", "/api/bookings", guest)).decode(BookingsReply).bookings
    assert mine == [
        BookingView(
            booking_id=booking.booking_id,
            board_id=station.id,
            board_name="Contest station",
            user_id=guest.user_id,
            callsign="DL2GST",
            start=booking.start,
            end=booking.end,
            price_eur=Decimal("15.00"),
        )
    ]
    board_list = await api.call("GET", f"/api/boards/{station.id}/bookings", owner)
    assert board_list.decode(BookingsReply).bookings == mine

    # overlapping: refused by the database; adjacent: fine
    assert await book(api, other, station.id, start + timedelta(minutes=89), 15) == 409
    assert await book(api, other, start=start - timedelta(minutes=30), board_id=station.id) == 409
    adjacent = await book(api, other, station.id, booking.end, 15)
    assert isinstance(adjacent, BookingReply) and adjacent.price_eur == Decimal("2.50")
    before = await book(api, other, station.id, start - timedelta(minutes=15), 15)
    assert isinstance(before, BookingReply)
    listed = (await api.call("GET", f"/api/boards/{station.id}/bookings", owner)).decode(
        BookingsReply
    )
    assert [b.booking_id for b in listed.bookings] == [
        before.booking_id,
        booking.booking_id,
        adjacent.booking_id,
    ]

    # the guest cancels: the window is free again; cancelling twice changes nothing
    assert (await api.call("DELETE", f"/api/bookings/{booking.booking_id}", guest)).status == 204
    assert (await api.call("DELETE", f"/api/bookings/{booking.booking_id}", guest)).status == 204
    assert (await api.call("GET", "/api/bookings", guest)).decode(BookingsReply).bookings == []
    taken = await book(api, other, station.id, start, 90)
    assert isinstance(taken, BookingReply)
    # the owner cancels a guest's booking
    assert (await api.call("DELETE", f"/api/bookings/{taken.booking_id}", owner)).status == 204
    stored = await api.store.get_booking(taken.booking_id)
    assert stored is not None and stored.cancelled_at is not None
    assert (await api.call("DELETE", f"/api/bookings/{a_uuid()}", owner)).status == 404
    assert (await api.call("DELETE", "/api/bookings/not-an-id", owner)).status == 404


async def test_who_may_book_which_station(api: Api) -> None:
    owner, friend, stranger, blocked = (
        await api.operator("DL1OWN"),
        await api.operator("DL2FRD"),
        await api.operator("DL3STR"),
        await api.operator("DL4BLK"),
    )
    private = await api.pair(owner, "Private")
    public = await api.public_board(owner, name="Public")
    await api.call(
        "POST",
        f"/api/boards/{private.id}/grants",
        owner,
        {"email": friend.email, "right": "listen"},
    )
    await api.call("POST", f"/api/boards/{public.id}/blocks", owner, {"user_id": blocked.user_id})
    unpaired = await api.provision()

    # a private station does not exist for a stranger: the answer of an unknown id
    refused = await api.call(
        "POST",
        f"/api/stations/{private.id}/book",
        stranger,
        {"start": soon().isoformat(), "duration_minutes": 30},
    )
    unknown = await api.call(
        "POST",
        f"/api/stations/{a_uuid()}/book",
        stranger,
        {"start": soon().isoformat(), "duration_minutes": 30},
    )
    assert (refused.status, refused.body) == (404, unknown.body)
    assert await book(api, stranger, unpaired.board.id, soon()) == 404
    assert await book(api, stranger, "not-a-uuid", soon()) == 404
    # granted: may book the private station; blocked: refused on the public one
    assert isinstance(await book(api, friend, private.id, soon(1)), BookingReply)
    reply = await api.call(
        "POST",
        f"/api/stations/{public.id}/book",
        blocked,
        {"start": soon().isoformat(), "duration_minutes": 30},
    )
    assert (reply.status, reply.error.code) == (403, "forbidden")
    assert isinstance(await book(api, stranger, public.id, soon(2)), BookingReply)
    # the owner may reserve their own station
    assert isinstance(await book(api, owner, private.id, soon(5)), BookingReply)
    assert (await api.call("POST", f"/api/stations/{public.id}/book", None, {})).status == 401


async def test_booking_values_are_checked_naming_the_field(api: Api) -> None:
    owner, guest = await api.operator(), await api.operator()
    station = await api.public_board(owner)
    now = datetime.now(UTC)
    cases: list[tuple[object, str]] = [
        ({"start": soon().replace(tzinfo=None).isoformat(), "duration_minutes": 30}, "start"),
        ({"start": (now - timedelta(minutes=10)).isoformat(), "duration_minutes": 30}, "start"),
        ({"start": (now + timedelta(days=400)).isoformat(), "duration_minutes": 30}, "start"),
        ({"start": "tomorrow", "duration_minutes": 30}, "start"),
        ({"start": 1767225600, "duration_minutes": 30}, "start"),
        ({"start": "0001-01-01T00:00:00+14:00", "duration_minutes": 30}, "start"),
        ({"start": "9999-12-31T23:59:00Z", "duration_minutes": 240}, "start"),
        ({"start": soon().isoformat(), "duration_minutes": 14}, "duration_minutes"),
        ({"start": soon().isoformat(), "duration_minutes": 241}, "duration_minutes"),
        ({"start": soon().isoformat(), "duration_minutes": 30.5}, "duration_minutes"),
        ({"start": soon().isoformat()}, "duration_minutes"),
        ({"duration_minutes": 30}, "start"),
        ({"start": soon().isoformat(), "duration_minutes": 30, "seats": 2}, "seats"),
    ]
    for body, field in cases:
        reply = await api.call("POST", f"/api/stations/{station.id}/book", guest, body)
        assert (reply.status, reply.error.field) == (422, field), (body, reply.body)
        assert field in reply.error.message
    # a client's "now", a little behind the server's, is fine; so are the bounds
    assert isinstance(
        await book(api, guest, station.id, now - timedelta(seconds=30), 15), BookingReply
    )
    assert isinstance(await book(api, guest, station.id, soon(30), 240), BookingReply)
    assert len((await api.call("GET", "/api/bookings", guest)).decode(BookingsReply).bookings) == 2


async def test_of_50_concurrent_overlapping_requests_exactly_one_books(api: Api) -> None:
    owner = await api.operator("DL1OWN")
    station = await api.public_board(owner)
    guests = [await api.operator(f"DL{n}GST") for n in range(10)]
    start = soon(48)
    # every window covers start + 60 min; they differ in start and length
    requests = [
        (guests[n % 10], start + timedelta(minutes=15 * (n % 4)), 60 + 15 * (n % 5))
        for n in range(50)
    ]
    replies = await asyncio.gather(
        *(book(api, who, station.id, when, minutes) for who, when, minutes in requests)
    )
    booked = [reply for reply in replies if isinstance(reply, BookingReply)]
    assert len(booked) == 1, replies
    assert sorted(r for r in replies if not isinstance(r, BookingReply)) == [409] * 49
    stored = await api.store.bookings_of_board(station.id)
    assert [b.id for b in stored] == [booked[0].booking_id]


async def test_no_one_sees_or_cancels_another_users_bookings(api: Api) -> None:
    owner, guest, mallory = (
        await api.operator("DL1OWN"),
        await api.operator("DL2GST"),
        await api.operator("DL6MAL"),
    )
    station = await api.public_board(owner)
    booking = await book(api, guest, station.id, soon())
    assert isinstance(booking, BookingReply)
    assert (await api.call("GET", "/api/bookings", mallory)).decode(BookingsReply).bookings == []
    listed = await api.call("GET", f"/api/boards/{station.id}/bookings", mallory)
    unknown_board = await api.call("GET", f"/api/boards/{a_uuid()}/bookings", mallory)
    assert (listed.status, listed.body) == (404, unknown_board.body)
    cancel = await api.call("DELETE", f"/api/bookings/{booking.booking_id}", mallory)
    unknown = await api.call("DELETE", f"/api/bookings/{a_uuid()}", mallory)
    assert (cancel.status, cancel.body) == (404, unknown.body)
    # the guest may not see the board's bookings either: the station is not theirs
    assert (await api.call("GET", f"/api/boards/{station.id}/bookings", guest)).status == 404
    stored = await api.store.get_booking(booking.booking_id)
    assert stored is not None and stored.cancelled_at is None
