"""`ConnectionLoss`: how one session learns that it is over, and why.

Many things end a session: the socket closing, the peer connection failing, the control channel
closing, the RX track ending, a background task failing. The server link and the session both
report to one `ConnectionLoss`; the first reason is the one the agent logs. Every wait of the
session's set-up races against it, so that a server that went away does not leave the agent
waiting for a reply that can no longer come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .errors import SessionError

T = TypeVar("T")


class ConnectionLoss:
    """Set once, by the first `lose(reason)`; later reasons are ignored."""

    def __init__(self) -> None:
        self._lost = asyncio.Event()
        self._reason: str | None = None

    @property
    def is_lost(self) -> bool:
        return self._lost.is_set()

    @property
    def reason(self) -> str:
        """The first reason given, or "unknown reason" before there is one."""
        return self._reason if self._reason is not None else "unknown reason"

    def lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self._reason = reason
            self._lost.set()

    async def wait(self) -> None:
        """Return once the connection is lost."""
        await self._lost.wait()

    async def race(self, aw: Awaitable[T], reason: str | None = None) -> T:
        """Await `aw` unless the connection is lost first: then cancel it and raise
        `SessionError` with `reason`, or else the reason the connection was lost."""
        task = asyncio.ensure_future(aw)
        lost = asyncio.ensure_future(self._lost.wait())
        finished = False
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
            finished = task.done()
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if not finished:
            raise SessionError(f"connection lost: {reason if reason is not None else self.reason}")
        return task.result()
