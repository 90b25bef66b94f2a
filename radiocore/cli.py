"""`radiocore`: one command with subcommands (serve, agent, demo, user, board, bench).

Subcommands import what they need only when run, so `radiocore agent` works on a station
that has only the light `[agent]` extra installed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML config file")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--data-dir", type=Path, help="where the SQLite database lives")
    parser.add_argument(
        "--ice-host-address",
        action="append",
        metavar="IP",
        help="gather ICE host candidates only on this address (repeatable; default: all)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for flag, key in (
        ("host", "host"),
        ("port", "port"),
        ("data_dir", "data_dir"),
        ("log_level", "log_level"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "ice_host_address", None):
        overrides["ice.host_addresses"] = tuple(args.ice_host_address)
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radiocore", description="Operate a remote radio station from a browser."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the signaling server and SFU")
    _server_flags(serve)

    commands.add_parser(
        "agent",
        help="run the board agent at the station (see `radiocore agent --help`)",
        add_help=False,
    )

    demo = commands.add_parser(
        "demo", help="run the server with a simulated station (SQLite, one node)"
    )
    _server_flags(demo)
    demo.add_argument(
        "--audio-source", default="tone", help="the simulated station's RX audio (default tone)"
    )

    user = commands.add_parser("user", help="manage operator accounts")
    user_commands = user.add_subparsers(dest="action", required=True)
    user_add = user_commands.add_parser(
        "add", help="create an account (password from RADIOCORE_PASSWORD or a prompt)"
    )
    _server_flags(user_add)
    user_add.add_argument("--email", required=True)
    user_add.add_argument("--callsign", required=True)

    board = commands.add_parser("board", help="manage boards (stations)")
    board_commands = board.add_subparsers(dest="action", required=True)
    board_add = board_commands.add_parser(
        "add", help="register a board; prints its id and secret once"
    )
    _server_flags(board_add)
    board_add.add_argument("--owner", required=True, metavar="EMAIL")
    board_add.add_argument("--name", required=True)
    board_grant = board_commands.add_parser(
        "grant", help="let another operator listen to or transmit on a board (or revoke)"
    )
    _server_flags(board_grant)
    board_grant.add_argument("--board", required=True, metavar="UUID")
    board_grant.add_argument("--email", required=True, help="the operator's account")
    board_grant.add_argument("--right", required=True, choices=["listen", "transmit", "none"])

    bench = commands.add_parser("bench", help="measure the SFU (JSON output)")
    bench_commands = bench.add_subparsers(dest="target", required=True)
    sfu = bench_commands.add_parser("sfu", help="one publisher, N listeners, all on loopback")
    sfu.add_argument("--listeners", type=int, default=100)
    sfu.add_argument("--seconds", type=float, default=20.0)
    sfu.add_argument(
        "--listener-processes", type=int, default=2, help="processes the listeners run in"
    )
    sfu.add_argument("--json", action="store_true", help="print only the JSON result")
    control = bench_commands.add_parser(
        "control", help="PTT, tuning and dead-man timing through the dummy rig (rigctld)"
    )
    control.add_argument("--rounds", type=int, default=20, help="key/release/tune cycles")
    control.add_argument("--json", action="store_true", help="print only the JSON result")
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT, stream=sys.stderr)
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("aioice").setLevel(logging.WARNING)  # a line per ICE check


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "agent":
        from board_agent.cli import main as agent_main

        return agent_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            from radiocore.demo import run_demo

            return run_demo(args, _load_config(args, demo=True))
        if args.command == "user":
            return asyncio.run(_user_add(args))
        if args.command == "board" and args.action == "grant":
            return asyncio.run(_board_grant(args))
        if args.command == "board":
            return asyncio.run(_board_add(args))
        if args.command == "bench" and args.target == "control":
            from bench.control import run_control_bench

            return run_control_bench(args)
        if args.command == "bench":
            from bench.sfu import run_sfu_bench

            return run_sfu_bench(args)
    except _CliError as exc:
        print(f"radiocore: {exc}", file=sys.stderr)
        return 2
    return 2


class _CliError(Exception):
    pass


def _load_config(args: argparse.Namespace, *, demo: bool = False) -> Any:
    from signaling.config import load_server_config
    from signaling.errors import ConfigError

    overrides = _overrides(args)
    if demo:
        overrides["demo"] = True
    try:
        return load_server_config(args.config, os.environ, overrides)
    except ConfigError as exc:
        raise _CliError(exc.message) from None


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from signaling.app import create_app

    config = _load_config(args)
    configure_logging(config.log_level)
    web.run_app(create_app(config), host=config.host, port=config.port, print=None)
    return 0


async def _user_add(args: argparse.Namespace) -> int:
    from signaling.auth import hash_password_async
    from signaling.errors import SignalingError
    from signaling.store import create_store

    config = _load_config(args, demo=True)  # no JWT is issued here: no secret needed
    password = os.environ.get("RADIOCORE_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 8:
        raise _CliError("the password must have at least 8 characters")
    async with create_store(config.database_url, config.data_dir) as store:
        try:
            user = await store.create_user(
                args.email, await hash_password_async(password), args.callsign
            )
        except SignalingError as exc:
            raise _CliError(exc.message) from None
    print(json.dumps({"user_id": user.id, "email": user.email, "callsign": user.callsign}))
    return 0


async def _board_add(args: argparse.Namespace) -> int:
    from signaling.auth import hash_board_secret, new_board_secret
    from signaling.store import create_store

    config = _load_config(args, demo=True)
    async with create_store(config.database_url, config.data_dir) as store:
        owner = await store.get_user_by_email(args.owner)
        if owner is None:
            raise _CliError(f"no account with email {args.owner}")
        secret = new_board_secret()
        board = await store.create_board(owner.id, args.name, hash_board_secret(secret))
    print(f"Board {board.name!r} registered with id {board.id}.", file=sys.stderr)
    print(
        "Its secret is printed once, below; put it in the agent's environment as "
        "RADIOCORE_AGENT_SECRET (never on a command line or in a URL).",
        file=sys.stderr,
    )
    print(json.dumps({"board_id": board.id, "secret": secret}))
    return 0


async def _board_grant(args: argparse.Namespace) -> int:
    from signaling.errors import SignalingError
    from signaling.store import canonical_board_id, create_store

    config = _load_config(args, demo=True)
    async with create_store(config.database_url, config.data_dir) as store:
        try:
            board = await store.get_board(canonical_board_id(args.board))
            user = await store.get_user_by_email(args.email)
            if board is None or user is None:
                raise _CliError("no such board or account")
            if user.id == board.owner_id:
                raise _CliError("the owner already has every right on the board")
            right = None if args.right == "none" else args.right
            await store.set_grant(board.id, user.id, right)
        except SignalingError as exc:
            raise _CliError(exc.message) from None
    print(json.dumps({"board_id": board.id, "email": user.email, "right": right}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
