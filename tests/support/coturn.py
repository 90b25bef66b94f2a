"""A real coturn (`turnserver`) for tests: loopback only, random ports, a random secret,
use-auth-secret (the credentials RadioCore issues), its log kept to assert on allocations.

The one way to start it is `bench.coturn.Coturn` (the benchmarks use it too); this module adds
what tests need around it: a missing coturn fails the test (or skips it on a dev machine)."""

from __future__ import annotations

import os
from typing import Final

from bench.coturn import REALM, TURNSERVER, Coturn
from tests.support.components import require

__all__ = ["MISSING_REASON", "REALM", "TURNSERVER", "Coturn", "require_coturn"]

MISSING_REASON: Final = f"coturn is not installed at {TURNSERVER} (Debian: coturn)"


def require_coturn() -> None:
    require(os.access(TURNSERVER, os.X_OK), MISSING_REASON)
