"""Command line of the board agent: `radiocore agent ...` and `python -m board_agent`.

Every flag is derived from a field of `AgentConfig` (`radiocore.configlayers.add_config_flags`),
so the flags, the file keys and the environment variables cannot drift apart. The board secret
has no flag: it is read from `RADIOCORE_AGENT_SECRET` or the config file only, since a flag would
show it to every user of the machine in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from radiocore.configlayers import add_config_flags, flag_overrides
from radiocore.logs import configure_logging

from .config import ENV_PREFIX, AgentConfig, render_agent_config
from .errors import AgentError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radiocore agent",
        description=(
            "RadioCore board agent: connects the station to a RadioCore server. Settings come "
            f"from defaults, the --config TOML file, {ENV_PREFIX}<KEY> environment variables and "
            f"these flags, in that order. The secret only from {ENV_PREFIX}SECRET or the file. "
            "deploy/agent.example.toml lists every key."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration as TOML (the secret redacted) and exit",
    )
    add_config_flags(parser, AgentConfig)
    return parser


def main(argv: list[str]) -> int:
    """Run the agent until SIGTERM/SIGINT; 0 on a clean stop, 2 on a configuration error."""
    args = build_parser().parse_args(argv)
    try:
        sources: dict[str, str] = {}
        config = AgentConfig.load(
            args.config,
            env=os.environ,
            overrides=flag_overrides(args, AgentConfig),
            sources=sources,
        )
        if args.print_config:
            sys.stdout.write(render_agent_config(config, sources))
            return 0
        configure_logging(config.log_level)
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
