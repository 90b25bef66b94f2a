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
    RETIRED_KEY_MESSAGE,
    JwtAuthority,
    OperatorIdentity,
    check_board_secret,
    hash_board_secret,
    hash_password,
    hash_password_async,
    key_id,
    new_board_secret,
    verify_password,
    verify_password_async,
)
from signaling.config import load_server_config, render_server_config
from signaling.errors import AuthError, ConfigError, SignalingError

# 64 bytes: long enough for HS512 too, so PyJWT signs the confusion token without a warning.
SECRET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
# keys of a rotation: the one before SECRET, and one before that
OLD_SECRET = "Zy9-Xw8_Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7zY6xW5vU4tS3rQ2pO1nM0lK"
OLDER_SECRET = "k3J-9vQ_x2Lm8Zp4Rt7Wc1Ns6Hd0Fb5Gy2Ue8Ia4Oj1Kl9Xs3Ve7Tq6Mn0Pw5Br"
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
    # naming its own key: not one of ours
    assert _refused(authority, forger.issue(ALICE)) == RETIRED_KEY_MESSAGE
    # naming ours, or none: the signature does not verify
    for headers in ({"kid": authority.kid}, {}):
        token = jwt.encode(_claims(), secrets.token_urlsafe(48), algorithm="HS256", headers=headers)
        assert "signature" in _refused(authority, token)


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


# -- signing keys: `kid` and rotation ---------------------------------------------------------


def _kid(token: str) -> object:
    return jwt.get_unverified_header(token).get("kid")


def test_tokens_name_their_key_by_a_stable_public_id(authority: JwtAuthority) -> None:
    token = authority.issue(ALICE)
    kid = _kid(token)
    assert kid == authority.kid == key_id(SECRET) == key_id(SECRET.encode())
    assert isinstance(kid, str) and re.fullmatch(r"[A-Za-z0-9_-]{11}", kid)  # 8 bytes, base64url
    # stable: the same key gives the same id in another process or after a restart
    assert (
        JwtAuthority(SECRET, previous_secrets=[OLD_SECRET]).issue(ALICE).split(".")[0]
        == (token.split(".")[0])
    )
    # another key, another id; and the id is not (a piece of) the key
    assert key_id(OLD_SECRET) != kid
    assert kid not in SECRET
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT", "kid": kid}


def test_a_previous_key_verifies_while_configured_and_not_once_removed() -> None:
    before = JwtAuthority(OLD_SECRET)  # the server before the rotation
    token = before.issue(ALICE)
    rotated = JwtAuthority(SECRET, previous_secrets=[OLD_SECRET])
    assert rotated.verify(token) == ALICE
    assert rotated.previous_kids == (key_id(OLD_SECRET),)
    # new tokens are signed with the current key only
    fresh = rotated.issue(ALICE)
    assert _kid(fresh) == key_id(SECRET)
    assert before.verify(token) == ALICE and "no longer accepts" in _refused(before, fresh)
    # the overlap is over: the old key is dropped
    after = JwtAuthority(SECRET)
    assert _refused(after, token) == RETIRED_KEY_MESSAGE
    assert after.verify(fresh) == ALICE


def test_several_previous_keys_are_each_accepted() -> None:
    rotated = JwtAuthority(SECRET, previous_secrets=[OLD_SECRET, OLDER_SECRET])
    for secret in (SECRET, OLD_SECRET, OLDER_SECRET):
        assert rotated.verify(JwtAuthority(secret).issue(ALICE)) == ALICE


def test_an_unknown_kid_is_refused(authority: JwtAuthority) -> None:
    # signed with the current key, but naming a key the server does not have
    token = jwt.encode(_claims(), SECRET, algorithm="HS256", headers={"kid": "AAAAAAAAAAA"})
    assert _refused(authority, token) == RETIRED_KEY_MESSAGE
    never_configured = JwtAuthority(secrets.token_urlsafe(48)).issue(ALICE)
    assert _refused(authority, never_configured) == RETIRED_KEY_MESSAGE


@pytest.mark.parametrize("kid", [42, None, ["x"], {"k": 1}], ids=repr)
def test_a_kid_that_is_not_a_string_is_refused(authority: JwtAuthority, kid: object) -> None:
    header = _b64url({"alg": "HS256", "typ": "JWT", "kid": kid})
    payload = _b64url(_claims())
    token = f"{header}.{payload}." + authority.issue(ALICE).split(".")[2]
    message = _refused(authority, token)
    assert re.search(r"invalid|malformed|no longer accepts|signature", message), message


def test_a_token_without_kid_is_checked_with_the_current_key_only() -> None:
    rotated = JwtAuthority(SECRET, previous_secrets=[OLD_SECRET])
    # issued before tokens carried a kid, by the current key: accepted
    legacy = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(legacy)
    assert rotated.verify(legacy) == ALICE
    # a previous key's token with its kid stripped does not get past the kid check
    stripped = jwt.encode(_claims(), OLD_SECRET, algorithm="HS256")
    assert "signature" in _refused(rotated, stripped)


def test_a_kid_pointing_at_another_key_is_refused() -> None:
    rotated = JwtAuthority(SECRET, previous_secrets=[OLD_SECRET])
    forger_key = secrets.token_urlsafe(48)
    # signed with another key, naming ours
    for kid in (key_id(SECRET), key_id(OLD_SECRET)):
        token = jwt.encode(_claims(), forger_key, algorithm="HS256", headers={"kid": kid})
        assert "signature" in _refused(rotated, token)
    # signed with key A (a previous one) but naming key B (the current one), and vice versa
    for signer, named in ((OLD_SECRET, SECRET), (SECRET, OLD_SECRET)):
        token = jwt.encode(_claims(), signer, algorithm="HS256", headers={"kid": key_id(named)})
        assert "signature" in _refused(rotated, token)
    # a genuine token whose header is rewritten to name the other key
    _header, payload, signature = JwtAuthority(OLD_SECRET).issue(ALICE).split(".")
    header = _b64url({"alg": "HS256", "typ": "JWT", "kid": key_id(SECRET)})
    assert "signature" in _refused(rotated, f"{header}.{payload}.{signature}")


def test_alg_none_with_a_valid_kid_is_refused(authority: JwtAuthority) -> None:
    token = f"{_b64url({'alg': 'none', 'typ': 'JWT', 'kid': authority.kid})}.{_b64url(_claims())}."
    assert "algorithm" in _refused(authority, token)


@pytest.mark.parametrize(
    ("previous", "needle"),
    [
        (["s" * 31], "at least 32 bytes"),
        ([OLD_SECRET, SECRET], "is the current secret"),
        ([OLD_SECRET, OLD_SECRET], "listed twice"),
    ],
)
def test_authority_refuses_bad_previous_keys(previous: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        JwtAuthority(SECRET, previous_secrets=previous)
    assert "#2" in str(info.value) or "#1" in str(info.value)
    for value in previous:
        assert value not in str(info.value)


@pytest.mark.parametrize(
    ("previous", "needle"),
    [
        ("too-short-1234", "#1 is shorter than 32 characters"),
        (f"{OLD_SECRET},change-me-to-a-random-secret-of-32-chars", "#2 is a placeholder"),
        ("ab" * 20, "#1 is not random"),
        (f"{OLD_SECRET},{SECRET}", "#2 is the current secret"),
        (f"{OLD_SECRET}\n{OLD_SECRET}", "#2 repeats an earlier one"),
    ],
)
@pytest.mark.parametrize("demo", [False, True])
def test_a_weak_previous_key_is_refused_at_config_load(
    previous: str, needle: str, demo: bool
) -> None:
    env = {"RADIOCORE_SECRET": SECRET, "RADIOCORE_PREVIOUS_SECRETS": previous}
    if demo:
        env["RADIOCORE_DEMO"] = "true"
    with pytest.raises(ConfigError) as info:
        load_server_config(env=env)
    message = str(info.value)
    assert needle in message and "previous_secrets" in message
    for value in re.split(r"[,\n]", previous):
        assert value not in message  # never echoed


@pytest.mark.parametrize(
    "value",
    [
        f"{OLD_SECRET},{OLDER_SECRET}",
        f"{OLD_SECRET}\n{OLDER_SECRET}\n",
        f" {OLD_SECRET} ,\n{OLDER_SECRET}",
    ],
    ids=["comma", "newline", "both"],
)
def test_previous_keys_from_the_environment(value: str, tmp_path: Path) -> None:
    config = load_server_config(
        env={"RADIOCORE_SECRET": SECRET, "RADIOCORE_PREVIOUS_SECRETS": value}
    )
    assert config.previous_secrets == (OLD_SECRET, OLDER_SECRET)
    authority = JwtAuthority.from_config(config)
    assert authority.kid == key_id(SECRET)
    assert authority.previous_kids == (key_id(OLD_SECRET), key_id(OLDER_SECRET))
    assert authority.verify(JwtAuthority(OLDER_SECRET).issue(ALICE)) == ALICE
    # and from the config file
    file = tmp_path / "server.toml"
    file.write_text(f'previous_secrets = ["{OLD_SECRET}", "{OLDER_SECRET}"]\n', encoding="utf-8")
    assert load_server_config(file, env={"RADIOCORE_SECRET": SECRET}) == config
    # never shown
    shown = " ".join(
        (repr(config), str(config), config.summary(), render_server_config(config), repr(authority))
    )
    assert OLD_SECRET not in shown and OLDER_SECRET not in shown
    assert "previous_secrets=<2 set>" in config.summary()


def test_the_server_logs_the_ids_of_its_keys_never_the_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_server_config(
        env={"RADIOCORE_SECRET": SECRET, "RADIOCORE_PREVIOUS_SECRETS": OLD_SECRET}
    )
    with caplog.at_level("INFO", logger="signaling.auth"):
        JwtAuthority.from_config(config)
    assert f"kid={key_id(SECRET)}; previous keys still accepted: kid={key_id(OLD_SECRET)}" in (
        caplog.text
    )
    assert SECRET not in caplog.text and OLD_SECRET not in caplog.text


def test_previous_keys_are_not_taken_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match="secret and must not be given on the command line"):
        load_server_config(
            env={"RADIOCORE_SECRET": SECRET}, overrides={"previous_secrets": OLD_SECRET}
        )


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
