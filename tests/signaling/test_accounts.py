"""Provisioning: accounts and boards as every caller creates them (signaling/accounts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.accounts import MIN_PASSWORD_CHARS, create_account, register_board
from signaling.auth import check_board_secret, verify_password
from signaling.errors import BadRequestError, ConflictError
from signaling.store import SqliteStore


async def test_an_account_keeps_only_a_hash_and_refuses_short_passwords(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite3") as store:
        with pytest.raises(BadRequestError, match=f"at least {MIN_PASSWORD_CHARS}"):
            await create_account(store, "a@example.org", "short", "DL1AAA")
        assert await store.get_user_by_email("a@example.org") is None
        user = await create_account(store, "A@Example.org", "long-enough-1", "DL1AAA")
        assert user.email == "a@example.org"
        assert "long-enough-1" not in user.password_hash
        assert verify_password("long-enough-1", user.password_hash)
        with pytest.raises(ConflictError):
            await create_account(store, "a@example.org", "another-pass", "DL1BBB")


async def test_a_board_secret_is_returned_once_and_stored_as_a_hash(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite3") as store:
        owner = await create_account(store, "o@example.org", "owner-pass", "DL1OWN")
        registered = await register_board(store, owner.id, "Home")
        stored = await store.get_board(registered.board.id)
        assert stored is not None and stored.owner_id == owner.id
        assert registered.secret not in stored.secret_hash
        assert check_board_secret(registered.secret, stored.secret_hash)
        assert len(registered.secret) == 43  # 256 bits, URL-safe base64 (docs/protocol.md)
        assert registered.secret not in repr(registered)
