"""Waiting in tests: one bounded poll, in time and in count."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for(
    predicate: Callable[[], object], seconds: float = 15.0, step: float = 0.05
) -> bool:
    """Poll `predicate()` every `step` seconds until it is true or `seconds` have passed;
    returns whether it became true."""
    for _ in range(max(1, int(seconds / step))):
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


async def wait_for_async(
    probe: Callable[[], Awaitable[object]], seconds: float = 15.0, step: float = 0.1
) -> bool:
    """`wait_for` for a probe that must await (an HTTP request, a Redis read): `await probe()`
    every `step` seconds until it is true or `seconds` have passed."""
    for _ in range(max(1, int(seconds / step))):
        if await probe():
            return True
        await asyncio.sleep(step)
    return bool(await probe())
