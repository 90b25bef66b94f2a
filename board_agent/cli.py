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

from .config import ENV_PREFIX, RIG_KINDS, AgentConfig
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
    rig = parser.add_argument_group("rig control (Hamlib)")
    rig.add_argument(
        "--rig",
        choices=RIG_KINDS,
        help="simulated (default), rigctld (connect to a running one), hamlib (run rigctld)",
    )
    rig.add_argument("--rigctld-host", metavar="HOST", help="rigctld's address (default 127.0.0.1)")
    rig.add_argument("--rigctld-port", metavar="PORT", type=int, help="rigctld's port (4532)")
    rig.add_argument("--rigctld-path", metavar="PATH", help="the rigctld program (--rig hamlib)")
    rig.add_argument("--rig-model", metavar="N", type=int, help="Hamlib model (1: dummy rig)")
    rig.add_argument("--rig-device", metavar="DEVICE", help="serial device, e.g. /dev/ttyUSB0")
    rig.add_argument("--rig-speed", metavar="BAUD", type=int, help="serial speed")
    rig.add_argument("--rig-ptt-type", metavar="TYPE", help="rigctld -P: RIG, DTR, RTS, ...")
    rig.add_argument("--rig-poll-hz", metavar="HZ", type=float, help="status polling rate (5)")
    rig.add_argument(
        "--rig-timeout", metavar="S", type=float, help="bound on each rigctld request (1.0)"
    )
    rig.add_argument(
        "--rig-freq-range",
        metavar="LOW-HIGH",
        action="append",
        help="allowed range in Hz, e.g. 7000000-7200000 (repeatable; default: the rig's)",
    )
    rig.add_argument(
        "--rig-mode", metavar="MODE", action="append", help="allowed mode (repeatable)"
    )
    rig.add_argument(
        "--deadman", metavar="S", type=float, help="release PTT without keep-alives (1.0)"
    )
    rig.add_argument("--tx-timeout", metavar="S", type=float, help="longest transmission (180)")
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
        "rig": args.rig,
        "rigctld_host": args.rigctld_host,
        "rigctld_port": args.rigctld_port,
        "rigctld_path": args.rigctld_path,
        "rig_model": args.rig_model,
        "rig_device": args.rig_device,
        "rig_speed": args.rig_speed,
        "rig_ptt_type": args.rig_ptt_type,
        "rig_poll_hz": args.rig_poll_hz,
        "rig_timeout_s": args.rig_timeout,
        "rig_freq_ranges": args.rig_freq_range,
        "rig_modes": args.rig_mode,
        "deadman_s": args.deadman,
        "tx_timeout_s": args.tx_timeout,
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
