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
from typing import Final

from radiocore.configlayers import add_config_flags, flag_overrides
from radiocore.logs import configure_logging

from .config import ENV_PREFIX, AgentConfig, render_agent_config
from .errors import AgentError, RigctldProcessError
from .ptt_guard import unkey_through_rigctld
from .rigctld_process import RigctldProcess, free_loopback_port

logger = logging.getLogger(__name__)

#: Bound on `--unkey`'s attempts to reach rigctld (systemd's ExecStopPost waits for it).
UNKEY_WITHIN_S: Final = 5.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radiocore agent",
        # no abbreviations: `--secret VALUE` would otherwise be taken for `--secret-file`,
        # and the secret shown in the process list and in the error naming that "file"
        allow_abbrev=False,
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
    parser.add_argument(
        "--unkey",
        action="store_true",
        help="release PTT and exit, for systemd's ExecStopPost=: ask rigctld at "
        "rigctld_host:rigctld_port for set_ptt 0, retrying for up to "
        f"{UNKEY_WITHIN_S:g} s (rig = hamlib: through a rigctld started for the purpose when "
        "none answers there); exit 0 when rigctld confirmed (or rig = simulated), 1 when not",
    )
    add_config_flags(parser, AgentConfig)
    return parser


def main(argv: list[str]) -> int:
    """Run the agent until SIGTERM/SIGINT; 0 on a clean stop, 2 on a configuration error (or
    with `--unkey`: release PTT once, see `_unkey`)."""
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
        configure_logging(config.log_level, config.log_format)
        if args.unkey:
            return asyncio.run(_unkey(config))
        asyncio.run(_serve(config))
    except AgentError as exc:
        print(f"radiocore agent: error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _unkey(config: AgentConfig) -> int:
    """`--unkey`: 0 once rigctld confirmed `set_ptt 0`, 1 when it could not be reached."""
    if config.rig == "simulated":
        logger.info("rig = simulated: nothing to unkey")
        return 0
    failure = (
        await unkey_through_rigctld(
            config.rigctld_host, config.rigctld_port, within_s=UNKEY_WITHIN_S
        )
        if config.rigctld_port
        else "no rigctld_port (0: the agent's rigctld had a port of its own)"
    )
    if failure is not None and config.rig == "hamlib":
        # the agent's rigctld ends with the agent: open the rig once more to release it
        logger.info("%s; starting rigctld to release PTT", failure)
        failure = await _unkey_through_own_rigctld(config)
    if failure is not None:
        logger.error("could not release PTT: %s", failure)
        return 1
    logger.info("PTT released (rigctld confirmed set_ptt 0)")
    return 0


async def _unkey_through_own_rigctld(config: AgentConfig) -> str | None:
    process = RigctldProcess(
        path=config.rigctld_path,
        model=config.rig_model,
        port=free_loopback_port(),
        device=config.rig_device,
        speed=config.rig_speed,
        ptt_type=config.rig_ptt_type,
    )
    try:
        await process.start()
    except RigctldProcessError as exc:
        return str(exc)
    try:
        return await unkey_through_rigctld(process.host, process.port, within_s=UNKEY_WITHIN_S)
    finally:
        await process.stop()


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
