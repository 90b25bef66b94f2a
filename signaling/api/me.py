"""The caller's own account: `GET /api/export` (everything stored about them) and
`DELETE /api/me` (everything goes).

The export is `Store.export_user`, checked against the types below on the way out (each has
exactly the store's fields: an unknown or missing one is a server error, never silently dropped
data), so the OpenAPI document describes exactly what a user receives.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

import radiocore_protocol as protocol
from signaling import keys
from signaling.accounts import delete_account
from signaling.api.boards import disconnect_agents
from signaling.api.http import API, Call
from signaling.namespaces import OperatorNamespace

logger = logging.getLogger(__name__)


class ExportedUser(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    email: str
    callsign: str
    created_at: datetime
    #: Says how the password is kept (a scrypt hash, which is not exported).
    password: str


class ExportedSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tier: str
    status: str
    expires_at: datetime | None
    updated_at: datetime


class ExportedGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user_id: str
    right: Literal["listen", "transmit"] | None


class ExportedBooking(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    board_id: str
    user_id: str
    starts_at: datetime
    ends_at: datetime
    price_eur: Decimal | None
    created_at: datetime
    cancelled_at: datetime | None


class ExportedTransmission(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: int
    board_id: str
    user_id: str | None
    callsign: str
    started_at: datetime
    ended_at: datetime | None
    reason: str | None


class ExportedBoard(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A board the user owns, with what is stored about it."""

    id: str
    name: str
    locator: str | None
    bands: list[str]
    public: bool
    price_eur: Decimal | None
    created_at: datetime
    paired_at: datetime | None
    last_seen: datetime | None
    grants: list[ExportedGrant]
    blocked_user_ids: list[str]
    bookings: list[ExportedBooking]
    tx_log: list[ExportedTransmission]


class ExportedRight(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A right the user holds on someone else's board."""

    board_id: str
    board_name: str
    right: Literal["listen", "transmit"]


class ExportedRefreshToken(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A sign-in's refresh token (never the token or its hash)."""

    id: str
    family_id: str
    parent_id: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class ExportReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything stored about the caller."""

    user: ExportedUser
    subscription: ExportedSubscription | None
    #: The boards they own, each with its grants, blocks, bookings and TX log.
    boards: list[ExportedBoard]
    granted_to_me: list[ExportedRight]
    blocked_from_board_ids: list[str]
    #: Their bookings on any station, cancelled ones included.
    bookings: list[ExportedBooking]
    refresh_tokens: list[ExportedRefreshToken]
    #: Their transmissions on any station, newest first.
    transmissions: list[ExportedTransmission]


class DeleteAccountRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: The account's password, typed again.
    password: str


@API.endpoint(
    "GET",
    "/api/export",
    summary="Everything stored about the caller, as JSON",
    tag="account",
    response=ExportReply,
)
async def export(call: Call) -> ExportReply:
    data = await call.app[keys.STORE].export_user(call.caller.user_id)
    return msgspec.convert(data, ExportReply)


@API.endpoint(
    "DELETE",
    "/api/me",
    summary="Delete the caller's account and everything of it",
    tag="account",
    request=DeleteAccountRequest,
    errors=(403, 429, 503),
    description=(
        "Needs the password typed again (403 if wrong; at most 5 tries a minute per account, "
        "429 with Retry-After). Everything goes: the account, its boards (with their grants, "
        "blocks, bookings and TX log), its grants, bookings, sign-ins and subscription; its "
        "transmissions on other owners' stations stay in their logs without the account. The "
        "account's Socket.IO connections, and those of its boards' agents, are closed at once."
    ),
)
async def delete_me(call: Call) -> None:
    body: DeleteAccountRequest = call.body
    caller = call.caller
    # password guesses with a stolen access token: the sign-in budget, per account
    decision = await call.app[keys.LIMITS].login.hit(f"account:{caller.user_id}")
    if not decision.allowed:
        raise decision.refusal("too many attempts; try again later")
    boards = await delete_account(call.app[keys.STORE], caller.user_id, body.password)
    logger.info("operator %s deleted their account (%d boards)", caller.callsign, len(boards))
    handlers = call.app[keys.SOCKETIO].namespace_handlers
    operators = handlers.get(protocol.OPERATOR_NAMESPACE)
    if isinstance(operators, OperatorNamespace):
        await operators.disconnect_user(caller.user_id)
    await disconnect_agents(call, set(boards))
