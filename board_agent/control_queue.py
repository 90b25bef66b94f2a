"""`ControlQueue`: the operators' control messages waiting for the rig, bounded and coalesced.

A rig applies a command in tens of milliseconds (a serial CAT link, rigctld); a tuning knob
turned in a browser sends many more than that. Each tuning message sets a state, so only the
latest value of each matters: a newer `freq`, `mode` or `power` replaces the pending one of its
type where it stands in the queue, and a flood of them leaves at most one pending per type. PTT
changes are never coalesced and keep their order; tuning does not move across them either (a
`freq` queued after a release replaces no `freq` queued before it), so the rig transmits on the
frequency the operator chose for that transmission. What the queue displaces it returns, so
that the caller can count and report it.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

from radiocore_protocol import OperatorMessage, Ptt


@dataclass(frozen=True, slots=True)
class Displaced:
    """A message that will never be applied: `coalesced` when a newer one of its type took its
    place, else dropped to make room in a full queue."""

    message: OperatorMessage
    coalesced: bool


class ControlQueue:
    """Bounded FIFO of control messages, tuning coalesced (see the module docstring).

    When full it drops the oldest tuning message; if there is none, the oldest key-up; only if it
    holds nothing but releases, the oldest release (a duplicate). So a backlog behind a slow rig
    can never swallow a `ptt` false.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._items: collections.deque[OperatorMessage] = collections.deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, message: OperatorMessage) -> Displaced | None:
        """Queue `message`, or let it take the place of the pending one of its type; returns
        the message it displaced (coalesced, or dropped to make room), if any."""
        if not isinstance(message, Ptt):
            # newest first, back to the last PTT change: at most one message per tuning type
            for index in range(len(self._items) - 1, -1, -1):
                pending = self._items[index]
                if isinstance(pending, Ptt):
                    break
                if type(pending) is type(message):
                    self._items[index] = message
                    return Displaced(pending, coalesced=True)
        displaced = None
        if len(self._items) >= self._maxsize:
            displaced = Displaced(self._drop_one(), coalesced=False)
        self._items.append(message)
        self._ready.set()
        return displaced

    def _drop_one(self) -> OperatorMessage:
        victim: OperatorMessage | None = next(
            (m for m in self._items if not isinstance(m, Ptt)), None
        )  # tuning first
        if victim is None:
            victim = next((m for m in self._items if isinstance(m, Ptt) and m.state), None)
        if victim is None:
            return self._items.popleft()  # only releases: this one is a duplicate
        self._items.remove(victim)
        return victim

    def get_nowait(self) -> OperatorMessage:
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()

    async def get(self) -> OperatorMessage:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()
