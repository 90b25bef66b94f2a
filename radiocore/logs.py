"""Logging set-up for every RadioCore process (server, agent, demo): one format, one place.

Standard library only: the board agent uses it on a Raspberry Pi.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Libraries that log a line per connectivity check or packet at INFO: quiet unless DEBUG.
CHATTY_LIBRARIES: Final = ("aioice", "aiortc")


def configure_logging(level: str) -> None:
    """Log at `level` to stderr; the chatty libraries at WARNING unless `level` is DEBUG."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    if logging.getLogger().level > logging.DEBUG:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
