"""The `radiocore` command, and what the server and the board agent processes share.

- `cli`: one command with subcommands (serve, agent, demo, user, board, config, bench);
- `configlayers`: the layered configuration loader both processes use (standard library only);
- `aiortc_hooks`: every touch of aiortc/aioice private state (the SFU and the agent use it);
- `demo`: the server on its embedded defaults plus a simulated station.

The board agent imports `radiocore.configlayers` and `radiocore.aiortc_hooks` on a Raspberry Pi:
this `__init__` imports nothing.
"""
