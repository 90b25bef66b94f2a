"""Operators' JWTs, password hashes and board secrets (signaling/auth.py)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from pathlib import Path

import jwt
import pytest

from signaling.auth import (
    JwtAuthority,
    OperatorIdentity,
    check_board_secret,
    hash_board_secret,
    hash_password,
    hash_password_async,
    new_board_secret,
    verify_password,
    verify_password_async,
)
from signaling.config import load_server_config
from signaling.errors import AuthError, ConfigError, SignalingError

# 64 bytes: long enough for HS512 too, so PyJWT signs the confusion token without a warning.
SECRET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
ALICE = OperatorIdentity(user_id="5b0c3f4e-0d6a-4a8e-9d4c-1b1f2f0e7a11", callsign="DL1ABC")


@pytest.fixture
def authority() -> JwtAuthority:
    return JwtAuthority(SECRET)


def _b64url(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": ALICE.user_id,
        "callsign": ALICE.callsign,
        "iat": now,
        "exp": now + 3600,
        "aud": "radiocore",
    }
    claims.update(changes)
    return claims


def _refused(authority: JwtAuthority, token: str) -> str:
    with pytest.raises(AuthError) as info:
        authority.verify(token)
    assert info.value.code.value == "unauthorized"
    return info.value.message


def test_token_round_trip(authority: JwtAuthority) -> None:
    token = authority.issue(ALICE)
    assert authority.verify(token) == ALICE
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="radiocore")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 15 * 60  # short-lived: renewed by refresh tokens
    assert "iss" not in claims


def test_expired_token_is_refused(authority: JwtAuthority) -> None:
    token = authority.issue(ALICE, issued_at=time.time() - 2 * authority.ttl_s)
    assert "expired" in _refused(authority, token)


def test_ttl_is_configurable() -> None:
    short = JwtAuthority(SECRET, ttl_s=60)
    claims = jwt.decode(short.issue(ALICE), SECRET, algorithms=["HS256"], audience="radiocore")
    assert claims["exp"] - claims["iat"] == 60
    stale = short.issue(ALICE, issued_at=time.time() - 61)
    assert "expired" in _refused(short, stale)


def test_token_signed_with_another_secret_is_refused(authority: JwtAuthority) -> None:
    forger = JwtAuthority(secrets.token_urlsafe(48))
    assert "signature" in _refused(authority, forger.issue(ALICE))


def test_tampered_token_is_refused(authority: JwtAuthority) -> None:
    header, _payload, signature = authority.issue(ALICE).split(".")
    forged_payload = _b64url(_claims(callsign="W1AW"))
    assert "signature" in _refused(authority, f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_token_is_refused(authority: JwtAuthority, alg: str) -> None:
    token = f"{_b64url({'alg': alg, 'typ': 'JWT'})}.{_b64url(_claims())}."
    assert "algorithm" in _refused(authority, token)


def test_wrong_audience_is_refused(authority: JwtAuthority) -> None:
    other = JwtAuthority(SECRET, audience="another-service")
    assert "audience" in _refused(authority, other.issue(ALICE))
    # a list that contains our audience is not accepted either (strict audience)
    token = jwt.encode(_claims(aud=["radiocore", "x"]), SECRET, algorithm="HS256")
    assert "audience" in _refused(authority, token)


def test_token_signed_with_another_algorithm_is_refused(authority: JwtAuthority) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS512")
    assert "algorithm" in _refused(authority, token)


@pytest.mark.parametrize("claim", ["sub", "callsign", "iat", "exp", "aud"])
def test_token_missing_a_claim_is_refused(authority: JwtAuthority, claim: str) -> None:
    claims = _claims()
    del claims[claim]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert repr(claim) in _refused(authority, token)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"sub": 42}, "'sub'"),
        ({"sub": ""}, "'sub'"),
        ({"callsign": ["DL1ABC"]}, "'callsign'"),
        ({"callsign": "X" * 33}, "'callsign'"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"iat": int(time.time()) + 3600}, "future"),
    ],
)
def test_token_with_bad_claims_is_refused(
    authority: JwtAuthority, changes: dict[str, object], needle: str
) -> None:
    token = jwt.encode(_claims(**changes), SECRET, algorithm="HS256")
    assert needle in _refused(authority, token)


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "x" * 5000])
def test_malformed_token_is_refused(authority: JwtAuthority, token: str) -> None:
    message = _refused(authority, token)
    assert re.search(r"malformed|missing|longer|invalid", message)


def test_issuer_is_issued_and_checked() -> None:
    ours = JwtAuthority(SECRET, issuer="https://radio.example.org")
    token = ours.issue(ALICE)
    assert ours.verify(token) == ALICE
    theirs = JwtAuthority(SECRET, issuer="https://elsewhere.example.org")
    assert "issuer" in _refused(ours, theirs.issue(ALICE))
    without_iss = JwtAuthority(SECRET).issue(ALICE)
    assert "'iss'" in _refused(ours, without_iss)


@pytest.mark.parametrize(
    ("secret", "algorithm"), [("s" * 31, "HS256"), ("s" * 40, "HS384"), ("s" * 63, "HS512")]
)
def test_short_secret_is_a_config_error(secret: str, algorithm: str) -> None:
    with pytest.raises(ConfigError, match="at least"):
        JwtAuthority(secret, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256"])
def test_only_hmac_algorithms_are_supported(algorithm: str) -> None:
    with pytest.raises(ConfigError, match="not supported"):
        JwtAuthority(SECRET, algorithm=algorithm)


def test_pinned_hs512_refuses_hs256() -> None:
    strong = JwtAuthority(SECRET, algorithm="HS512")
    assert strong.verify(strong.issue(ALICE)) == ALICE
    assert "algorithm" in _refused(strong, JwtAuthority(SECRET).issue(ALICE))


def test_repr_never_shows_the_secret(authority: JwtAuthority) -> None:
    assert SECRET not in repr(authority)
    assert "HS256" in repr(authority)


def test_authority_from_config(tmp_path: Path) -> None:
    config = load_server_config(
        env={"RADIOCORE_SECRET": SECRET, "RADIOCORE_JWT_TTL_S": "120"},
        overrides={"jwt_audience": "station-7", "jwt_issuer": "rc"},
    )
    authority = JwtAuthority.from_config(config)
    assert authority.ttl_s == 120
    claims = jwt.decode(
        authority.issue(ALICE), SECRET, algorithms=["HS256"], audience="station-7", issuer="rc"
    )
    assert claims["callsign"] == "DL1ABC"


def test_identity_is_validated() -> None:
    with pytest.raises(ValueError):
        OperatorIdentity(user_id="", callsign="DL1ABC")
    with pytest.raises(ValueError):
        OperatorIdentity(user_id="u", callsign="")


# -- passwords --------------------------------------------------------------------------------


def test_password_hash_format_and_verify() -> None:
    stored = hash_password("correct horse battery staple")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)
    assert not verify_password("", stored)


def test_password_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_unknown_user_costs_a_hash_and_fails() -> None:
    assert verify_password("anything", None) is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "bcrypt$2b$12$abc",
        "scrypt$16384$8$1$!!!$AAAA",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n not a power of two
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n far too large
    ],
)
def test_damaged_password_hash_is_an_error(stored: str) -> None:
    with pytest.raises(SignalingError, match="damaged"):
        verify_password("pw", stored)


async def test_async_password_functions() -> None:
    stored = await hash_password_async("s3cret-pass")
    assert await verify_password_async("s3cret-pass", stored)
    assert not await verify_password_async("wrong", stored)
    assert not await verify_password_async("wrong", None)


# -- board secrets ----------------------------------------------------------------------------


def test_board_secret_check() -> None:
    secret = new_board_secret()
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert secret != new_board_secret()
    stored = hash_board_secret(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert secret not in stored
    assert check_board_secret(secret, stored)
    assert not check_board_secret(new_board_secret(), stored)
    assert not check_board_secret(secret[:-1], stored)
    assert not check_board_secret(secret, "")


def test_auth_error_becomes_a_refused_ack() -> None:
    error = AuthError("token has expired")
    assert error.to_ack() == {
        "ok": False,
        "error": {"code": "unauthorized", "message": "token has expired"},
    }
    assert error.http_status == 401
    assert AuthError().message == "not authenticated"
