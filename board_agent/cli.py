"""Command line of the board agent: `radiocore agent ...` and `python -m board_agent`.

The board secret is read from `RADIOCORE_AGENT_SECRET` or the config file only: a flag would
show it to every user of the machine in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .config import ENV_PREFIX, AgentConfig
from .errors import AgentError

logger = logging.getLogger(__name__)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radiocore agent",
        description=(
            "RadioCore board agent: connects the station to a RadioCore server. Settings come "
            f"from defaults, the --config TOML file, {ENV_PREFIX}* environment variables and "
            f"these flags, in that order. The secret only from {ENV_PREFIX}SECRET or the file."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    parser.add_argument("--server", metavar="URL", help="server URL, e.g. https://radio.example")
    parser.add_argument("--board-id", metavar="UUID", help="this board's id (from pairing)")
    parser.add_argument(
        "--audio-source",
        metavar="SPEC",
        help="receiver audio: tone, tone:HZ, file:PATH, alsa:DEVICE, pulse:DEVICE",
    )
    parser.add_argument(
        "--audio-sink", metavar="SPEC", help="TX audio: null, raw:PATH, alsa:DEVICE, pulse:DEVICE"
    )
    parser.add_argument(
        "--ice-host-address",
        metavar="IP",
        action="append",
        help="gather ICE host candidates only on this address (repeatable; default: all)",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="INFO", type=str.upper, help="default INFO"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the agent until SIGTERM/SIGINT; 0 on a clean stop, 2 on a configuration error."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    overrides: dict[str, object] = {
        "server_url": args.server,
        "board_id": args.board_id,
        "audio_source": args.audio_source,
        "audio_sink": args.audio_sink,
        "ice_host_addresses": args.ice_host_address,
    }
    try:
        config = AgentConfig.load(args.config, env=os.environ, overrides=overrides)
        asyncio.run(_serve(config))
    except AgentError as exc:
        print(f"radiocore agent: error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: AgentConfig) -> None:
    from .agent import BoardAgent  # aiortc is heavy: only load it to actually run

    agent = BoardAgent(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, agent.stop)
    try:
        await agent.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
