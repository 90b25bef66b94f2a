"""coturn with the rendered (hardened, nothing allowed) configuration relays to public peers and
refuses every internal one, over IPv4 and IPv6.

Meant to run as root inside a private network namespace that has only loopback, so no packet
can leave the machine:

    unshare -n python tests/turn/relay_check.py

On loopback a relay's own address is internal, so this gives `lo` two addresses no denied range
covers (`PUBLIC_V4`, `PUBLIC_V6`: public space, reachable only inside this namespace) and makes
them coturn's relay addresses: two allocations then relay to each other as two peers on the
Internet would, with no `allowed-peer-ip` involved. Each allocation then asks to relay to every
internal address of `tests.turn.generated.INTERNAL` of its family; coturn answers each with a
STUN error (403 Forbidden IP) or, were it admitted, not at all.

The configuration is `radiocore turn config`'s, plus one line for the IPv6 half:
`allocation-default-address-family=keep` (coturn otherwise gives a client on IPv6 an IPv4 relay,
which this namespace has none of for it).

Prints one JSON line: {"ok": true, "ipv4": {...}, "ipv6": {...}} with, per family, the relayed
addresses, what each side received from the other and the answer to each internal address;
`ok` false and `failure` when it stopped early.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aioice.stun
import aioice.turn

from tests.support.coturn import TURNSERVER
from tests.turn.generated import INTERNAL, GeneratedCoturn, wait_listening
from turn.coturn_config import render_coturn_config, write_coturn_config
from turn.credentials import TurnCredentialIssuer

PUBLIC_V4: Final = "11.0.0.1"
PUBLIC_V6: Final = "2a00:1::1"
RUN_BOUND_S: Final = 60.0


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.errors: list[Exception] = []
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def until(predicate: Any, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):  # bounded
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def family_check(coturn: GeneratedCoturn, server: str, version: int) -> dict[str, Any]:
    issuer = TurnCredentialIssuer(coturn.secret, 600)
    sides = []
    for identity in ("east", "west"):
        creds = issuer.issue(identity)
        sides.append(
            await aioice.turn.create_turn_endpoint(
                Peer, (server, coturn.port), username=creds.username, password=creds.password
            )
        )
    (east, east_peer), (west, west_peer) = sides
    try:
        east_address = east.get_extra_info("sockname")
        west_address = west.get_extra_info("sockname")
        for _ in range(20):  # bounded: each side must permit the other first
            east.sendto(b"from-east", west_address)
            west.sendto(b"from-west", east_address)
            if await until(lambda: east_peer.received and west_peer.received, 0.5):
                break
        answers: dict[str, int | str | None] = {}
        for address in INTERNAL:
            if ipaddress.ip_address(address).version != version:
                continue
            before = len(east_peer.errors)
            east.sendto(b"probe", (address, 9))
            if await until(lambda before=before: len(east_peer.errors) > before, 3):
                error = east_peer.errors[-1]
                answers[address] = (
                    error.response.error_code
                    if isinstance(error, aioice.stun.TransactionFailed)
                    else repr(error)
                )
            else:
                answers[address] = None  # admitted: coturn bound a channel and relayed
        return {
            "relayed": [list(east_address), list(west_address)],
            "east_received": sorted({d.decode() for d in east_peer.received}),
            "west_received": sorted({d.decode() for d in west_peer.received}),
            "internal": answers,
        }
    finally:
        for relay, peer in sides:
            relay.close()
            await asyncio.wait_for(peer.closed, 5)


def start(workdir: Path) -> GeneratedCoturn:
    coturn = GeneratedCoturn(workdir)
    coturn.settings = dataclasses.replace(
        coturn.settings, listening_ips=("127.0.0.1", "::1"), relay_ips=(PUBLIC_V4, PUBLIC_V6)
    )
    text = render_coturn_config(coturn.settings) + "allocation-default-address-family=keep\n"
    write_coturn_config(coturn.config_file, text)
    with (workdir / "coturn.out").open("wb") as output:
        coturn.process = subprocess.Popen(
            [TURNSERVER, "-c", str(coturn.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_listening(coturn.port, coturn.process, coturn.log)
    return coturn


async def checks(coturn: GeneratedCoturn) -> dict[str, Any]:
    return {
        "ok": True,
        "ipv4": await family_check(coturn, "127.0.0.1", 4),
        "ipv6": await family_check(coturn, "::1", 6),
    }


def main(workdir: Path) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PUBLIC_V4}/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PUBLIC_V6}/128", "dev", "lo", "nodad"], check=True)
    coturn = start(workdir)
    try:
        return asyncio.run(asyncio.wait_for(checks(coturn), RUN_BOUND_S))
    finally:
        coturn.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="relay-check-") as directory:
        try:
            report = main(Path(directory))
        except Exception:
            log = Path(directory) / "coturn.log"
            report = {
                "ok": False,
                "failure": traceback.format_exc(),
                "coturn_log": log.read_text(errors="replace")[-3000:] if log.exists() else "",
            }
        print(json.dumps(report))
