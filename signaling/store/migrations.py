"""The schema, as one ordered list of versioned migrations, each in SQLite's and PostgreSQL's SQL.

Both stores apply the migrations a database lacks when they open (and `radiocore migrate` does
only that), each in its own transaction, recording it in `schema_version` (one row per applied
version). A database at a version this list does not reach is refused: it was migrated by a
newer RadioCore, and this one could damage it.

Rules for a new migration: append it with the next version; never edit one that has shipped
(databases in the field already ran it); write both dialects so the contract tests pass on
both; SQLite cannot alter a column, so a change there rebuilds the table (the runner turns
foreign keys off around migrations and checks them before committing).

Versions 1 and 2 are the schema SQLite databases had before this list existed (they carried
their version in `PRAGMA user_version`): written with IF NOT EXISTS, they adopt such a file as
it is. SQLite still mirrors the version in `user_version`, so a RadioCore from before this list
refuses a database migrated past version 2 instead of misreading it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from signaling.errors import SignalingError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: str
    postgres: str


MIGRATIONS: Final = (
    Migration(
        1,
        "accounts, boards and grants",
        sqlite="""
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    callsign TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS boards (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    location TEXT,
    public INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    last_seen TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS boards_owner ON boards (owner_id);
CREATE TABLE IF NOT EXISTS grants (
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    right TEXT NOT NULL CHECK (right IN ('listen', 'transmit')),
    PRIMARY KEY (board_id, user_id)
);
CREATE INDEX IF NOT EXISTS grants_user ON grants (user_id);
""",
        postgres="""
CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    callsign text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE boards (
    id text PRIMARY KEY,
    owner_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    secret_hash text NOT NULL,
    location text,
    public boolean NOT NULL DEFAULT false,
    last_seen timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX boards_owner ON boards (owner_id);
CREATE TABLE grants (
    board_id text NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    "right" text NOT NULL CHECK ("right" IN ('listen', 'transmit')),
    PRIMARY KEY (board_id, user_id)
);
CREATE INDEX grants_user ON grants (user_id);
""",
    ),
    Migration(
        2,
        "the TX audit log",
        sqlite="""
CREATE TABLE IF NOT EXISTS tx_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    callsign TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS tx_sessions_board ON tx_sessions (board_id, started_at);
""",
        postgres="""
CREATE TABLE tx_sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    board_id text NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    callsign text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    reason text
);
CREATE INDEX tx_sessions_board ON tx_sessions (board_id, started_at);
""",
    ),
    Migration(
        3,
        "pairing, station sharing (locator, bands, price), bookings, blocks, refresh tokens, "
        "subscriptions",
        # SQLite: boards is rebuilt (owner_id becomes nullable); timestamps are ISO 8601 text in
        # UTC with microseconds, so text order is time order and the overlap trigger compares
        # them as text. Writes that check the trigger run in BEGIN IMMEDIATE transactions.
        sqlite="""
CREATE TABLE boards_v3 (
    id TEXT PRIMARY KEY,
    owner_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    locator TEXT,
    bands TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(bands) AND json_type(bands) = 'array'),
    public INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    price_eur TEXT,
    pairing_code_hash TEXT,
    paired_at TEXT,
    last_seen TEXT,
    created_at TEXT NOT NULL,
    CHECK (owner_id IS NULL OR pairing_code_hash IS NULL),
    CHECK ((owner_id IS NULL) = (paired_at IS NULL))
);
INSERT INTO boards_v3 (id, owner_id, name, secret_hash, locator, public, paired_at, last_seen,
                       created_at)
    SELECT id, owner_id, name, secret_hash, location, public, created_at, last_seen, created_at
    FROM boards;
DROP TABLE boards;
ALTER TABLE boards_v3 RENAME TO boards;
CREATE INDEX boards_owner ON boards (owner_id);
CREATE INDEX boards_public ON boards (locator) WHERE public = 1;
CREATE TABLE blocks (
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (board_id, user_id)
);
CREATE INDEX blocks_user ON blocks (user_id);
CREATE TABLE bookings (
    id TEXT PRIMARY KEY,
    board_id TEXT NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    price_eur TEXT,
    created_at TEXT NOT NULL,
    cancelled_at TEXT,
    CHECK (ends_at > starts_at)
);
CREATE INDEX bookings_board ON bookings (board_id, starts_at);
CREATE INDEX bookings_user ON bookings (user_id, starts_at);
CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings
WHEN NEW.cancelled_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings
        WHERE board_id = NEW.board_id AND cancelled_at IS NULL
          AND starts_at < NEW.ends_at AND NEW.starts_at < ends_at
    );
END;
CREATE TRIGGER bookings_no_overlap_update
BEFORE UPDATE OF board_id, starts_at, ends_at, cancelled_at ON bookings
WHEN NEW.cancelled_at IS NULL
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings
        WHERE board_id = NEW.board_id AND cancelled_at IS NULL AND id <> NEW.id
          AND starts_at < NEW.ends_at AND NEW.starts_at < ends_at
    );
END;
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    parent_id TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_reason TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE subscriptions (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'expired')),
    expires_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX tx_sessions_user ON tx_sessions (user_id);
""",
        # PostgreSQL: the database refuses overlapping active bookings of a board with an
        # exclusion constraint over tstzrange (btree_gist gives `=` on text a GiST operator
        # class; it is a trusted extension: the database's owner may create it).
        postgres="""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE boards RENAME COLUMN location TO locator;
ALTER TABLE boards ALTER COLUMN owner_id DROP NOT NULL;
ALTER TABLE boards
    ADD COLUMN bands text[] NOT NULL DEFAULT '{}',
    ADD COLUMN price_eur numeric(10, 2) CHECK (price_eur >= 0),
    ADD COLUMN pairing_code_hash text,
    ADD COLUMN paired_at timestamptz;
UPDATE boards SET paired_at = created_at;
ALTER TABLE boards
    ADD CONSTRAINT boards_owned_boards_have_no_code
        CHECK (owner_id IS NULL OR pairing_code_hash IS NULL),
    ADD CONSTRAINT boards_paired_when_owned CHECK ((owner_id IS NULL) = (paired_at IS NULL));
CREATE INDEX boards_public ON boards (locator text_pattern_ops) WHERE public;
CREATE TABLE blocks (
    board_id text NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (board_id, user_id)
);
CREATE INDEX blocks_user ON blocks (user_id);
CREATE TABLE bookings (
    id text PRIMARY KEY,
    board_id text NOT NULL REFERENCES boards (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    price_eur numeric(10, 2),
    created_at timestamptz NOT NULL,
    cancelled_at timestamptz,
    CONSTRAINT bookings_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        board_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (cancelled_at IS NULL)
);
CREATE INDEX bookings_user ON bookings (user_id, starts_at);
CREATE TABLE refresh_tokens (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    family_id text NOT NULL,
    parent_id text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE subscriptions (
    user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'cancelled', 'expired')),
    expires_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX tx_sessions_user ON tx_sessions (user_id);
""",
    ),
)

#: The version this code brings a database to.
LATEST_VERSION: Final = MIGRATIONS[-1].version

#: `schema_version`: one row per applied migration (the same in both dialects but for types).
SCHEMA_VERSION_TABLE_SQLITE: Final = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""
SCHEMA_VERSION_TABLE_POSTGRES: Final = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL
)"""


def pending(current: int, where: str) -> tuple[Migration, ...]:
    """The migrations a database at `current` lacks; a clear error if it is newer than us."""
    if current > LATEST_VERSION:
        raise SignalingError(
            f"{where} has schema version {current}, newer than this RadioCore's "
            f"{LATEST_VERSION}: it was migrated by a newer release; run that release (or "
            "restore a backup). Nothing was changed."
        )
    return tuple(m for m in MIGRATIONS if m.version > current)


def sqlite_statements(script: str) -> list[str]:
    """`script` split into complete statements (a trigger's body stays in one piece)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buffer.strip()[:80]!r}")
    return statements


def _check_list() -> None:
    versions = [m.version for m in MIGRATIONS]
    if versions != list(range(1, len(versions) + 1)):
        raise AssertionError(f"migrations must be numbered 1, 2, 3 … in order: {versions}")


_check_list()
