"""The TURN allocation check: does the configured relay grant an allocation with our secret?

At start-up the server issues credentials for `PROBE_IDENTITY`, as for any peer, and makes one
TURN Allocate against the first URL of each kind it hands out (`turn:` over UDP, `turn:` over
TCP, `turns:`), all at once and each bounded by `PROBE_TIMEOUT_S`; a granted allocation is
deleted at once. A relay that does not answer, refuses the credentials (a secret that differs
from coturn's `static-auth-secret`: 401) or refuses the allocation (403, quotas, capacity) is
reported in the log, at ERROR, and in `GET /health`; the server keeps running (a direct path may
still work for most peers).

This module uses aioice's public API only (`aioice.turn.create_turn_endpoint`); besides aioice it
imports only the standard library and `turn` (the import rules allow `turn.probe` aioice).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import aioice.stun
import aioice.turn

from turn.credentials import TurnCredentialIssuer
from turn.urls import IceUrl, parse_ice_url

logger = logging.getLogger(__name__)

#: The identity the probe's credentials are issued to (it shows in coturn's log).
PROBE_IDENTITY: Final = "radiocore-health"
#: The longest one allocation attempt may take (UDP: aioice retransmits from 0.5 s).
PROBE_TIMEOUT_S: Final = 3.0
#: How long a granted allocation's deletion is waited for (it expires by itself anyway).
RELEASE_TIMEOUT_S: Final = 1.0

Transport = Literal["udp", "tcp", "tls"]

# What a person should read for a STUN error code (RFC 8656 §19, RFC 8489 §14.8).
_REFUSALS: Final = {
    401: "authentication refused (401 Unauthorized): [turn] secret differs from coturn's "
    "static-auth-secret, or the clocks differ by more than the credentials' TTL",
    403: "allocation forbidden (403 Forbidden) by coturn's policy",
    437: "allocation mismatch (437): an allocation from this address already exists",
    440: "address family not supported (440) by the relay",
    441: "wrong credentials (441)",
    442: "unsupported transport protocol (442): the relay does not relay UDP",
    486: "allocation quota reached (486): raise coturn's user-quota or total-quota",
    508: "insufficient capacity (508): the relay has no free relay port or bandwidth",
}


@dataclass(frozen=True)
class ProbeResult:
    """One URL's allocation attempt."""

    url: str
    transport: Transport
    ok: bool
    #: What happened, for a person: the relayed address, or why it failed. Never the secret.
    detail: str
    #: "host:port" ("[v6]:port") coturn relays from, when granted.
    relayed_address: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "transport": self.transport,
            "ok": self.ok,
            "detail": self.detail,
            "relayed_address": self.relayed_address,
        }


class TurnHealth:
    """The last check's outcome, as `/health` shows it (`to_json`)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.configured = bool(urls)
        self.results: tuple[ProbeResult, ...] = ()
        #: Unix time the last check finished; None until then.
        self.checked_at: float | None = None

    @property
    def ok(self) -> bool | None:
        """Every URL checked granted an allocation; None before the check finished."""
        if not self.configured or self.checked_at is None:
            return None
        return all(result.ok for result in self.results)

    def to_json(self) -> dict[str, object]:
        if not self.configured:
            return {"configured": False}
        checked_at = (
            None
            if self.checked_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.checked_at))
        )
        return {
            "configured": True,
            "ok": self.ok,
            "checked_at": checked_at,
            "checks": [result.to_json() for result in self.results],
        }

    async def check(
        self, urls: Sequence[str], issuer: TurnCredentialIssuer, timeout_s: float = PROBE_TIMEOUT_S
    ) -> tuple[ProbeResult, ...]:
        """Probe `urls` (see `probe_all`), log each outcome, and keep them."""
        results = await probe_all(urls, issuer, timeout_s)
        before = {result.url: result.ok for result in self.results}
        self.results = results
        self.checked_at = time.time()
        for result in results:
            if before.get(result.url) == result.ok:
                continue  # repeated checks log a change only
            if result.ok:
                logger.info(
                    "TURN relay at %s granted an allocation (%s)", result.url, result.detail
                )
            else:
                logger.error(
                    "TURN relay at %s: %s; peers that need the relay cannot connect (a direct "
                    "path may still work)",
                    result.url,
                    result.detail,
                )
        return results


def probe_targets(urls: Sequence[str]) -> list[tuple[str, IceUrl, Transport]]:
    """The first URL of each transport (UDP, TCP, TLS), in the configured order."""
    targets: list[tuple[str, IceUrl, Transport]] = []
    seen: set[str] = set()
    for url in urls:
        parsed = parse_ice_url(url)
        if not parsed.is_turn:
            continue
        transport: Transport
        if parsed.scheme == "turns":
            transport = "tls"
        else:
            transport = "tcp" if parsed.transport == "tcp" else "udp"
        if transport not in seen:
            seen.add(transport)
            targets.append((url, parsed, transport))
    return targets


async def probe_all(
    urls: Sequence[str], issuer: TurnCredentialIssuer, timeout_s: float = PROBE_TIMEOUT_S
) -> tuple[ProbeResult, ...]:
    """One allocation attempt per transport, concurrently: done within `timeout_s` plus the
    deletion of what was granted (at most `RELEASE_TIMEOUT_S`)."""
    creds = issuer.issue(PROBE_IDENTITY)
    probes = [
        probe_url(url, parsed, transport, creds.username, creds.password, timeout_s)
        for url, parsed, transport in probe_targets(urls)
    ]
    return tuple(await asyncio.gather(*probes))


async def probe_url(
    url: str,
    parsed: IceUrl,
    transport: Transport,
    username: str,
    password: str,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProbeResult:
    """Try one TURN Allocate at `parsed`; a granted allocation is deleted again."""

    def failed(detail: str) -> ProbeResult:
        return ProbeResult(url, transport, False, detail)

    context = ssl.create_default_context() if transport == "tls" else None
    try:
        relay, receiver = await asyncio.wait_for(
            aioice.turn.create_turn_endpoint(
                _Receiver,
                server_addr=(parsed.host, parsed.port),
                username=username,
                password=password,
                ssl=context,
                transport="udp" if transport == "udp" else "tcp",
            ),
            timeout_s,
        )
    except (TimeoutError, aioice.stun.TransactionTimeout):
        return failed(
            f"unreachable: no answer within {timeout_s:g} s (wrong host or port, coturn not "
            f"running, or {transport.upper()} blocked on the way)"
        )
    except aioice.stun.TransactionFailed as exc:
        code = exc.response.error_code
        reason = _REFUSALS.get(code or 0)
        return failed(reason or f"refused: {exc}")
    except ssl.SSLError as exc:
        why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
        return failed(f"TLS handshake failed: {why}")
    except ConnectionRefusedError:
        return failed("unreachable: connection refused (nothing listens on that port)")
    except OSError as exc:
        if exc.errno is None:  # aioice's ConnectionError: an answer without the relay address
            return failed(f"not a usable TURN answer: {exc}")
        return failed(f"unreachable: {exc.strerror or exc}")
    except Exception as exc:  # a health check reports; it never takes the server down
        logger.exception("TURN probe of %s failed unexpectedly", url)
        return failed(f"the check itself failed: {type(exc).__name__}: {exc}")
    relayed = relay.get_extra_info("sockname")
    if not relayed:
        relayed_text = "?"
    elif ":" in relayed[0]:
        relayed_text = f"[{relayed[0]}]:{relayed[1]}"
    else:
        relayed_text = f"{relayed[0]}:{relayed[1]}"
    relay.close()  # deletes the allocation; the receiver hears connection_lost after it
    try:
        await asyncio.wait_for(asyncio.shield(receiver.closed), RELEASE_TIMEOUT_S)
    except TimeoutError:
        logger.debug("TURN probe: %s did not confirm the deletion in time", url)
    return ProbeResult(
        url, transport, True, f"relayed address {relayed_text}", relayed_address=relayed_text
    )


class _Receiver(asyncio.DatagramProtocol):
    """The allocation's receiving end: the probe sends nothing; it waits for the close."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
