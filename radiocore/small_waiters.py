"""Smaller asyncio locks and queues for a server that holds many idle peer connections.

Every `asyncio.Event`, `Condition` and `Queue` holds `collections.deque` objects (a lock or
semaphore one once contended), and an empty deque costs 760 bytes on CPython 3.11: it allocates
a 64-slot block up front. aiortc and aioice make about forty of them per peer connection (each
ICE connection's data and event queues, each transport's state events, …) and nearly all stay
empty for the connection's whole life: ≈ 27 KB per listener, a fifth of what one costs.

`install()` makes asyncio's locks and queues build `WaiterList`s instead — a list with the two
deque methods they use (`popleft`, `appendleft`), 56 bytes empty — for every primitive created
from then on. Their waiter lists and queues are short (a handful of waiters; a listener's ICE
data queue rarely holds more than a few datagrams), where `list.pop(0)` costs what
`deque.popleft()` does. asyncio has no option for it, so it is process-wide: the server and its
media workers call it at start; the board agent (one peer connection) does not. `install()`
checks first that asyncio still uses nothing of `collections` but `deque` in those modules.
"""

from __future__ import annotations

import asyncio.locks
import asyncio.queues
import inspect
import re
import types
from typing import Any, SupportsIndex

_MODULES = (asyncio.locks, asyncio.queues)


class WaiterList(list[Any]):
    """What asyncio's locks and queues use of a deque, on a list."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)

    def rotate(self, steps: SupportsIndex = 1) -> None:  # deque's, for completeness
        if self:
            shift = int(steps) % len(self)
            self[:] = self[-shift:] + self[:-shift]


_SHIM = types.SimpleNamespace(deque=WaiterList)


class SmallWaitersError(RuntimeError):
    """asyncio no longer fits the shim (a Python upgrade): nothing was changed."""


def install() -> None:
    """Make asyncio's locks and queues created from now on use `WaiterList` (process-wide);
    `SmallWaitersError` (nothing changed) if asyncio uses more of `collections` than `deque`."""
    for module in _MODULES:
        if module.__dict__.get("collections") is _SHIM:
            continue
        used = set(re.findall(r"\bcollections\.(\w+)", inspect.getsource(module)))
        if used != {"deque"}:
            raise SmallWaitersError(
                f"{module.__name__} uses collections.{', collections.'.join(sorted(used))}: "
                "the small-waiter shim covers only deque"
            )
    for module in _MODULES:
        setattr(module, "collections", _SHIM)  # noqa: B010 (a module attribute asyncio reads)


def installed() -> bool:
    return all(module.__dict__.get("collections") is _SHIM for module in _MODULES)
