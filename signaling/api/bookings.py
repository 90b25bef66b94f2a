"""Bookings: a guest's time on a station. `POST /api/stations/{board_id}/book`, the caller's
bookings, a board's bookings (its owner), and cancelling one.

A station's active bookings never overlap: the database refuses an overlapping one itself,
also under concurrent requests (PostgreSQL: an exclusion constraint; SQLite: a serialised
write), so of two requests for overlapping windows exactly one is booked and the other answered
409 `conflict`. Times are UTC; a request's `start` must say its offset (RFC 3339).

Who may book: anyone not blocked, on a public station; on a private one, those granted a right
on it. The owner may book their own station too: that reserves the window (no guest can book
it), although the owner may use the station at any time without a booking.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Final

import msgspec

from signaling import keys
from signaling.api.boards import owned_board, path_uuid
from signaling.api.http import API, Call
from signaling.errors import NotFoundError, ValidationFailedError
from signaling.store import Board, Booking, Store

#: A booking lasts this many minutes at least, and at most `MAX_BOOKING_MINUTES`.
MIN_BOOKING_MINUTES: Final = 15
MAX_BOOKING_MINUTES: Final = 240
#: How far in the past a booking may start: a client booking "now" sends its own clock's time,
#: which reaches the server a little late (or a little behind).
START_TOLERANCE: Final = timedelta(minutes=2)
#: How far ahead a station can be booked.
MAX_BOOKING_AHEAD: Final = timedelta(days=366)


class BookRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: When the booking starts: RFC 3339 with an offset (`2026-12-01T18:00:00Z`,
    #: `2026-12-01T19:00:00+01:00`); not in the past (2 minutes' grace), at most 366 days
    #: ahead.
    start: Annotated[datetime, msgspec.Meta(tz=True)]
    duration_minutes: Annotated[int, msgspec.Meta(ge=MIN_BOOKING_MINUTES, le=MAX_BOOKING_MINUTES)]


class BookingReply(msgspec.Struct, frozen=True):
    booking_id: str
    board_id: str
    #: UTC.
    start: datetime
    end: datetime
    #: What it costs at the station's price when booked (`"6.25"`); null: free.
    price_eur: Decimal | None


class BookingView(msgspec.Struct, frozen=True):
    booking_id: str
    board_id: str
    #: The station's name.
    board_name: str
    #: The guest.
    user_id: str
    callsign: str
    #: UTC.
    start: datetime
    end: datetime
    price_eur: Decimal | None


class BookingsReply(msgspec.Struct, frozen=True):
    #: Bookings that have not ended and are not cancelled, earliest first.
    bookings: list[BookingView]


def _window(body: BookRequest, now: datetime) -> tuple[datetime, datetime]:
    """The booking's [start, end) in UTC; 422 naming `start` when it is too early or too late
    (checked before any arithmetic, which could overflow at the ends of the calendar)."""
    if body.start < now - START_TOLERANCE:
        raise ValidationFailedError("start must not be in the past", field="start")
    if body.start > now + MAX_BOOKING_AHEAD:
        raise ValidationFailedError(
            f"start must be at most {MAX_BOOKING_AHEAD.days} days ahead", field="start"
        )
    start = body.start.astimezone(UTC)
    return start, start + timedelta(minutes=body.duration_minutes)


@API.endpoint(
    "POST",
    "/api/stations/{board_id}/book",
    summary="Book a station for a window of 15 … 240 minutes",
    tag="bookings",
    request=BookRequest,
    response=BookingReply,
    status=201,
    errors=(403, 404, 409),
    description=(
        "409 `conflict` when the window overlaps another active booking of the station "
        "(adjacent windows do not overlap); 403 for a user its owner blocked; 404 for a "
        "station that is not public and on which the caller holds no right (or that does not "
        "exist). The owner may book their own station: it reserves the window."
    ),
)
async def book_station(call: Call) -> BookingReply:
    body: BookRequest = call.body
    board_id = path_uuid(call, "board_id", "station")
    store = call.app[keys.STORE]
    user_id = call.caller.user_id
    board = await store.get_board(board_id)
    if board is None or board.owner_id is None:
        raise NotFoundError("no such station")
    if (
        not board.public
        and board.owner_id != user_id
        and await store.grant_of(board.id, user_id) is None
    ):
        raise NotFoundError("no such station")
    start, end = _window(body, datetime.now(UTC))
    # the store refuses a blocked user (403) and an overlap (409), in the database
    booking = await store.create_booking(board.id, user_id, start, end)
    return BookingReply(
        booking_id=booking.id,
        board_id=booking.board_id,
        start=booking.starts_at,
        end=booking.ends_at,
        price_eur=booking.price_eur,
    )


async def _views(store: Store, bookings: list[Booking], boards: dict[str, Board]) -> BookingsReply:
    """`bookings` that have not ended, with their station's name and their guest's callsign."""
    now = datetime.now(UTC)
    callsigns: dict[str, str] = {}
    views = []
    for booking in bookings:
        if booking.ends_at <= now or booking.cancelled_at is not None:
            continue
        board = boards.get(booking.board_id) or await store.get_board(booking.board_id)
        if booking.user_id not in callsigns:
            guest = await store.get_user(booking.user_id)
            callsigns[booking.user_id] = "" if guest is None else guest.callsign
        if board is None:  # released or deleted since the list was read
            continue
        boards[board.id] = board
        views.append(
            BookingView(
                booking_id=booking.id,
                board_id=board.id,
                board_name=board.name,
                user_id=booking.user_id,
                callsign=callsigns[booking.user_id],
                start=booking.starts_at,
                end=booking.ends_at,
                price_eur=booking.price_eur,
            )
        )
    return BookingsReply(bookings=views)


@API.endpoint(
    "GET",
    "/api/bookings",
    summary="The caller's bookings that have not ended, earliest first",
    tag="bookings",
    response=BookingsReply,
)
async def my_bookings(call: Call) -> BookingsReply:
    store = call.app[keys.STORE]
    return await _views(store, await store.bookings_of_user(call.caller.user_id), {})


@API.endpoint(
    "GET",
    "/api/boards/{board_id}/bookings",
    summary="A board's bookings that have not ended, earliest first (its owner)",
    tag="bookings",
    response=BookingsReply,
    errors=(403, 404),
)
async def board_bookings(call: Call) -> BookingsReply:
    board = await owned_board(call, "see its bookings")
    store = call.app[keys.STORE]
    bookings = await store.bookings_of_board(board.id, ending_after=datetime.now(UTC))
    return await _views(store, bookings, {board.id: board})


@API.endpoint(
    "DELETE",
    "/api/bookings/{booking_id}",
    summary="Cancel a booking (its guest, or the station's owner); its window is free again",
    tag="bookings",
    errors=(404,),
    description="Cancelling a cancelled booking changes nothing (204).",
)
async def cancel_booking(call: Call) -> None:
    booking_id = path_uuid(call, "booking_id", "booking")
    store = call.app[keys.STORE]
    booking = await store.get_booking(booking_id)
    if booking is None:
        raise NotFoundError("no such booking")
    if booking.user_id != call.caller.user_id:
        board = await store.get_board(booking.board_id)
        if board is None or board.owner_id != call.caller.user_id:
            raise NotFoundError("no such booking")
    await store.cancel_booking(booking.id)
