"""End-to-end tests: real browsers against the real server, in private network namespaces."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end to end in a real browser against the real server (slow, needs root)"
    )
