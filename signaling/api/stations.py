"""Public stations: `GET /api/stations?grid=JO62&bands=20m,40m`, the boards their owners list
for others to book (bookings: `signaling.api.bookings`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from signaling import keys
from signaling.api.boards import is_online
from signaling.api.http import API, Call, QueryParameter
from signaling.validation import canonical_locator_prefix, parse_bands

#: The most stations one answer lists (oldest listed first).
MAX_STATIONS: Final = 200


class StationView(msgspec.Struct, frozen=True):
    id: str
    name: str
    #: The callsign of the station's owner.
    owner_callsign: str
    locator: str | None
    bands: list[str]
    #: Euros per hour of a booking (`"12.50"`); null: free.
    price_eur: Decimal | None
    online: bool
    last_seen: datetime | None


class StationsReply(msgspec.Struct, frozen=True):
    stations: list[StationView]


@API.endpoint(
    "GET",
    "/api/stations",
    summary="Public stations, by Maidenhead grid prefix and bands",
    tag="stations",
    response=StationsReply,
    errors=(422,),
    query=(
        QueryParameter(
            "grid",
            "stations whose locator starts with this Maidenhead prefix (1 … 8 characters, any "
            "case); a station whose locator is shorter than the prefix, or unset, is not listed",
            "JO62",
        ),
        QueryParameter(
            "bands", "stations working at least one of these bands, comma-separated", "20m,40m"
        ),
    ),
    description=(
        f"At most {MAX_STATIONS}, oldest listed first. A station whose owner blocked the "
        "caller is not listed. A malformed `grid` or `bands` is 422 naming it."
    ),
)
async def list_stations(call: Call) -> StationsReply:
    grid = call.query("grid")
    bands = call.query("bands")
    prefix = None if grid is None else canonical_locator_prefix(grid, "grid")
    wanted = () if bands is None else parse_bands(bands, "bands")
    store = call.app[keys.STORE]
    blocking = set(await store.boards_blocking(call.caller.user_id))
    callsigns: dict[str, str] = {}
    stations = []
    for board in await store.public_boards(prefix, wanted, limit=MAX_STATIONS):
        if board.id in blocking or board.owner_id is None:
            continue
        if board.owner_id not in callsigns:
            owner = await store.get_user(board.owner_id)
            if owner is None:  # deleted since the list was read
                continue
            callsigns[board.owner_id] = owner.callsign
        stations.append(
            StationView(
                id=board.id,
                name=board.name,
                owner_callsign=callsigns[board.owner_id],
                locator=board.locator,
                bands=list(board.bands),
                price_eur=board.price_eur,
                online=is_online(call, board.id),
                last_seen=board.last_seen,
            )
        )
    return StationsReply(stations=stations)
