"""TURN credentials in coturn's use-auth-secret format (turn/credentials.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from turn.credentials import (
    MAX_TTL_S,
    TurnCredentialError,
    TurnCredentialIssuer,
    password_for,
)

SECRET = "a-shared-turn-secret-of-enough-characters-42"


def test_the_password_is_coturns_hmac_sha1_in_base64() -> None:
    # the well-known HMAC-SHA1 example: key "key" over "The quick brown fox jumps over the lazy
    # dog" is de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9, in base64 3nybhbi3iqa8ino29wqQcBydtNk=
    assert (
        password_for("key", "The quick brown fox jumps over the lazy dog")
        == "3nybhbi3iqa8ino29wqQcBydtNk="
    )


def test_credentials_name_their_expiry_and_identity() -> None:
    issuer = TurnCredentialIssuer(SECRET, 600, clock=lambda: 1_800_000_000.7)
    creds = issuer.issue("board-7")
    assert creds.username == "1800000600:board-7"
    assert creds.expires_at == 1_800_000_600
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), creds.username.encode(), hashlib.sha1).digest()
    ).decode()
    assert creds.password == expected
    assert creds.password not in repr(creds) and SECRET not in repr(issuer)


@pytest.mark.parametrize("ttl", [0, 59, MAX_TTL_S + 1])
def test_the_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(TurnCredentialError, match="TTL"):
        TurnCredentialIssuer(SECRET, ttl)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(TurnCredentialError, match="at least 32"):
        TurnCredentialIssuer("short", 600)


@pytest.mark.parametrize("identity", ["", "has space", "colon:inside", "x" * 129, "é"])
def test_identities_that_would_corrupt_the_username_are_refused(identity: str) -> None:
    with pytest.raises(TurnCredentialError, match="identity"):
        TurnCredentialIssuer(SECRET, 600).issue(identity)
