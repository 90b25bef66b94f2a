"""Credentials: operators' JWTs, password hashes and board secrets.

- `JwtAuthority` issues and verifies operators' tokens (HS256 by default; decoding accepts
  exactly the configured algorithm, so `alg: none` and algorithm-confusion tokens are refused).
  Its signing key is rotatable: each token names its key in the `kid` header (`key_id`, a hash,
  never the key), and previous keys stay accepted for verification while they are configured
  (`previous_secrets`), so changing the key signs nobody out.
- `OperatorIdentity` is who a verified token speaks for; room admission checks it.
- Passwords are hashed with scrypt (standard library); the `*_async` functions run the hashing
  in a worker thread so the event loop keeps forwarding audio meanwhile.
- Board secrets and refresh tokens are random 256-bit strings, stored only as their SHA-256.

Nothing here logs or repeats a secret, a token or a password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import jwt

from radiocore_protocol import MAX_TOKEN_CHARS
from signaling.errors import AuthError, ConfigError, SignalingError

if TYPE_CHECKING:
    from signaling.config import ServerConfig

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHM: Final = "HS256"
DEFAULT_AUDIENCE: Final = "radiocore"
#: Access tokens are short-lived: a stolen one is good for minutes; the console renews its own
#: with its refresh token (`POST /api/auth/refresh`) before it runs out.
DEFAULT_TTL_S: Final = 15 * 60
#: A sign-in lasts this long without the password, if it is used (each refresh starts it again).
DEFAULT_REFRESH_TTL_S: Final = 30 * 24 * 3600
# HMAC algorithms only: the server both issues and checks its tokens, so one shared key serves.
# Minimum key sizes from RFC 7518 §3.2: at least as long as the hash output.
_HMAC_KEY_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
_REQUIRED_CLAIMS: Final = ("sub", "callsign", "iat", "exp", "aud")
MAX_CALLSIGN_CHARS: Final = 32
#: Prefixed to a key before hashing it into its `kid`, so the id is not the bare SHA-256 of the
#: key, a value that could be used elsewhere.
_KID_DOMAIN: Final = b"radiocore-jwt-kid\0"
_KID_BYTES: Final = 8
#: What a token signed with a key the server no longer has hears (a rotated-out key).
RETIRED_KEY_MESSAGE: Final = (
    "token was signed with a key this server no longer accepts; sign in again"
)


def key_id(secret: str | bytes) -> str:
    """The public id (`kid`) of a signing key: the first 8 bytes of SHA-256 over a fixed prefix
    and the key, base64url without padding (11 characters). Reveals nothing usable about the key
    (the key is 256+ random bits); names it in tokens and in the start-up log."""
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    digest = hashlib.sha256(_KID_DOMAIN + key).digest()[:_KID_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OperatorIdentity:
    """An authenticated operator: the one value that carries identity (and, later, rights).

    Room admission decides from this value; per-board grants (listen / transmit / control) will
    be added here as fields, so every check keeps reading one place.
    """

    user_id: str
    callsign: str

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("user_id must not be empty")
        if not self.callsign or len(self.callsign) > MAX_CALLSIGN_CHARS:
            raise ValueError(f"callsign must have 1 … {MAX_CALLSIGN_CHARS} characters")


class JwtAuthority:
    """Issues and verifies operators' JWTs with a shared HMAC key, rotatable.

    Tokens are signed with the current key (`secret`) and carry its id in the `kid` header.
    Verification picks the key by `kid`: the current one or one of `previous_secrets` (a key
    rotated out, kept for at least one token lifetime so tokens signed with it run out
    naturally); an unknown `kid` is refused, and a token without one (issued before keys had
    ids) is checked against the current key only.
    """

    __slots__ = (
        "_algorithm",
        "_audience",
        "_issuer",
        "_key",
        "_keys",
        "_kid",
        "_leeway_s",
        "_ttl_s",
    )

    def __init__(
        self,
        secret: str | bytes,
        *,
        previous_secrets: Sequence[str | bytes] = (),
        algorithm: str = DEFAULT_ALGORITHM,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        leeway_s: float = 0.0,
    ) -> None:
        minimum = _HMAC_KEY_BYTES.get(algorithm)
        if minimum is None:
            raise ConfigError(
                f"JWT algorithm {algorithm!r} is not supported; use one of "
                f"{', '.join(_HMAC_KEY_BYTES)}"
            )
        key = _key_bytes(secret, minimum, algorithm, "the JWT secret")
        kid = key_id(key)
        keys = {kid: key}
        for number, previous in enumerate(previous_secrets, start=1):
            old = _key_bytes(previous, minimum, algorithm, f"previous JWT secret #{number}")
            old_kid = key_id(old)
            if old_kid == kid:
                raise ConfigError(
                    f"previous JWT secret #{number} is the current secret: put the new key in "
                    "the secret, the old one in previous_secrets"
                )
            if old_kid in keys:
                raise ConfigError(f"previous JWT secret #{number} is listed twice")
            keys[old_kid] = old
        if not audience:
            raise ConfigError("the JWT audience must not be empty")
        if ttl_s <= 0:
            raise ConfigError(f"the JWT lifetime must be positive, not {ttl_s} s")
        if leeway_s < 0:
            raise ConfigError(f"the JWT leeway must not be negative, not {leeway_s} s")
        self._key = key
        self._kid = kid
        self._keys: Mapping[str, bytes] = keys
        self._algorithm = algorithm
        self._audience = audience
        self._issuer = issuer or None
        self._ttl_s = ttl_s
        self._leeway_s = leeway_s

    @classmethod
    def from_config(cls, config: ServerConfig) -> JwtAuthority:
        """The server's authority; logs the ids (never the keys) of the keys it signs and
        accepts, so an operator rotating keys sees which are in use."""
        authority = cls(
            config.secret,
            previous_secrets=config.previous_secrets,
            audience=config.jwt_audience,
            issuer=config.jwt_issuer or None,
            ttl_s=config.jwt_ttl_s,
            leeway_s=config.jwt_leeway_s,
        )
        logger.info(
            "JWT signing key kid=%s; previous keys still accepted: %s",
            authority.kid,
            ", ".join(f"kid={kid}" for kid in authority.previous_kids) or "none",
        )
        return authority

    @property
    def ttl_s(self) -> int:
        """Lifetime of the tokens this authority issues (the REST `expires_in`)."""
        return self._ttl_s

    @property
    def kid(self) -> str:
        """The id of the key new tokens are signed with."""
        return self._kid

    @property
    def previous_kids(self) -> tuple[str, ...]:
        """The ids of the previous keys still accepted for verification, in configured order."""
        return tuple(kid for kid in self._keys if kid != self._kid)

    def __repr__(self) -> str:
        return (
            f"JwtAuthority(algorithm={self._algorithm!r}, audience={self._audience!r}, "
            f"issuer={self._issuer!r}, ttl_s={self._ttl_s}, kid={self._kid!r}, "
            f"previous_kids={self.previous_kids!r})"
        )

    def issue(self, identity: OperatorIdentity, *, issued_at: float | None = None) -> str:
        """A signed token for `identity`, valid for `ttl_s` from `issued_at` (default: now)."""
        iat = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, object] = {
            "sub": identity.user_id,
            "callsign": identity.callsign,
            "iat": iat,
            "exp": iat + self._ttl_s,
            "aud": self._audience,
        }
        if self._issuer is not None:
            claims["iss"] = self._issuer
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers={"kid": self._kid})

    def verify(self, token: str) -> OperatorIdentity:
        """The identity `token` speaks for; raises `AuthError` saying why it is refused."""
        if not isinstance(token, str) or not token:
            raise AuthError("missing token")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError(f"token is longer than {MAX_TOKEN_CHARS} characters")
        required = [*_REQUIRED_CLAIMS, "iss"] if self._issuer is not None else _REQUIRED_CLAIMS
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                # exactly one algorithm: "none" and tokens signed any other way are refused
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                # `sub` is checked below, with a clearer message than PyJWT's
                options={"require": list(required), "strict_aud": True, "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token is from another issuer") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(f"token algorithm is not accepted (only {self._algorithm})") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is issued in the future") from None
        except jwt.InvalidIssuedAtError:
            raise AuthError("token has an invalid 'iat' claim") from None
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid token") from None
        user_id = claims["sub"]
        callsign = claims["callsign"]
        if not isinstance(user_id, str) or not user_id:
            raise AuthError("token 'sub' claim must be a non-empty string")
        if not isinstance(callsign, str) or not callsign or len(callsign) > MAX_CALLSIGN_CHARS:
            raise AuthError(
                f"token 'callsign' claim must be a string of 1 … {MAX_CALLSIGN_CHARS} characters"
            )
        return OperatorIdentity(user_id=user_id, callsign=callsign)

    def _key_for(self, token: str) -> bytes:
        """The key `token` must verify with, chosen by its `kid` (unverified: a `kid` that
        names another of our keys than the one that signed it fails the signature check)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.InvalidTokenError:  # e.g. a `kid` that is not a string
            raise AuthError("invalid token") from None
        kid = header.get("kid")
        if kid is None:
            # issued before keys had ids: the current key only, so a token of a rotated-out
            # key cannot slip past the `kid` check by dropping it
            return self._key
        key = self._keys.get(kid)
        if key is None:
            raise AuthError(RETIRED_KEY_MESSAGE)
        return key


def _key_bytes(secret: str | bytes, minimum: int, algorithm: str, name: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < minimum:
        raise ConfigError(f"{name} must be at least {minimum} bytes for {algorithm}")
    return key


# ---------------------------------------------------------------------------------------------
# Passwords

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 32
# Bounds on the parameters read back from a stored hash, so a damaged or tampered row cannot
# make one login allocate gigabytes or run for minutes; they leave room to raise the cost later.
_MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024
_MAX_SCRYPT_P: Final = 4


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) for `password`, with a fresh random salt.

    CPU-bound (~50 ms): from async code, call `hash_password_async`.
    """
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, _HASH_BYTES)
    return "$".join(
        ("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, stored_hash: str | None) -> bool:
    """Whether `password` matches `stored_hash`, compared in constant time.

    `stored_hash=None` (no such user) still costs one hash computation and returns False, so a
    login cannot tell unknown emails from wrong passwords by its timing. A stored hash that is
    not in our format raises `SignalingError` (the database is damaged; nothing matches).
    """
    if stored_hash is None:
        _scrypt(password, b"\0" * _SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, _HASH_BYTES)
        return False
    n, r, p, salt, expected = _parse_password_hash(stored_hash)
    actual = _scrypt(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)


async def hash_password_async(password: str) -> str:
    """`hash_password` in a worker thread."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored_hash: str | None) -> bool:
    """`verify_password` in a worker thread."""
    return await asyncio.to_thread(verify_password, password, stored_hash)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL refuses to run when its estimate, 128·r·(n + p + 2) bytes, exceeds `maxmem`
    # (default 32 MiB); pass what these parameters need, with a margin.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def _parse_password_hash(stored_hash: str) -> tuple[int, int, int, bytes, bytes]:
    damaged = SignalingError("a stored password hash is damaged")
    parts = stored_hash.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise damaged
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise damaged from None
    n_is_power_of_two = n > 1 and n & (n - 1) == 0
    if not (
        n_is_power_of_two
        and r >= 1
        and 128 * n * r <= _MAX_SCRYPT_MEMORY
        and 1 <= p <= _MAX_SCRYPT_P
        and salt
        and 16 <= len(digest) <= 64
    ):
        raise damaged
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Board secrets

_BOARD_SECRET_BYTES: Final = 32


def new_board_secret() -> str:
    """A fresh board secret (256 random bits, URL-safe text), shown once at pairing."""
    return secrets.token_urlsafe(_BOARD_SECRET_BYTES)


def hash_board_secret(secret: str) -> str:
    """The stored form of a board secret: SHA-256, hex.

    A plain fast hash is enough here, unlike for passwords: the secret is 256 random bits that
    we generated, so there is no dictionary to try and brute force is out of reach; a slow KDF
    would only slow every agent connection down.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def check_board_secret(secret: str, stored_hash: str) -> bool:
    """Whether `secret` is the one `stored_hash` was made from, compared in constant time."""
    return hmac.compare_digest(hash_board_secret(secret).encode(), stored_hash.encode())


# ---------------------------------------------------------------------------------------------
# Refresh tokens

_REFRESH_TOKEN_BYTES: Final = 32
#: Longer than any token this server issues (43 characters); a longer one is refused unread.
MAX_REFRESH_TOKEN_CHARS: Final = 128


def new_refresh_token() -> str:
    """A fresh refresh token (256 random bits, URL-safe text), given to its holder once."""
    return secrets.token_urlsafe(_REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token: SHA-256, hex (random 256 bits: no need for a slow
    hash, see `hash_board_secret`)."""
    return hashlib.sha256(token.encode()).hexdigest()
