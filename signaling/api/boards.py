"""Boards over the API: pairing a provisioned board, the caller's boards with live presence, a
board's settings, releasing it, rotating its agent secret, its grants and blocks, and its TX
log.

Who sees what: a board answers only to its owner and to those granted a right on it. To
anyone else it does not exist: 404 `not_found`, the same answer as for an id nobody has (and a
path id that is not a UUID is such an id), so a board id cannot be probed. Someone granted a
right sees the board (it is in their `GET /api/boards`), so what only its owner may do answers
them 403 `forbidden`.

Pairing is rate-limited per user (`ApiLimits.pairing`, 10 an hour): every attempt counts, a
wrong code included, so a pairing code cannot be guessed through the API. Rotating a board's
agent secret is limited the same way (its own count: 10 an hour per user).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal, TypeAlias

import msgspec

import radiocore_protocol as protocol
from signaling import accounts, keys
from signaling.api.http import API, Call
from signaling.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)
from signaling.namespaces import AgentNamespace
from signaling.store import UNSET, Board, Store, canonical_board_id
from signaling.store.interface import (
    canonical_board_name,
    canonical_price,
)
from signaling.validation import canonical_bands, canonical_locator, validate_email

logger = logging.getLogger(__name__)

#: What the caller may do on a board: everything (its owner) or what they were granted.
Access: TypeAlias = Literal["owner", "listen", "transmit"]
#: The longest pairing code looked up; a longer one cannot be right (codes have 12 characters,
#: typed with dashes or blanks).
MAX_PAIRING_CODE_CHARS: Final = 64


# -- what the API says about a board ------------------------------------------------------------


class BoardView(msgspec.Struct, frozen=True):
    """A board as its owner, or someone granted a right on it, sees it."""

    id: str
    name: str
    #: `owner`, or the right granted to the caller (`listen`, `transmit`).
    access: Access
    #: The station can be used now: its agent's media is up in the SFU.
    online: bool
    #: Maidenhead locator (`JO62qm`), or null.
    locator: str | None
    #: Amateur bands the station works (`20m`, `40m`, …), long waves first.
    bands: list[str]
    #: Listed in `GET /api/stations`, and bookable by anyone not blocked.
    public: bool
    #: Euros per hour of a booking, with whole cents, as a decimal string (`"12.50"`); null:
    #: free.
    price_eur: Decimal | None
    #: When its agent was last seen connecting or leaving; null: never.
    last_seen: datetime | None
    paired_at: datetime | None


def is_online(call: Call, board_id: str) -> bool:
    """Whether the station's media is up now (what `signaling.presence` records)."""
    return call.app[keys.PRESENCE].presence.is_online(board_id)


def board_view(call: Call, board: Board, access: Access) -> BoardView:
    return BoardView(
        id=board.id,
        name=board.name,
        access=access,
        online=is_online(call, board.id),
        locator=board.locator,
        bands=list(board.bands),
        public=board.public,
        price_eur=board.price_eur,
        last_seen=board.last_seen,
        paired_at=board.paired_at,
    )


def path_uuid(call: Call, name: str, what: str) -> str:
    """The path parameter `name` as a canonical UUID; 404 `no such {what}` if it is not one
    (nothing has such an id)."""
    try:
        return str(uuid.UUID(call.path(name)))
    except ValueError:
        raise NotFoundError(f"no such {what}") from None


async def visible_board(call: Call) -> tuple[Board, Access]:
    """The board of the path's `board_id` and what the caller may do on it; 404 unless the
    caller owns it or holds a right on it."""
    board_id = path_uuid(call, "board_id", "board")
    store = call.app[keys.STORE]
    board = await store.get_board(board_id)
    if board is None or board.owner_id is None:
        raise NotFoundError("no such board")
    if board.owner_id == call.caller.user_id:
        return board, "owner"
    right = await store.grant_of(board.id, call.caller.user_id)
    if right is None:
        raise NotFoundError("no such board")
    return board, right


async def owned_board(call: Call, what: str) -> Board:
    """The board of the path's `board_id` if the caller owns it: 404 for a board they cannot
    see, 403 (`only its owner may {what}`) for one they were granted a right on."""
    board, access = await visible_board(call)
    if access != "owner":
        raise ForbiddenError(f"only the board's owner may {what}")
    return board


def _field(name: str, exc: BadRequestError) -> ValidationFailedError:
    """A store refusal (400, no field) as the API's 422 naming `name`."""
    message = exc.message if exc.message.startswith(name) else f"{name}: {exc.message}"
    return ValidationFailedError(message, field=name)


def board_name(value: str) -> str:
    """A board's name: stripped, 1 … `MAX_BOARD_NAME_CHARS` characters, printable (no
    control characters: they would break a page, a log line or PostgreSQL's text); 422
    naming `name` otherwise."""
    if not value.isprintable():
        raise ValidationFailedError(
            "name must not contain control characters (tabs, line breaks, NUL)", field="name"
        )
    try:
        return canonical_board_name(value)
    except BadRequestError as exc:
        raise _field("name", exc) from None


def board_price(value: Decimal | None) -> Decimal | None:
    try:
        return canonical_price(value)
    except BadRequestError as exc:
        raise _field("price_eur", exc) from None


# -- GET /api/boards -----------------------------------------------------------------------------


class BoardsReply(msgspec.Struct, frozen=True):
    #: The caller's own boards (oldest first), then those granted to them.
    boards: list[BoardView]


@API.endpoint(
    "GET",
    "/api/boards",
    summary="The caller's boards, and those granted to them, with live presence",
    tag="boards",
    response=BoardsReply,
)
async def list_boards(call: Call) -> BoardsReply:
    store = call.app[keys.STORE]
    user_id = call.caller.user_id
    own = [board_view(call, board, "owner") for board in await store.boards_of(user_id)]
    granted = [
        board_view(call, board, right) for board, right in await store.boards_granted_to(user_id)
    ]
    return BoardsReply(boards=own + granted)


# -- POST /api/boards/pair ------------------------------------------------------------------------


class PairRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: The board's id, from its sticker (the pairing link's `id`).
    board_id: str
    #: The one-time pairing code, from its sticker (the pairing link's `code`); case, blanks
    #: and dashes do not matter.
    code: str
    #: What to call the board.
    name: str


class PairReply(msgspec.Struct, frozen=True):
    board: BoardView


@API.endpoint(
    "POST",
    "/api/boards/pair",
    summary="Claim a provisioned board with the one-time code from its sticker",
    tag="boards",
    request=PairRequest,
    response=PairReply,
    status=201,
    errors=(403, 409, 429, 503),
    description=(
        "Rate-limited per user (10 attempts an hour; every attempt counts, wrong codes "
        "included: 429 with Retry-After). An unknown board and a wrong or used code get the "
        "same 403. A board that has an owner is 409 until that owner releases it."
    ),
)
async def pair_board(call: Call) -> PairReply:
    body: PairRequest = call.body
    user_id = call.caller.user_id
    decision = await call.app[keys.LIMITS].pairing.hit(user_id)
    if not decision.allowed:
        raise decision.refusal("too many pairing attempts; try again later")
    try:
        board_id = canonical_board_id(body.board_id)
    except BadRequestError:
        raise ValidationFailedError(
            "board_id must be the board's id (a UUID) from its sticker", field="board_id"
        ) from None
    if not body.code.strip():
        raise ValidationFailedError("code is missing: it is on the board's sticker", field="code")
    name = board_name(body.name)
    code = body.code
    if len(code) > MAX_PAIRING_CODE_CHARS or not code.isascii() or not code.isprintable():
        # no code looks like that: the answer of any wrong code
        raise ForbiddenError("unknown board or wrong pairing code")
    board = await accounts.pair_board(call.app[keys.STORE], board_id, user_id, code, name)
    return PairReply(board=board_view(call, board, "owner"))


# -- PUT / DELETE /api/boards/{board_id} ----------------------------------------------------------


class BoardUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The settings to change; those left out stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    #: A Maidenhead locator of 2, 4, 6 or 8 characters (`JO62qm`); null: none.
    locator: str | msgspec.UnsetType | None = msgspec.UNSET
    public: bool | msgspec.UnsetType = msgspec.UNSET
    #: Amateur bands (`["20m", "40m"]`): the whole list, replacing the stored one.
    bands: list[str] | msgspec.UnsetType = msgspec.UNSET
    #: Euros per hour, 0 … 10000 with at most two decimals (`"12.50"`); null: free.
    price_eur: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    #: The seed API's name for `locator` (`{name, location, public, bands}`), accepted as well;
    #: giving both is refused unless they agree.
    location: str | msgspec.UnsetType | None = msgspec.UNSET


@API.endpoint(
    "PUT",
    "/api/boards/{board_id}",
    summary="Change a board's name, locator, bands, price or public listing (its owner)",
    tag="boards",
    request=BoardUpdate,
    response=BoardView,
    errors=(403, 404),
)
async def update_board(call: Call) -> BoardView:
    body: BoardUpdate = call.body
    board = await owned_board(call, "change its settings")
    # every field is checked before anything is stored: a bad one changes nothing
    name = UNSET if isinstance(body.name, msgspec.UnsetType) else board_name(body.name)
    given = body.locator
    if not isinstance(body.location, msgspec.UnsetType):
        if not isinstance(given, msgspec.UnsetType) and given != body.location:
            raise ValidationFailedError(
                "location: the same setting as locator, with another value", field="location"
            )
        given = body.location
    field_name = "locator" if isinstance(body.location, msgspec.UnsetType) else "location"
    locator = (
        UNSET
        if isinstance(given, msgspec.UnsetType)
        else None
        if given is None
        else canonical_locator(given, field_name)
    )
    public = UNSET if isinstance(body.public, msgspec.UnsetType) else body.public
    bands = UNSET if isinstance(body.bands, msgspec.UnsetType) else canonical_bands(body.bands)
    price = UNSET if isinstance(body.price_eur, msgspec.UnsetType) else board_price(body.price_eur)
    updated = await call.app[keys.STORE].update_board(
        board.id, name=name, locator=locator, public=public, bands=bands, price_eur=price
    )
    return board_view(call, updated, "owner")


class ReleaseReply(msgspec.Struct, frozen=True):
    """A released board's new credentials, shown this once (stored only as hashes)."""

    board_id: str
    #: The new one-time pairing code: whoever pairs the board next needs it (a new sticker).
    pairing_code: str
    #: The new agent secret: the station's agent must be given it before it can connect again.
    secret: str


async def disconnect_agents(call: Call, board_ids: set[str]) -> None:
    """The boards' secrets died (rotated, board released, account deleted): whoever had them
    is locked out now, not at the agent's next reconnect (this node's connections; another
    node's at its next attempt)."""
    agents = call.app[keys.SOCKETIO].namespace_handlers.get(protocol.AGENT_NAMESPACE)
    if isinstance(agents, AgentNamespace) and board_ids:
        await agents.disconnect_boards(board_ids)


@API.endpoint(
    "DELETE",
    "/api/boards/{board_id}",
    summary="Release a board (its owner): it can be paired again, with new credentials",
    tag="boards",
    response=ReleaseReply,
    errors=(403, 404),
    description=(
        "The board loses its owner, name, settings, grants, blocks, bookings and TX log, and "
        "gets a new pairing code and agent secret, shown in this reply only. The old code was "
        "used up by the pairing, and the old secret dies so that whoever configured the "
        "station before (the previous owner, or anyone who copied its configuration) can no "
        "longer act as it for the next owner: hand the new code to the next owner and put "
        "the new secret in the agent's configuration. The agent connected with the old secret is "
        "disconnected at once."
    ),
)
async def release_board(call: Call) -> ReleaseReply:
    board = await owned_board(call, "release it")
    released = await accounts.release_board(call.app[keys.STORE], board.id, call.caller.user_id)
    await disconnect_agents(call, {board.id})
    return ReleaseReply(
        board_id=released.board.id, pairing_code=released.pairing_code, secret=released.secret
    )


# -- POST /api/boards/{board_id}/secret ----------------------------------------------------------


class SecretReply(msgspec.Struct, frozen=True):
    """A board's new agent secret, shown this once (stored only as a hash)."""

    board_id: str
    #: The new agent secret: put it in the station agent's `secret_file` (or its environment).
    secret: str


@API.endpoint(
    "POST",
    "/api/boards/{board_id}/secret",
    summary="Rotate a board's agent secret (its owner): a new one, shown once",
    tag="boards",
    response=SecretReply,
    errors=(403, 404, 429),
    description=(
        "The board gets a new agent secret, shown in this reply only (stored as a hash); the "
        "old one dies at once: the agent connected with it is disconnected, and a connection "
        "with it is refused `unauthorized` from now on. Nothing else of the board changes. "
        "Put the new secret where the station's agent reads it (its `secret_file`, which it "
        "reads again before every connection attempt: it comes back online by itself). "
        "Rate-limited per user (10 an hour: 429 with Retry-After)."
    ),
)
async def rotate_board_secret(call: Call) -> SecretReply:
    user_id = call.caller.user_id
    decision = await call.app[keys.LIMITS].pairing.hit(f"rotate-secret:{user_id}")
    if not decision.allowed:
        raise decision.refusal("too many secret rotations; try again later")
    board = await owned_board(call, "rotate its secret")
    rotated = await accounts.rotate_board_secret(call.app[keys.STORE], board.id, user_id)
    await disconnect_agents(call, {board.id})
    logger.info(
        "board %s: its owner rotated the agent secret", board.id, extra={"board_id": board.id}
    )
    return SecretReply(board_id=rotated.board.id, secret=rotated.secret)


# -- grants ---------------------------------------------------------------------------------------


class GrantRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: The account to give the right to.
    email: str
    #: `listen`, or `transmit` (which includes listening).
    right: Literal["listen", "transmit"]


class GrantView(msgspec.Struct, frozen=True):
    user_id: str
    email: str
    callsign: str
    right: Literal["listen", "transmit"]


class GrantsReply(msgspec.Struct, frozen=True):
    board_id: str
    grants: list[GrantView]


#: The answer for an email no grant can go to: the same for every such email.
NO_SUCH_ACCOUNT: Final = "no account with this email"


@API.endpoint(
    "POST",
    "/api/boards/{board_id}/grants",
    summary="Give an account the right to listen or to transmit on a board (its owner)",
    tag="boards",
    request=GrantRequest,
    response=GrantView,
    status=201,
    errors=(403, 404, 409),
    description=(
        "Replaces the account's right on the board if it had one. 404 for an email with no "
        "account; 409 for a user blocked from the board (lift the block first)."
    ),
)
async def add_grant(call: Call) -> GrantView:
    body: GrantRequest = call.body
    board = await owned_board(call, "grant rights on it")
    store = call.app[keys.STORE]
    user = await store.get_user_by_email(validate_email(body.email))
    if user is None:
        raise NotFoundError(NO_SUCH_ACCOUNT)
    if user.id == board.owner_id:
        raise ValidationFailedError(
            "email is the owner's: the owner has every right on the board", field="email"
        )
    await store.set_grant(board.id, user.id, body.right)
    return GrantView(user_id=user.id, email=user.email, callsign=user.callsign, right=body.right)


@API.endpoint(
    "GET",
    "/api/boards/{board_id}/grants",
    summary="Who holds a right on a board (its owner)",
    tag="boards",
    response=GrantsReply,
    errors=(403, 404),
)
async def list_grants(call: Call) -> GrantsReply:
    board = await owned_board(call, "see its grants")
    store = call.app[keys.STORE]
    grants = []
    for user_id in await store.grantees(board.id):
        user, right = await store.get_user(user_id), await store.grant_of(board.id, user_id)
        if user is not None and right is not None:  # gone between the two reads
            grants.append(GrantView(user.id, user.email, user.callsign, right))
    return GrantsReply(board_id=board.id, grants=grants)


@API.endpoint(
    "DELETE",
    "/api/boards/{board_id}/grants/{user_id}",
    summary="Take a right away (its owner); done also if there was none",
    tag="boards",
    errors=(403, 404),
)
async def remove_grant(call: Call) -> None:
    board = await owned_board(call, "take rights away")
    user_id = path_uuid(call, "user_id", "grant")
    await call.app[keys.STORE].set_grant(board.id, user_id, None)


# -- blocks ---------------------------------------------------------------------------------------


class BlockRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: The user to bar (as the board's bookings and grants name them).
    user_id: str


class BlockView(msgspec.Struct, frozen=True):
    user_id: str
    callsign: str


class BlocksReply(msgspec.Struct, frozen=True):
    board_id: str
    blocks: list[BlockView]


@API.endpoint(
    "POST",
    "/api/boards/{board_id}/blocks",
    summary="Bar a user from a board (its owner): their right and coming bookings go",
    tag="boards",
    request=BlockRequest,
    response=BlockView,
    status=201,
    errors=(403, 404),
    description=(
        "Idempotent. The user's grant is taken away, their bookings that have not ended are "
        "cancelled, and they can book the station no more. 404 for an unknown user id; 422 "
        "for the owner's own."
    ),
)
async def add_block(call: Call) -> BlockView:
    body: BlockRequest = call.body
    board = await owned_board(call, "block users")
    store = call.app[keys.STORE]
    try:
        user_id = str(uuid.UUID(body.user_id))
    except ValueError:
        raise NotFoundError("no such user") from None
    if user_id == board.owner_id:
        raise ValidationFailedError(
            "user_id is the owner's: the owner cannot be blocked", field="user_id"
        )
    user = await store.get_user(user_id)
    if user is None:
        raise NotFoundError("no such user")
    await store.block_user(board.id, user.id)
    return BlockView(user_id=user.id, callsign=user.callsign)


@API.endpoint(
    "GET",
    "/api/boards/{board_id}/blocks",
    summary="Who is barred from a board (its owner)",
    tag="boards",
    response=BlocksReply,
    errors=(403, 404),
)
async def list_blocks(call: Call) -> BlocksReply:
    board = await owned_board(call, "see its blocks")
    store = call.app[keys.STORE]
    return BlocksReply(
        board_id=board.id, blocks=await _block_views(store, await store.blocked_users(board.id))
    )


async def _block_views(store: Store, user_ids: Sequence[str]) -> list[BlockView]:
    views = []
    for user_id in user_ids:
        user = await store.get_user(user_id)
        if user is not None:
            views.append(BlockView(user_id=user.id, callsign=user.callsign))
    return views


@API.endpoint(
    "DELETE",
    "/api/boards/{board_id}/blocks/{user_id}",
    summary="Lift a block (its owner); done also if there was none",
    tag="boards",
    errors=(403, 404),
)
async def remove_block(call: Call) -> None:
    board = await owned_board(call, "lift blocks")
    user_id = path_uuid(call, "user_id", "block")
    await call.app[keys.STORE].unblock_user(board.id, user_id)


# -- GET /api/boards/{board_id}/tx-log ------------------------------------------------------------


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
    errors=(403, 404),
)
async def tx_log(call: Call) -> TxLogReply:
    board = await owned_board(call, "read its TX log")
    sessions = await call.app[keys.STATIONS].tx_log(call.caller, board.id)
    return TxLogReply(
        board_id=board.id,
        sessions=[
            TxLogEntry(s.callsign, s.user_id, s.started_at, s.ended_at, s.reason) for s in sessions
        ],
    )
