"""Logging set-up for every RadioCore process (server, agent, demo): one format, one place.

Two formats: `text`, one readable line per message, and `json`, one JSON object per line for a
log collector: `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, and the
context a log call passes in `extra` (`CONTEXT_FIELDS`: `board_id`, `operator_id`, ...), plus
`exception` when there is a traceback. Only those context fields are copied: an `extra` that is
not one of them never reaches the output (a secret cannot slip in by that route).

Standard library only: the board agent uses it on a Raspberry Pi.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The formats `configure_logging` knows (the `log_format` setting of server and agent).
LOG_FORMATS: Final = ("text", "json")

#: Fields of a log call's `extra` that JSON lines carry (ids, never names of secrets).
CONTEXT_FIELDS: Final = ("board_id", "operator_id", "reason")

#: Libraries that log a line per connectivity check or packet at INFO: quiet unless DEBUG.
CHATTY_LIBRARIES: Final = ("aioice", "aiortc")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def _utc_iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def formatter(fmt: str = "text") -> logging.Formatter:
    """The formatter of `fmt` (one of `LOG_FORMATS`)."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(LOG_FORMAT)
    raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log at `level` to stderr in `fmt` (`text` or `json`); the chatty libraries at WARNING
    unless `level` is DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt.lower()))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if logging.getLogger().level > logging.DEBUG:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
