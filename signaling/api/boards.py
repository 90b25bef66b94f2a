"""A board's owner's view of it: `GET /api/boards/{board_id}/tx-log`."""

from __future__ import annotations

from datetime import datetime

import msgspec

from signaling import keys
from signaling.api.http import API, Call
from signaling.store import canonical_board_id


class TxLogEntry(msgspec.Struct, frozen=True):
    callsign: str
    user_id: str | None
    started_at: datetime
    #: None while the transmission goes on.
    ended_at: datetime | None
    #: Why it ended (`released`, `deadman`, `timeout`, …); None while it goes on.
    reason: str | None


class TxLogReply(msgspec.Struct, frozen=True):
    board_id: str
    #: Newest first.
    sessions: list[TxLogEntry]


@API.endpoint(
    "GET",
    "/api/boards/{board_id}/tx-log",
    summary="The board's transmissions, newest first (its owner only)",
    tag="boards",
    response=TxLogReply,
    errors=(400, 403, 404),
)
async def tx_log(call: Call) -> TxLogReply:
    board_id = canonical_board_id(call.path("board_id"))
    sessions = await call.app[keys.STATIONS].tx_log(call.caller, board_id)
    return TxLogReply(
        board_id=board_id,
        sessions=[
            TxLogEntry(s.callsign, s.user_id, s.started_at, s.ended_at, s.reason) for s in sessions
        ],
    )
