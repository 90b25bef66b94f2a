"""Admission from the data: what a user may do on a board, decided from the store at a given
time (`access_of`), and the watch that applies it to live sessions (`AccessWatch`).

The rules, in order:

- an unknown board, or one with no owner (provisioned, or released), is `not_found`;
- the board's owner may do everything, at any time (and take the floor from anyone);
- a deleted account, or a user the owner blocked from the board, is refused (a block wins
  over a grant);
- a grant gives what it says: `listen`, or `transmit` (listen, key, tune);
- a booking whose window contains the time gives `transmit` inside that window (with a
  `listen` grant too: `transmit` in the window, `listen` outside);
- everyone else is refused, with the reason (`your booking starts at …`, `no grant or booking
  for this station`).

A public station gives nothing by itself: being listed lets people book it, and the owner's
grants decide the rest (one guest at a time, as the bookings are).

The JWT only says who the user is: every `join` and `offer` asks the store, and the watch asks
it again every `access.recheck_s` for each operator connected to a board that has a guest (an
operator who is not its owner), acting when a right went away:

- the right to transmit ended (a grant lowered to `listen`, a booking's window over): the
  floor, if held, is released at once with `ptt_released` `access_ended`, and later presses
  and tuning are refused with `forbidden` and the reason;
- the right to listen ended (a grant withdrawn, a booking cancelled, or over for
  `access.listen_grace_s`, a block, a deleted account or board): the operator gets an `error`
  event `forbidden` with the reason and the board id, its peer connection for that board is
  closed and its `join` forgotten.

A booking's end is acted on at its time (the watch wakes then), everything else within one
re-check interval. Rights gained during a session (a grant raised, a booking starting) apply
at the next `join` and `offer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

from media.participant import Participant
from media.relay import RelayRoom
from media.room import Room
from media.sfu import Sfu
from signaling.errors import ForbiddenError, NotFoundError, SignalingError
from signaling.store import Board, Booking, Store

logger = logging.getLogger(__name__)

#: What a user may do on a board: its owner everything, others what a grant or booking gives.
Level: TypeAlias = Literal["owner", "transmit", "listen"]

NO_SUCH_BOARD: Final = "no such board"
NO_ACCOUNT: Final = "your account no longer exists"
BLOCKED: Final = "you are blocked from this station"
NO_RIGHT: Final = "no grant or booking for this station"
#: A booking that ended this recently is named in a refusal ("your booking ended at …").
RECENT_BOOKING: Final = timedelta(hours=1)
#: How long the watch waits, at most, for a released floor's `ptt_released` to leave before it
#: closes the peer connection.
FLUSH_S: Final = 0.3
_FLUSH_STEP_S: Final = 0.02
#: The watch never wakes sooner than this after a pass (a booking ending now is acted on now).
_MIN_SLEEP_S: Final = 0.01

#: Told that an operator's access to a board ended (board id, participant key = its Socket.IO
#: connection id, the reason for a person) before its peer connection is closed.
AccessEndedListener: TypeAlias = Callable[[str, str, str], Awaitable[None]]


def when_text(when: datetime) -> str:
    """A UTC time for a person: `2026-11-27 15:00 UTC` (seconds only when there are some)."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC" if when.second else "%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Access:
    """What a user may do on a board at one time, and why (`reason`: a sentence)."""

    board: Board | None
    level: Level | None  # None: refused
    reason: str
    #: When this answer changes by itself (the booking it comes from ends, or its grace does).
    until: datetime | None = None
    #: The booking it comes from (current, or in its grace after the end), if any.
    booking: Booking | None = None

    @property
    def may_listen(self) -> bool:
        return self.level is not None

    @property
    def may_transmit(self) -> bool:
        return self.level in ("owner", "transmit")

    @property
    def is_owner(self) -> bool:
        return self.level == "owner"

    def refusal(self) -> SignalingError:
        """The error a refused request answers: `not_found` for an unknown board, else
        `forbidden` with the reason."""
        if self.board is None:
            return NotFoundError(self.reason)
        return ForbiddenError(self.reason)

    def admitted(self) -> Board:
        """The board, if admitted; raises the refusal otherwise."""
        if self.board is None or self.level is None:
            raise self.refusal()
        return self.board


async def access_of(
    store: Store,
    board: Board | None,
    user_id: str,
    now: datetime,
    *,
    grace: timedelta = timedelta(0),
) -> Access:
    """What `user_id` may do on `board` (as read from `store`) at `now`: see the module's
    rules. `grace`: after a booking's end, its guest may still listen this long."""
    if board is None or board.owner_id is None:
        return Access(None, None, NO_SUCH_BOARD)
    if board.owner_id == user_id:
        return Access(board, "owner", "you own this station")
    # independent reads, at once (PostgreSQL answers them on several pooled connections)
    user, blocked, right, current = await asyncio.gather(
        store.get_user(user_id),
        store.is_blocked(board.id, user_id),
        store.grant_of(board.id, user_id),
        store.booking_at(board.id, now),
    )
    if user is None:
        return Access(board, None, NO_ACCOUNT)
    if blocked:
        return Access(board, None, BLOCKED)
    if current is not None and current.user_id == user_id:
        until = None if right == "transmit" else current.ends_at
        reason = f"your booking runs until {when_text(current.ends_at)}"
        return Access(board, "transmit", reason, until, current)
    if right is not None:
        return Access(board, right, f"the owner granted you {right}")
    if grace > timedelta(0):
        recent = await store.booking_at(board.id, now - grace)
        if recent is not None and recent.user_id == user_id and recent.ends_at <= now:
            reason = f"your booking ended at {when_text(recent.ends_at)}"
            return Access(board, "listen", reason, recent.ends_at + grace, recent)
    return Access(board, None, await _why_not(store, board, user_id, now))


async def _why_not(store: Store, board: Board, user_id: str, now: datetime) -> str:
    """Why a user with no grant and no booking now is refused, the most useful reason first."""
    bookings = [
        b
        for b in await store.bookings_of_board(
            board.id, ending_after=now - RECENT_BOOKING, include_cancelled=True
        )
        if b.user_id == user_id
    ]
    upcoming = [b for b in bookings if b.cancelled_at is None and b.starts_at > now]
    if upcoming:
        return f"your booking starts at {when_text(min(b.starts_at for b in upcoming))}"
    if any(b.cancelled_at is not None and b.starts_at <= now < b.ends_at for b in bookings):
        return "your booking was cancelled"
    ended = [b.ends_at for b in bookings if b.cancelled_at is None and b.ends_at <= now]
    if ended:
        return f"your booking ended at {when_text(max(ended))}"
    return NO_RIGHT


async def access_to(store: Store, board_id: str, user_id: str, now: datetime) -> Access:
    """`access_of` the board `board_id` (read from the store), without grace: admission. A
    stranger to a private board (no grant, booking or block: nothing ties them to it) is told
    it does not exist, as the REST API tells them: a board id alone reveals nothing."""
    board = await store.get_board(board_id)
    access = await access_of(store, board, user_id, now)
    if access.reason == NO_RIGHT and board is not None and not board.public:
        return Access(None, None, NO_SUCH_BOARD)
    return access


class AccessWatch:
    """Re-checks the access of connected operators against the store and acts on what went
    away (see the module docstring). One task per server; start with `start()`, stop with
    `close()`; `check()` is one pass."""

    def __init__(
        self,
        store: Store,
        sfu: Sfu,
        *,
        recheck_s: float,
        listen_grace_s: float,
        on_ended: AccessEndedListener | None = None,
    ) -> None:
        self._store = store
        self._sfu = sfu
        self._recheck_s = recheck_s
        self._grace = timedelta(seconds=listen_grace_s)
        self._on_ended = on_ended
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        outage = False
        while True:  # until cancelled by close(); each pass then one sleep
            wake: datetime | None = None
            try:
                wake = await self.check()
                if outage:
                    logger.info("access re-checks: the database answers again")
                    outage = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # sessions go on as they are while it cannot be asked (said once, not each pass)
                if not self._store.is_outage(exc):
                    logger.exception("the access re-check failed; trying again")
                elif not outage:
                    logger.warning(
                        "access re-checks: the database does not answer; connected guests keep "
                        "the access they had until it does"
                    )
                    outage = True
            delay = self._recheck_s
            if wake is not None:
                until_wake = (wake - datetime.now(UTC)).total_seconds()
                delay = min(delay, max(until_wake, _MIN_SLEEP_S))
            await asyncio.sleep(delay)

    async def check(self, now: datetime | None = None) -> datetime | None:
        """One pass over the rooms with a guest; the earliest time an access seen changes by
        itself (a booking's end, or the end of its grace), if any."""
        now = now or datetime.now(UTC)
        wake: datetime | None = None
        rooms: list[Room | RelayRoom] = [*self._sfu.rooms(), *self._sfu.relay_rooms()]
        for room in rooms:
            operators = list(room.operators.values())
            # bounded work: a room with only its owner's sessions is not read at all
            if all(p.identity.is_owner for p in operators):
                continue
            board = await self._store.get_board(room.board_id)
            seen: dict[str, Access] = {}
            for participant in operators:
                user_id = participant.identity.user_id
                if user_id is None:
                    continue
                access = seen.get(user_id)
                if access is None:
                    access = await access_of(self._store, board, user_id, now, grace=self._grace)
                    seen[user_id] = access
                if access.until is not None and (wake is None or access.until < wake):
                    wake = access.until
                await self._apply(room, participant, access)
        return wake

    async def _apply(
        self, room: Room | RelayRoom, participant: Participant, access: Access
    ) -> None:
        identity = participant.identity
        name = access.board.name if access.board is not None else "this station"
        if not access.may_listen:
            if access.board is None:
                message = "your access to this station ended: it was removed or released"
            else:
                message = f"your access to {name} ended: {access.reason}"
            await self._end(room, participant, message)
        elif identity.can_transmit and not access.may_transmit:
            message = f"you may no longer transmit on {name}: {access.reason}"
            held = room.withdraw_transmit(participant.key, message)
            logger.info(
                "%s may no longer transmit on %s%s: %s",
                identity.callsign,
                room.board_id,
                " (its transmission ended)" if held else "",
                access.reason,
            )

    async def _end(self, room: Room | RelayRoom, participant: Participant, message: str) -> None:
        """Transmit first (the floor, if held, is released), then the client is told, then its
        peer connection for the board is closed."""
        key = participant.key
        logger.info(
            "%s's access to %s ended: %s", participant.identity.callsign, room.board_id, message
        )
        if room.withdraw_transmit(key, message):
            for _ in range(round(FLUSH_S / _FLUSH_STEP_S)):  # let ptt_released leave first
                if participant.buffered_bytes == 0:
                    break
                await asyncio.sleep(_FLUSH_STEP_S)
        if self._on_ended is not None:
            try:
                await self._on_ended(room.board_id, key, message)
            except Exception:
                logger.exception("telling %s that its access ended failed", key)
        if room.operators.get(key) is participant:
            await self._sfu.disconnect(room.board_id, key)
