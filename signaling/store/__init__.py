"""Persistent accounts, boards, grants and the TX audit log (see `interface`).

- `interface`: the `Store` interface and the values it returns;
- `sqlite`: `SqliteStore`, the embedded default (one file, WAL);
- `create_store()`: the store a `database_url` names.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from signaling.errors import ConfigError
from signaling.store.interface import (
    RIGHTS,
    Board,
    Right,
    Store,
    TxSession,
    User,
    canonical_board_id,
    normalize_email,
)
from signaling.store.sqlite import SQLITE_FILE_NAME, SqliteStore

__all__ = [
    "RIGHTS",
    "SQLITE_FILE_NAME",
    "Board",
    "Right",
    "SqliteStore",
    "Store",
    "TxSession",
    "User",
    "canonical_board_id",
    "create_store",
    "normalize_email",
]


def create_store(database_url: str, data_dir: Path) -> Store:
    """The store `database_url` names (see `ServerConfig.database_url`), not yet opened."""
    if not database_url:
        return SqliteStore(data_dir / SQLITE_FILE_NAME)
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells it
        path = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not path:
            raise ConfigError("database_url sqlite:/// needs a file path")
        return SqliteStore(Path(path))
    if parts.scheme in ("postgres", "postgresql"):
        raise ConfigError("the PostgreSQL store is not available yet; use SQLite")
    raise ConfigError(f"database_url scheme {parts.scheme!r} is not supported")
