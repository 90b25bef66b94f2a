"""Once it listens, the server moves its start-up objects out of the garbage collector's sight
(`signaling.server.freeze_startup_objects`), so full collections walk only later objects."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from signaling.config import load_server_config
from signaling.server import serve

SECRET = "test-secret-for-the-gc-test-0123456789abcdef"


async def test_the_server_freezes_its_start_up_objects_once_it_listens(tmp_path: Path) -> None:
    config = load_server_config(
        None,
        {"RADIOCORE_SECRET": SECRET},
        {"host": "127.0.0.1", "port": 0, "data_dir": str(tmp_path / "data")},
    )
    gc.unfreeze()  # what an earlier test froze goes back to the collector
    frozen_at_ready: list[int] = []

    async def on_ready(_: object, url: str) -> None:
        frozen_at_ready.append(gc.get_freeze_count())

    stop = asyncio.Event()
    running = asyncio.create_task(serve(config, on_ready=on_ready, stop=stop))
    try:
        for _ in range(300):  # bounded: 30 s
            if frozen_at_ready or running.done():
                break
            await asyncio.sleep(0.1)
        # the app, the store, the SFU and every module loaded: well over ten thousand objects
        assert frozen_at_ready and frozen_at_ready[0] > 10_000
    finally:
        stop.set()
        assert await asyncio.wait_for(running, 15) == 0
        gc.unfreeze()
