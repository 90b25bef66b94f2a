"""`radiocore`: one command with subcommands (serve, agent, demo, migrate, user, board, config,
turn, bench; and worker, which serve starts).

Subcommands import what they need only when run, so `radiocore agent` works on a station
that has only the light `[agent]` extra installed (it is handed to `board_agent.cli` before
anything of the server is imported). The server's flags are derived from `ServerConfig`
(`radiocore.configlayers.add_config_flags`), as the agent's are from `AgentConfig`: a new setting
is a new flag, with its help, and no table maps flags to keys by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any


def _server_flags(parser: argparse.ArgumentParser, *, exclude: tuple[str, ...] = ()) -> None:
    """`--config` and a flag per server setting (derived from `ServerConfig`) but `exclude`."""
    from radiocore.configlayers import add_config_flags
    from signaling.config import ServerConfig

    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="TOML config file (every key: deploy/server.example.toml)",
    )
    add_config_flags(parser, ServerConfig, exclude=exclude)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radiocore", description="Operate a remote radio station from a browser."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings = (
        "Settings come from defaults, the --config TOML file, RADIOCORE_<KEY> environment "
        "variables (RADIOCORE_<SECTION>__<KEY> in a section) and these flags, in that order; "
        "secrets only from the environment or the file."
    )

    serve = commands.add_parser(
        "serve", help="run the signaling server and SFU", description=settings
    )
    _server_flags(serve)

    worker = commands.add_parser(
        "worker",
        help="a media worker, started by `radiocore serve` when workers > 1 (not by hand)",
        description="A media worker of `radiocore serve` (signaling.workers): reads its "
        "configuration, pickled, on standard input and prints the loopback port it listens on.",
    )
    worker.add_argument("--name", required=True, help="this worker's name")
    worker.add_argument("--main-node", required=True, help="its main process's node name")
    worker.add_argument("--main-url", required=True, help="where its main process listens")

    commands.add_parser(
        "agent",
        help="run the board agent at the station (see `radiocore agent --help`)",
        add_help=False,
    )

    demo = commands.add_parser(
        "demo",
        help="run the server with a simulated station (SQLite, one node)",
        description=settings,
    )
    _server_flags(demo, exclude=("demo",))
    demo.add_argument(
        "--audio-source", default="tone", help="the simulated station's RX audio (default tone)"
    )
    demo.add_argument(
        "--audio-sink",
        default="null",
        metavar="SPEC",
        help="where the simulated station puts operators' TX audio: null (default), raw:PATH "
        "(s16le 48 kHz mono, written only while keyed), alsa:DEVICE, pulse:DEVICE",
    )

    user = commands.add_parser("user", help="manage operator accounts")
    user_commands = user.add_subparsers(dest="action", required=True)
    user_add = user_commands.add_parser(
        "add", help="create an account (password from RADIOCORE_PASSWORD or a prompt)"
    )
    _server_flags(user_add, exclude=("demo",))
    user_add.add_argument("--email", required=True)
    user_add.add_argument("--callsign", required=True)

    board = commands.add_parser("board", help="manage boards (stations)")
    board_commands = board.add_subparsers(dest="action", required=True)
    board_add = board_commands.add_parser(
        "add", help="register a board; prints its id and secret once"
    )
    _server_flags(board_add, exclude=("demo",))
    board_add.add_argument("--owner", required=True, metavar="EMAIL")
    board_add.add_argument("--name", required=True)
    board_grant = board_commands.add_parser(
        "grant", help="let another operator listen to or transmit on a board (or revoke)"
    )
    _server_flags(board_grant, exclude=("demo",))
    board_grant.add_argument("--board", required=True, metavar="UUID")
    board_grant.add_argument("--email", required=True, help="the operator's account")
    board_grant.add_argument("--right", required=True, choices=["listen", "transmit", "none"])
    board_rotate = board_commands.add_parser(
        "rotate-secret",
        help="give a board a new agent secret; prints it once (the old one stops working)",
        description=(
            "Replace the board's agent secret with a new one, printed once as JSON "
            "{board_id, secret} (or, with --write-secret-file, written to that file instead). "
            "The old secret opens no connection from then on. A server running meanwhile "
            "refuses it at the agent's next connection attempt; the owner's "
            "POST /api/boards/<uuid>/secret also disconnects an agent connected with it at "
            "once. " + settings
        ),
    )
    _server_flags(board_rotate, exclude=("demo",))
    board_rotate.add_argument("--board", required=True, metavar="UUID")
    board_rotate.add_argument(
        "--write-secret-file",
        metavar="PATH",
        type=Path,
        help="write the new secret to PATH (mode 0600, replaced atomically, keeping the owner "
        "of a file already there) instead of printing it: the agent's secret_file when server "
        "and station are one machine; the agent reads it before its next connection attempt",
    )
    board_provision = board_commands.add_parser(
        "provision",
        help="provision boards for pairing: id, agent secret and one-time pairing code (JSON, "
        "one line each) and the pairing link's QR code, <id>.svg and <id>.png",
    )
    _server_flags(board_provision, exclude=("demo",))
    board_provision.add_argument("--count", type=int, default=1, help="how many (default 1)")
    board_provision.add_argument(
        "--base-url",
        metavar="URL",
        help="the console's public address the QR codes link to (https://radio.example.org); "
        "default: this server's host and port",
    )
    board_provision.add_argument(
        "--qr-dir", metavar="DIR", type=Path, default=Path("."), help="where the QR codes go"
    )

    migrate = commands.add_parser(
        "migrate",
        help="bring the database schema up to date (the server also does at start-up)",
        description=(
            "Apply the schema migrations the database lacks (SQLite or PostgreSQL, from "
            "database_url), then print its schema version as JSON. A database newer than this "
            "release is refused, unchanged. " + settings
        ),
    )
    _server_flags(migrate, exclude=("demo",))
    migrate.add_argument(
        "--database-url",
        dest="migrate_url",  # not `database_url`: that one is a secret, refused as a flag
        metavar="URL",
        help="the database to migrate instead of database_url: sqlite:///PATH or "
        "postgresql://USER@HOST/DB; without a password (a command line is visible to other "
        "users): give one in RADIOCORE_DATABASE_URL, or use peer/.pgpass authentication",
    )

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="action", required=True)
    show = config_commands.add_parser(
        "show",
        help="print the effective server configuration as TOML, secrets redacted",
        description=(
            "Print the configuration `radiocore serve` would run with, given the same file, "
            "environment and flags, as TOML it reads back; secrets are redacted. With --agent, "
            "the board agent's, given `radiocore agent`'s flags. " + settings
        ),
    )
    show.add_argument(
        "--agent",
        action="store_true",
        help="show the board agent's configuration instead (same as `radiocore agent "
        "--print-config`; takes the agent's flags)",
    )
    _server_flags(show)

    turn = commands.add_parser(
        "turn", help="coturn for this deployment: write its configuration, or run it"
    )
    turn_commands = turn.add_subparsers(dest="action", required=True)
    turn_config = turn_commands.add_parser(
        "config",
        help="print (or write) a hardened coturn configuration from the [turn] settings",
        description=(
            "Render coturn's configuration from the server's [turn] settings: use-auth-secret "
            "with the same secret, the realm, the listening ports of [turn] urls, the relay "
            "port range, private peer addresses denied but the SFU's own, quotas, TLS files. "
            "The file contains the TURN secret. " + settings
        ),
    )
    _server_flags(turn_config, exclude=("demo",))
    turn_config.add_argument(
        "--output",
        metavar="PATH",
        type=Path,
        help="write it to PATH with mode 0600 (it contains the secret) instead of printing it",
    )
    turn_run = turn_commands.add_parser(
        "run",
        help="run coturn in the foreground with that configuration (one-box set-ups)",
        description=(
            "Write the configuration of `radiocore turn config` to a private temporary file and "
            "run turnserver with it in the foreground; SIGTERM, SIGINT and SIGHUP are passed on "
            "and its exit status is returned (0 when it stopped on a signal passed on). " + settings
        ),
    )
    _server_flags(turn_run, exclude=("demo",))
    turn_run.add_argument(
        "--turnserver",
        metavar="PATH",
        default="/usr/bin/turnserver",
        help="coturn's executable (default /usr/bin/turnserver; Debian package coturn)",
    )

    from bench import janus  # the harness's defaults (standard library only)

    bench = commands.add_parser("bench", help="measure the SFU, rig control and API (JSON)")
    bench_commands = bench.add_subparsers(dest="target", required=True)
    sfu = bench_commands.add_parser("sfu", help="one publisher, N listeners, all on loopback")
    sfu.add_argument("--listeners", type=int, default=100)
    sfu.add_argument("--seconds", type=float, default=20.0)
    sfu.add_argument(
        "--listener-processes", type=int, default=2, help="processes the listeners run in"
    )
    sfu.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the server's workers setting (processes, its own included); above 1 the "
        "listeners may only listen, so they are spread over them; CPU and memory are the "
        "processes' sum",
    )
    sfu.add_argument(
        "--udp-port",
        type=int,
        default=0,
        help="the server's ice.udp_port: every peer connection on this one port (each worker "
        "on the next); 0: a port per peer connection",
    )
    sfu.add_argument(
        "--relay",
        action="store_true",
        help="measure the direct path, then every listener forced through a coturn the "
        "benchmark starts (/usr/bin/turnserver): both results and their ratio",
    )
    sfu.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="first measure the server with every listener connected and no audio for this "
        "long (0: skip): its idle CPU, and the marginal cost per forwarded packet",
    )
    sfu.add_argument(
        "--control",
        action="store_true",
        help="every listener opens the console's control data channel and the publisher sends "
        "status (--status-hz) and a heartbeat a second; with --idle-seconds, a second idle "
        "window without status gives the status fan-out's cost",
    )
    sfu.add_argument(
        "--status-hz", type=float, default=5.0, help="status messages per second (--control)"
    )
    sfu.add_argument(
        "--lane",
        choices=["auto", "compiled", "python", "both"],
        default="auto",
        help="the server's forwarding_lane; both: the compiled and the pure-Python lane in one "
        "invocation (--rounds runs each, in ABBA order) and their ratio",
    )
    sfu.add_argument(
        "--compare-janus",
        action="store_true",
        help="run Janus's harness (../shared/anchors/janus; /usr/bin/janus) with the same "
        "listeners and windows in this invocation, and print RadioCore / Janus ratios",
    )
    sfu.add_argument(
        "--janus-harness",
        default=str(janus.DEFAULT_HARNESS),
        help="the Janus harness's folder (--compare-janus)",
    )
    sfu.add_argument(
        "--event-loops",
        type=int,
        default=janus.DEFAULT_EVENT_LOOPS,
        help="Janus's event_loops (--compare-janus)",
    )
    sfu.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="--compare-janus and --lane both: runs per side, in ABBA order (2: RadioCore, "
        "Janus, Janus, RadioCore); each side's median",
    )
    sfu.add_argument("--json", action="store_true", help="print only the JSON result")
    control = bench_commands.add_parser(
        "control", help="PTT, tuning and dead-man timing through the dummy rig (rigctld)"
    )
    control.add_argument("--rounds", type=int, default=20, help="key/release/tune cycles")
    control.add_argument("--json", action="store_true", help="print only the JSON result")
    faults = bench_commands.add_parser(
        "faults",
        help="release time at the rig when the operator, server or agent is killed or frozen "
        "while transmitting",
    )
    faults.add_argument("--rounds", type=int, default=10, help="rounds per fault")
    faults.add_argument(
        "--faults",
        metavar="LIST",
        help="comma-separated: operator_sigkill, operator_sigstop, server_sigkill, "
        "server_sigstop, server_sigterm, agent_sigkill, agent_sigstop (default: all)",
    )
    faults.add_argument("--json", action="store_true", help="print only the JSON result")
    api = bench_commands.add_parser(
        "api",
        help="the REST and Socket.IO API on a seeded database: admission at join, bookings "
        "under contention, sign-ins",
    )
    api.add_argument("--users", type=int, default=10_000, help="seeded users (at least 10)")
    api.add_argument("--boards", type=int, default=1_000, help="seeded boards (at least 3)")
    api.add_argument(
        "--seconds", type=float, default=10.0, help="length of the booking and the login window"
    )
    api.add_argument(
        "--database",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="postgres: a PostgreSQL the benchmark starts (/usr/lib/postgresql/15/bin); "
        "sqlite: the embedded store, for comparison",
    )
    api.add_argument(
        "--admission-calls",
        type=int,
        default=4000,
        help="in-process admission checks timed (at least 2000 for the issue's figure)",
    )
    api.add_argument("--join-calls", type=int, default=1000, help="Socket.IO joins timed")
    api.add_argument(
        "--clients", type=int, default=16, help="concurrent HTTP clients booking the hot boards"
    )
    api.add_argument("--json", action="store_true", help="print only the JSON result")
    e2e = bench_commands.add_parser(
        "e2e",
        help="station-to-ear audio delay (clicks) and space bar-to-rig PTT latency, through the "
        "console in headless Chromium (/usr/bin/chromium), inside `unshare -n`",
    )
    e2e.add_argument("--clicks", type=int, default=100, help="clicks to time (0: none)")
    e2e.add_argument("--ptt", type=int, default=20, help="space-bar presses to time (0: none)")
    e2e.add_argument(
        "--period-ms", type=int, default=500, help="time between clicks (100 … 60000 ms)"
    )
    e2e.add_argument("--json", action="store_true", help="print only the JSON result")
    soak = bench_commands.add_parser(
        "soak",
        help="one board kept busy for --minutes (listeners joining and leaving, PTT cycling, "
        "agent and operator reconnects): server RSS, descriptors, tasks, packet loss, PTT",
    )
    soak.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    soak.add_argument(
        "--listeners", type=int, default=5, help="steady listeners (the packet-loss figure)"
    )
    soak.add_argument(
        "--churn", type=int, default=2, help="listeners joining and leaving, at a time"
    )
    soak.add_argument(
        "--sample-s",
        type=float,
        default=None,
        help="seconds between samples (default: a 20th of the run, 1 … 10 s)",
    )
    soak.add_argument("--json", action="store_true", help="print only the JSON result")
    join = bench_commands.add_parser(
        "join",
        help="--operators choosing one station at the same instant: join -> first audio "
        "p50/p99 (the issue's target: 50 operators, p99 <= 500 ms)",
    )
    join.add_argument("--operators", type=int, default=50, help="operators joining at once")
    join.add_argument(
        "--processes", type=int, default=2, help="processes the operators run in (1 … 16)"
    )
    join.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the server's workers setting; above 1 the operators may only listen, so their "
        "offers are answered by the least loaded process",
    )
    join.add_argument(
        "--udp-port",
        type=int,
        default=0,
        help="the server's ice.udp_port: every peer connection on this one port; 0: a port "
        "per peer connection",
    )
    join.add_argument(
        "--prepared",
        action="store_true",
        help="each operator makes its peer connection and offer before the start instant, as "
        "browsers each on their own machine would: the figure is then the server's and the "
        "handshakes', without the co-located clients' own set-up",
    )
    join.add_argument("--json", action="store_true", help="print only the JSON result")
    fuzz = bench_commands.add_parser(
        "fuzz",
        help="hypothesis-generated input through every decoder that reads from the network "
        "(protocol, Socket.IO, REST, agent, rigctld replies, SFU offers and candidates): "
        "crashes and hangs per decoder; the SFU's inside `unshare -n`",
    )
    fuzz.add_argument("--examples", type=int, default=100_000, help="inputs per decoder")
    fuzz.add_argument(
        "--decoders",
        metavar="LIST",
        help="comma-separated decoder names or prefixes (datachannel, socketio, agent, rest, "
        "rigctld, sfu, or e.g. rest/field/callsign); default: all",
    )
    fuzz.add_argument("--seed", type=int, default=0, help="the run's seed (same seed, same inputs)")
    fuzz.add_argument(
        "--mutants",
        type=int,
        default=49,
        help="inputs derived from each hypothesis example, besides the example itself",
    )
    fuzz.add_argument(
        "--hang-ms", type=float, default=1000.0, help="an input slower than this hangs"
    )
    fuzz.add_argument("--json", action="store_true", help="print only the JSON result")
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "agent":
        from board_agent.cli import main as agent_main

        return agent_main(args_list[1:])
    if args_list[:2] == ["config", "show"] and "--agent" in args_list[2:]:
        from board_agent.cli import main as agent_main

        rest = args_list[2:]
        rest.remove("--agent")
        return agent_main(["--print-config", *rest])
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "demo":
            from radiocore.demo import run_demo

            return run_demo(args, _load_config(args, demo=True))
        if args.command == "config":
            return _config_show(args)
        if args.command == "turn" and args.action == "config":
            return _turn_config(args)
        if args.command == "turn":
            return _turn_run(args)
        if args.command == "migrate":
            return asyncio.run(_migrate(args))
        if args.command == "user":
            return asyncio.run(_user_add(args))
        if args.command == "board" and args.action == "grant":
            return asyncio.run(_board_grant(args))
        if args.command == "board" and args.action == "rotate-secret":
            return asyncio.run(_board_rotate_secret(args))
        if args.command == "board" and args.action == "provision":
            return asyncio.run(_board_provision(args))
        if args.command == "board":
            return asyncio.run(_board_add(args))
        if args.command == "bench" and args.target == "control":
            from bench.control import run_control_bench

            return run_control_bench(args)
        if args.command == "bench" and args.target == "faults":
            from bench.faults import run_faults_bench

            return run_faults_bench(args)
        if args.command == "bench" and args.target == "e2e":
            from bench.e2e import run_e2e_bench

            return run_e2e_bench(args)
        if args.command == "bench" and args.target == "soak":
            from bench.soak import run_soak_bench

            return run_soak_bench(args)
        if args.command == "bench" and args.target == "join":
            from bench.join import run_join_bench

            return run_join_bench(args)
        if args.command == "bench" and args.target == "fuzz":
            from bench.fuzz import run_fuzz_bench

            return run_fuzz_bench(args)
        if args.command == "bench" and args.target == "api":
            from bench.api import run_api_bench

            return run_api_bench(args)
        if args.command == "bench":
            from bench.sfu import run_sfu_bench

            return run_sfu_bench(args)
    except _CliError as exc:
        print(f"radiocore: {exc}", file=sys.stderr)
        return 2
    return 2


class _CliError(Exception):
    pass


def _load_config(
    args: argparse.Namespace, *, demo: bool = False, sources: dict[str, str] | None = None
) -> Any:
    from radiocore.configlayers import flag_overrides
    from signaling.config import ServerConfig, load_server_config
    from signaling.errors import ConfigError

    overrides = flag_overrides(args, ServerConfig)
    if demo:
        overrides["demo"] = True
    try:
        return load_server_config(args.config, os.environ, overrides, sources=sources)
    except ConfigError as exc:
        raise _CliError(exc.message) from None


def _config_show(args: argparse.Namespace) -> int:
    from signaling.config import render_server_config

    sources: dict[str, str] = {}
    config = _load_config(args, sources=sources)
    sys.stdout.write(render_server_config(config, sources))
    return 0


def _turn_settings(args: argparse.Namespace) -> tuple[str, Any]:
    """coturn's configuration text from the server's settings, and those settings. The JWT
    secret is not needed here (a box may run only coturn): the config loads as `user add` does,
    without the demo-mode warning that would not apply."""
    import logging

    from turn.coturn_config import CoturnConfigError, render_coturn_config

    def quiet(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("demo mode")

    config_logger = logging.getLogger("signaling.config")
    config_logger.addFilter(quiet)
    try:
        config = _load_config(args, demo=True)
    finally:
        config_logger.removeFilter(quiet)
    try:
        text = render_coturn_config(config.turn, sfu_addresses=config.ice.host_addresses)
    except CoturnConfigError as exc:
        raise _CliError(str(exc)) from None
    return text, config


def _turn_config(args: argparse.Namespace) -> int:
    from turn.coturn_config import write_coturn_config

    text, _ = _turn_settings(args)
    if args.output is None:
        sys.stdout.write(text)
        print(
            "radiocore: this configuration contains the TURN secret; keep any copy mode 0600 "
            "(--output PATH writes it so)",
            file=sys.stderr,
        )
        return 0
    write_coturn_config(args.output, text)
    print(
        f"radiocore: wrote {args.output} (mode 0600: it contains the TURN secret); "
        f"run: turnserver -c {args.output}",
        file=sys.stderr,
    )
    return 0


def _turn_run(args: argparse.Namespace) -> int:
    import signal
    import subprocess
    import tempfile

    from turn.coturn_config import write_coturn_config

    binary = str(args.turnserver)
    if not os.access(binary, os.X_OK):
        raise _CliError(
            f"{binary} is missing or not executable: install coturn (Debian: apt-get install "
            "coturn) or name it with --turnserver PATH"
        )
    text, config = _turn_settings(args)
    # systemd's RuntimeDirectory= when there is one (private to the unit), else /tmp; the
    # directory is 0700 and the file 0600, and both go when turnserver exits
    runtime = (os.environ.get("RUNTIME_DIRECTORY") or "").split(":")[0] or None
    with tempfile.TemporaryDirectory(prefix="radiocore-turn-", dir=runtime) as private:
        path = Path(private) / "turnserver.conf"
        write_coturn_config(path, text)
        print(
            f"radiocore: running {binary} for {', '.join(config.turn.urls)} "
            f"(relay ports {config.turn.relay_min_port}-{config.turn.relay_max_port})",
            file=sys.stderr,
            flush=True,
        )
        forwarded: list[int] = []
        process: subprocess.Popen[bytes] | None = None

        def forward(signum: int, _frame: object) -> None:
            forwarded.append(signum)
            if process is not None and process.poll() is None:
                process.send_signal(signum)

        passed_on = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {signum: signal.signal(signum, forward) for signum in passed_on}
        try:
            process = subprocess.Popen([binary, "-c", str(path)], stdin=subprocess.DEVNULL)
            if forwarded:  # a signal came before the child existed
                process.send_signal(forwarded[-1])
            code = process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if code < 0:  # ended by a signal: a clean stop when it was the one passed on
        return 0 if -code in forwarded else 128 - code
    return code


def _serve(args: argparse.Namespace) -> int:
    from radiocore.logs import configure_logging
    from signaling.server import serve

    config = _load_config(args)
    configure_logging(config.log_level, config.log_format)
    return asyncio.run(serve(config))


def _worker(args: argparse.Namespace) -> int:
    import pickle

    from radiocore.logs import configure_logging
    from signaling.config import ServerConfig
    from signaling.workers import run_worker

    config = pickle.load(sys.stdin.buffer)  # from its main process, through a pipe
    if not isinstance(config, ServerConfig):
        raise SystemExit("radiocore worker: standard input did not hold a server configuration")
    configure_logging(config.log_level, config.log_format)
    return asyncio.run(run_worker(config, args.name, args.main_node, args.main_url))


async def _migrate(args: argparse.Namespace) -> int:
    import logging
    from urllib.parse import urlsplit

    from signaling.config import redact_url
    from signaling.errors import SignalingError
    from signaling.store import SQLITE_FILE_NAME, create_store

    def quiet(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("demo mode")

    config_logger = logging.getLogger("signaling.config")
    config_logger.addFilter(quiet)
    try:
        config = _load_config(args, demo=True)  # no JWT is issued here: no secret needed
    finally:
        config_logger.removeFilter(quiet)
    url = config.database_url if args.migrate_url is None else args.migrate_url
    if args.migrate_url is not None:
        try:
            has_password = urlsplit(url).password is not None
        except ValueError:
            raise _CliError("--database-url is not a URL") from None
        if has_password:
            raise _CliError(
                "--database-url must not carry a password (other users can read a command "
                "line): set RADIOCORE_DATABASE_URL instead"
            )
    try:
        store = create_store(url, config.data_dir)
        async with store:
            version = await store.schema_version()
    except SignalingError as exc:
        raise _CliError(exc.message) from None
    where = redact_url(url) if url else str(config.data_dir / SQLITE_FILE_NAME)
    print(
        json.dumps(
            {
                "database": where,
                "schema_version": version,
                "applied": list(store.applied_migrations),
            }
        )
    )
    return 0


async def _user_add(args: argparse.Namespace) -> int:
    from signaling.accounts import create_account
    from signaling.errors import SignalingError
    from signaling.store import create_store

    config = _load_config(args, demo=True)  # no JWT is issued here: no secret needed
    password = os.environ.get("RADIOCORE_PASSWORD") or getpass.getpass("Password: ")
    async with create_store(config.database_url, config.data_dir) as store:
        try:
            user = await create_account(store, args.email, password, args.callsign)
        except SignalingError as exc:
            raise _CliError(exc.message) from None
    print(json.dumps({"user_id": user.id, "email": user.email, "callsign": user.callsign}))
    return 0


async def _board_add(args: argparse.Namespace) -> int:
    from signaling.accounts import register_board
    from signaling.store import create_store

    config = _load_config(args, demo=True)
    async with create_store(config.database_url, config.data_dir) as store:
        owner = await store.get_user_by_email(args.owner)
        if owner is None:
            raise _CliError(f"no account with email {args.owner}")
        registered = await register_board(store, owner.id, args.name)
    board, secret = registered.board, registered.secret
    print(f"Board {board.name!r} registered with id {board.id}.", file=sys.stderr)
    print(
        "Its secret is printed once, below; put it in the agent's environment as "
        "RADIOCORE_AGENT_SECRET (never on a command line or in a URL).",
        file=sys.stderr,
    )
    print(json.dumps({"board_id": board.id, "secret": secret}))
    return 0


async def _board_rotate_secret(args: argparse.Namespace) -> int:
    from signaling.accounts import rotate_board_secret
    from signaling.errors import SignalingError
    from signaling.store import create_store

    config = _load_config(args, demo=True)  # no JWT is issued here: no secret needed
    target: Path | None = args.write_secret_file
    if target is not None and not target.parent.is_dir():
        raise _CliError(f"--write-secret-file {target}: its directory does not exist")
    async with create_store(config.database_url, config.data_dir) as store:
        try:
            rotated = await rotate_board_secret(store, args.board)
        except SignalingError as exc:
            raise _CliError(f"--board {args.board}: {exc.message}") from None
    board_id = rotated.board.id
    if target is not None:
        try:
            owner_kept = write_secret_file(target, rotated.secret)
        except OSError as exc:
            # the old secret is already dead: the new one must not be lost with the file
            print(json.dumps({"board_id": board_id, "secret": rotated.secret}))
            raise _CliError(
                f"the secret was rotated, but --write-secret-file {target} failed "
                f"({exc.strerror or exc}); the new secret is printed above, once"
            ) from None
        print(
            f"radiocore: board {board_id} has a new secret, written to {target} (mode 0600); "
            "the old one no longer works",
            file=sys.stderr,
        )
        if not owner_kept:
            print(
                f"radiocore: warning: {target} now belongs to this user, not to its previous "
                "owner: the agent may not be able to read it (run as root, or chown it)",
                file=sys.stderr,
            )
        print(json.dumps({"board_id": board_id, "secret_file": str(target)}))
        return 0
    print(
        f"radiocore: board {board_id} has a new secret, printed once below; the old one no "
        "longer works. Put it where the agent reads it: its secret_file (read again before "
        "every connection attempt) or RADIOCORE_AGENT_SECRET (then restart the agent).",
        file=sys.stderr,
    )
    print(json.dumps({"board_id": board_id, "secret": rotated.secret}))
    return 0


def write_secret_file(path: Path, secret: str) -> bool:
    """Write `secret` (and a newline) to `path`, mode 0600, replacing it atomically (a reader
    never sees half a secret); a file already there keeps its owner and group (the agent's
    user must still be able to read it) where this process may set them. False when it could
    not: the new file belongs to this process's user."""
    import tempfile

    previous = path.stat() if path.exists() else None
    kept = True
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            owner = None if previous is None else (previous.st_uid, previous.st_gid)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(file.fileno(), *owner)
                except PermissionError:
                    kept = False
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return kept


#: The most boards one `radiocore board provision` makes.
MAX_PROVISION_COUNT = 1000


def _console_url(config: Any) -> str:
    """The server's own address, for pairing links when no --base-url is given."""
    scheme = "https" if config.tls_cert_file else "http"
    host = "localhost" if config.host in ("", "0.0.0.0", "::") else config.host
    host = f"[{host}]" if ":" in host else host
    default = (scheme, config.port) in (("http", 80), ("https", 443))
    return f"{scheme}://{host}" + ("" if default else f":{config.port}")


async def _board_provision(args: argparse.Namespace) -> int:
    import logging

    from signaling.accounts import provision_board
    from signaling.errors import SignalingError
    from signaling.qr import pairing_link, write_qr
    from signaling.store import create_store

    if not 1 <= args.count <= MAX_PROVISION_COUNT:
        raise _CliError(f"--count must be 1 … {MAX_PROVISION_COUNT}")

    def quiet(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("demo mode")

    config_logger = logging.getLogger("signaling.config")
    config_logger.addFilter(quiet)
    try:
        config = _load_config(args, demo=True)  # no JWT is issued here: no secret needed
    finally:
        config_logger.removeFilter(quiet)
    base_url = args.base_url or _console_url(config)
    try:  # a bad --base-url is refused before any board is made
        pairing_link(base_url, "00000000-0000-4000-8000-000000000000", "code")
        args.qr_dir.mkdir(parents=True, exist_ok=True)
    except SignalingError as exc:
        raise _CliError(exc.message) from None
    except OSError as exc:
        raise _CliError(f"--qr-dir {args.qr_dir}: {exc.strerror}") from None
    if args.base_url is None:
        print(f"radiocore: the QR codes link to {base_url} (--base-url to change)", file=sys.stderr)
    async with create_store(config.database_url, config.data_dir) as store:
        for _ in range(args.count):
            provisioned = await provision_board(store)
            board_id, code = provisioned.board.id, provisioned.pairing_code
            link = pairing_link(base_url, board_id, code)
            written = {}
            for kind in ("svg", "png"):
                path = args.qr_dir / f"{board_id}.{kind}"
                write_qr(link, path)
                path.chmod(0o600)  # it carries the pairing code: until printed, for us only
                written[kind] = str(path)
            line = {"board_id": board_id, "secret": provisioned.secret, "pairing_code": code}
            line |= {"pairing_link": link, "qr_svg": written["svg"], "qr_png": written["png"]}
            print(json.dumps(line), flush=True)
    print(
        f"radiocore: {args.count} board(s) provisioned. Each secret and pairing code is printed "
        "once, above: put the secret in the board agent's environment as "
        "RADIOCORE_AGENT_SECRET, and the QR code (the pairing link, with its code) on the board.",
        file=sys.stderr,
    )
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
