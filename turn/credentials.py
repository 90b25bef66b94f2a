"""Time-limited TURN credentials, as coturn checks them with `use-auth-secret`.

The username is `"<expiry unix time>:<identity>"` and the password is
`base64(HMAC-SHA1(secret, username))` (the "TURN REST API" scheme coturn implements): coturn
recomputes the password from the shared secret and refuses an expired username, so the server
hands out credentials without telling coturn anything, and a leaked pair stops working at its
expiry. The secret itself never leaves the server and is never logged.

A relay allocation made before the expiry is kept by coturn as long as the client refreshes
it: a session outlives its credentials; only new allocations need fresh ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

#: The longest a credential may be valid: a day, like the operators' tokens.
MAX_TTL_S: Final = 86_400
#: The shortest TTL accepted (a client needs time to use what it was given).
MIN_TTL_S: Final = 60
#: The shortest shared secret accepted (coturn accepts anything; a guessable one lets anyone
#: relay through the deployment's bandwidth).
MIN_SECRET_CHARS: Final = 32
#: What an identity may contain: it becomes part of a username coturn logs.
_IDENTITY = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


class TurnCredentialError(ValueError):
    """An unusable secret, TTL or identity."""


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    password: str = field(repr=False)
    #: Unix time after which coturn refuses new allocations with them.
    expires_at: int


def password_for(secret: str, username: str) -> str:
    """coturn's password for `username`: base64 of HMAC-SHA1 keyed with the shared secret."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TurnCredentialIssuer:
    """Issues credentials valid for `ttl_s` (at most `MAX_TTL_S`) for one shared secret."""

    __slots__ = ("_clock", "_secret", "ttl_s")

    def __init__(self, secret: str, ttl_s: int, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise TurnCredentialError(
                f"the TURN secret must have at least {MIN_SECRET_CHARS} characters"
            )
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise TurnCredentialError(
                f"the TURN credential TTL must be {MIN_TTL_S} … {MAX_TTL_S} s, not {ttl_s}"
            )
        self._secret = secret
        self._clock = clock
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"TurnCredentialIssuer(ttl_s={self.ttl_s})"

    def issue(self, identity: str) -> TurnCredentials:
        """Credentials for `identity` (a user or board id: it shows in coturn's log)."""
        if not _IDENTITY.match(identity):
            raise TurnCredentialError("a TURN identity is 1 … 128 of A-Z a-z 0-9 . _ @ + -")
        expires_at = int(self._clock()) + self.ttl_s
        username = f"{expires_at}:{identity}"
        return TurnCredentials(username, password_for(self._secret, username), expires_at)
