"""Which STUN/TURN servers each peer is given, with TURN credentials issued for it.

Operators and agents get the STUN URLs and, when a relay is configured, one TURN entry with all
the TURN URLs in the configured order and a username/password valid for `turn.ttl_s` (coturn's
use-auth-secret; see `turn.credentials`): aiortc peers (the agent) use the first STUN and the
first TURN URL, browsers try them all. The SFU's own connections get the STUN URLs, and the relay
only with `turn.sfu_relay` (a server that cannot receive UDP directly): otherwise every
connection would hold a second allocation on coturn for nothing.
"""

from __future__ import annotations

import logging

import radiocore_protocol as protocol
from media.config import IceServerSpec
from signaling.config import ServerConfig
from turn.credentials import TurnCredentialIssuer

logger = logging.getLogger(__name__)

#: The identity the SFU's own TURN credentials are issued to.
SFU_IDENTITY = "radiocore-sfu"


class IcePlan:
    """The ICE servers and transport policy of the deployment; credentials per peer."""

    def __init__(self, config: ServerConfig) -> None:
        self._stun = tuple(config.ice.servers)
        self._turn = tuple(config.turn.urls)
        self._issuer = (
            TurnCredentialIssuer(config.turn.secret, config.turn.ttl_s) if self._turn else None
        )
        self._sfu_relay = config.turn.sfu_relay
        self.policy: protocol.IceTransportPolicy = (
            "relay" if config.ice.transport_policy == "relay" else "all"
        )
        if self._turn:
            logger.info(
                "TURN relay for peers: %s (credentials valid %d s); policy %s",
                ", ".join(self._turn),
                config.turn.ttl_s,
                self.policy,
            )

    def for_peer(self, identity: str) -> list[protocol.IceServer]:
        """The list one operator or agent is given (TURN credentials issued for `identity`)."""
        servers = [protocol.IceServer(urls=[url]) for url in self._stun]
        if self._issuer is not None:
            creds = self._issuer.issue(identity)
            servers.append(
                protocol.IceServer(
                    urls=list(self._turn), username=creds.username, credential=creds.password
                )
            )
        return servers

    def for_sfu(self) -> tuple[IceServerSpec, ...]:
        """The list of one of the SFU's own peer connections."""
        specs = [IceServerSpec(urls=(url,)) for url in self._stun]
        if self._issuer is not None and self._sfu_relay:
            creds = self._issuer.issue(SFU_IDENTITY)
            specs.append(IceServerSpec(self._turn, creds.username, creds.password))
        return tuple(specs)
