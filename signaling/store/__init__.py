"""Persistent accounts, boards, pairing, grants, blocks, bookings, refresh tokens, subscriptions
and the TX audit log (see `interface`).

- `interface`: the `Store` interface and the values it returns;
- `migrations`: the schema, one ordered list of versioned migrations for both databases;
- `sqlite`: `SqliteStore`, the embedded default (one file, WAL);
- `postgres`: `PostgresStore`, PostgreSQL through asyncpg (imported only when named);
- `create_store()`: the store a `database_url` names.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from signaling.errors import ConfigError
from signaling.store.interface import (
    BANDS,
    RIGHTS,
    UNSET,
    Board,
    Booking,
    RefreshToken,
    Right,
    Store,
    Subscription,
    TxSession,
    User,
    canonical_board_id,
    normalize_email,
)
from signaling.store.migrations import LATEST_VERSION
from signaling.store.sqlite import SQLITE_FILE_NAME, SqliteStore

__all__ = [
    "BANDS",
    "LATEST_VERSION",
    "RIGHTS",
    "SQLITE_FILE_NAME",
    "UNSET",
    "Board",
    "Booking",
    "RefreshToken",
    "Right",
    "SqliteStore",
    "Store",
    "Subscription",
    "TxSession",
    "User",
    "canonical_board_id",
    "create_store",
    "normalize_email",
]

#: `database_url` schemes and the store each names.
POSTGRES_SCHEMES = ("postgres", "postgresql")


def create_store(database_url: str, data_dir: Path) -> Store:
    """The store `database_url` names (see `ServerConfig.database_url`), not yet opened:

    - empty: SQLite in `data_dir/radiocore.sqlite3`;
    - `sqlite:///relative/path` or `sqlite:////absolute/path` (as SQLAlchemy spells it);
    - `postgresql://USER:PASSWORD@HOST:PORT/DB`, `postgres://…`, or over a Unix socket
      `postgresql://USER@/DB?host=/run/postgresql`.
    """
    if not database_url:
        return SqliteStore(data_dir / SQLITE_FILE_NAME)
    try:
        parts = urlsplit(database_url)
    except ValueError:
        raise ConfigError("database_url is not a URL") from None
    if parts.scheme == "sqlite":
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not path:
            raise ConfigError("database_url sqlite:/// needs a file path")
        return SqliteStore(Path(path))
    if parts.scheme in POSTGRES_SCHEMES:
        from signaling.store.postgres import PostgresStore

        return PostgresStore(database_url)
    raise ConfigError(f"database_url scheme {parts.scheme!r} is not supported")
