"""`radiocore.small_waiters`: after `install()` asyncio's locks and queues keep their waiters and
items in small lists, and behave exactly as before (order, blocking, wake-ups, cancellation).
Run in a child interpreter: the shim is process-wide and for good."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from radiocore import small_waiters
    from radiocore.small_waiters import WaiterList

    before = asyncio.Event()._waiters
    small_waiters.install()
    small_waiters.install()  # twice: nothing more
    assert small_waiters.installed()

    async def main():
        event, queue, condition = asyncio.Event(), asyncio.Queue(maxsize=2), asyncio.Condition()
        assert type(event._waiters) is WaiterList and type(queue._queue) is WaiterList
        assert type(queue._getters) is WaiterList and type(condition._waiters) is WaiterList
        assert sys.getsizeof(event._waiters) < sys.getsizeof(before) / 5

        # a queue: first in, first out; a full queue blocks its putter until a get
        await queue.put(1)
        await queue.put(2)
        blocked = asyncio.ensure_future(queue.put(3))
        await asyncio.sleep(0)
        assert not blocked.done()
        assert [await queue.get(), await queue.get()] == [1, 2]
        await blocked
        assert queue.get_nowait() == 3
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        else:
            raise AssertionError("an empty queue gave an item")
        # getters are served in the order they came; a cancelled one is skipped
        getters = [asyncio.ensure_future(queue.get()) for _ in range(3)]
        await asyncio.sleep(0)
        getters[1].cancel()
        await asyncio.sleep(0)
        queue.put_nowait("a")
        queue.put_nowait("b")
        assert await getters[0] == "a" and await getters[2] == "b"

        # an event wakes every waiter
        waiters = [asyncio.ensure_future(event.wait()) for _ in range(5)]
        await asyncio.sleep(0)
        event.set()
        assert await asyncio.gather(*waiters) == [True] * 5

        # a condition notifies as many as asked, in order
        woken = []
        async def wait(n):
            async with condition:
                await condition.wait()
                woken.append(n)
        tasks = [asyncio.ensure_future(wait(n)) for n in range(4)]
        await asyncio.sleep(0)
        async with condition:
            condition.notify(2)
        await asyncio.sleep(0.01)
        assert woken == [0, 1], woken
        async with condition:
            condition.notify_all()
        await asyncio.gather(*tasks)
        assert woken == [0, 1, 2, 3]

        # a lock and a semaphore under contention: each holder in turn, in arrival order
        lock, semaphore, order = asyncio.Lock(), asyncio.Semaphore(2), []
        async def hold(n):
            async with lock, semaphore:
                order.append(n)
                await asyncio.sleep(0)
        await asyncio.gather(*(hold(n) for n in range(6)))
        assert order == list(range(6)), order

        rotated = WaiterList([1, 2, 3])
        rotated.rotate()
        rotated.appendleft(0)
        assert rotated == [0, 3, 1, 2] and rotated.popleft() == 0

    asyncio.run(main())
    print("ok")
    """
)


def test_asyncio_primitives_keep_their_behaviour_on_small_lists() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
