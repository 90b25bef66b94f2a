"""The TX audit log: every transmission recorded with the control operator's identity.

The SFU reports starts and ends synchronously (it must not wait on a database while it keys a
transmitter); `TxAudit` queues them, bounded, and one task writes them to the store in order.
While the database does not answer (`Store.is_outage`), that task waits and tries the same
record again, so an outage delays the log but loses nothing of it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from media.floor import FloorHolder
from signaling.store import Store

logger = logging.getLogger(__name__)

#: Starts and ends waiting to be written; far more than one station can produce (and, while
#: the database does not answer, hours of a busy server's transmissions).
MAX_PENDING = 10_000
#: While the database does not answer: the first wait before writing again, and the longest.
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0


@dataclass(frozen=True)
class _Start:
    board_id: str
    holder: FloorHolder


@dataclass(frozen=True)
class _End:
    board_id: str
    holder: FloorHolder
    reason: str
    ended_at: datetime


class TxAudit:
    """A `media.floor.FloorObserver` that writes the TX audit log."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: asyncio.Queue[_Start | _End] = asyncio.Queue(maxsize=MAX_PENDING)
        self._open: dict[tuple[str, str, datetime], int] = {}
        self._task: asyncio.Task[None] | None = None
        self.lost = 0
        #: Writes tried again because the database did not answer.
        self.retries = 0
        #: Transmissions ended since start, by why they ended (`GET /metrics`).
        self.ended: collections.Counter[str] = collections.Counter()

    async def start(self) -> None:
        """Close the records a crashed server left open, then start writing."""
        dangling = await self._store.close_open_tx(datetime.now(UTC), "server_restart")
        if dangling:
            logger.warning(
                "closed %d TX record(s) left open by a server that did not stop cleanly "
                "(reason server_restart; a station that reconnects reports when it unkeyed)",
                dangling,
            )
        self._task = asyncio.get_running_loop().create_task(self._write())

    async def station_released(self, board_id: str, released_at: datetime) -> None:
        """A reconnecting station reports when it last confirmed its transmitter unkeyed: a
        record closed at restart gets that, truer, end."""
        settled = await self._store.settle_open_tx(board_id, "server_restart", released_at)
        if settled:
            logger.info("TX log of %s: the station unkeyed at %s", board_id, released_at)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        if self._queue.qsize():
            logger.error(
                "stopping: %d TX audit record(s) not written (the database did not answer); "
                "a record left open is closed at the next start",
                self._queue.qsize(),
            )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def tx_started(self, board_id: str, holder: FloorHolder) -> None:
        self._put(_Start(board_id, holder))

    def tx_ended(self, board_id: str, holder: FloorHolder, reason: str) -> None:
        self.ended[reason] += 1
        self._put(_End(board_id, holder, reason, datetime.now(UTC)))

    def _put(self, event: _Start | _End) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1
            logger.error("TX audit queue full; a record of %s was lost", event.holder.callsign)

    async def _write(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._write_one(event)
            finally:
                self._queue.task_done()

    async def _write_one(self, event: _Start | _End) -> None:
        """Write `event`; while the database does not answer, wait and try again (the events
        behind it wait in order: a transmission's end is never written before its start)."""
        delay = RETRY_FIRST_S
        outage = False
        while True:
            try:
                key = (event.board_id, event.holder.key, event.holder.started_at)
                if isinstance(event, _Start):
                    self._open[key] = await self._store.start_tx(
                        event.board_id,
                        event.holder.user_id,
                        event.holder.callsign,
                        event.holder.started_at,
                    )
                else:
                    tx_id = self._open.get(key)
                    if tx_id is not None:
                        await self._store.end_tx(tx_id, event.ended_at, event.reason)
                        del self._open[key]
                if outage:
                    logger.info("TX audit log: the database answers again; writing resumed")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._store.is_outage(exc):
                    logger.exception("writing the TX audit log failed")
                    return
                if not outage:
                    logger.warning(
                        "TX audit log: the database does not answer; %d record(s) wait and "
                        "are written when it does",
                        self._queue.qsize() + 1,
                    )
                    outage = True
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
