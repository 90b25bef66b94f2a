"""Real components the tests need (rigctld, Chromium, coturn, PostgreSQL …): missing is failing.

Under `make test` (and so `.ci/run`) a component that is not installed fails the test that needs
it: a CI machine without Chromium must not pass green. A developer without one may opt out on
their own machine with `TESTS_REQUIRE_COMPONENTS=0`; the tests that need it are then skipped,
each printing why, and pytest's summary (`-rs`) lists them.
"""

from __future__ import annotations

import os
from typing import Final, NoReturn

import pytest

#: `0` lets a developer skip tests whose component is missing; anything else (or unset) fails.
REQUIRE_VARIABLE: Final = "TESTS_REQUIRE_COMPONENTS"


def components_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "1") != "0"


def missing(reason: str) -> NoReturn:
    """A component this test needs is missing: fail, or skip where the developer opted out."""
    if components_required():
        pytest.fail(f"{reason} (set {REQUIRE_VARIABLE}=0 to skip such tests on a dev machine)")
    print(f"SKIPPED, component missing: {reason}")
    pytest.skip(f"component missing: {reason}")


def require(available: bool, reason: str) -> None:
    """Call at the start of a test or fixture: `missing(reason)` unless `available`."""
    if not available:
        missing(reason)
