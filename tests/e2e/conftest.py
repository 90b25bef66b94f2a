"""End-to-end tests: real browsers against the real server, in private network namespaces."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end to end in a real browser against the real server (slow, needs root)"
    )


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of `console_check.py` (demo + Chromium) for every test file that judges it
    (test_console_chromium.py and the console helpers' own); its screenshots are copied to
    build/test-artifacts/."""
    from tests.e2e.test_console_chromium import CHECK_SCRIPT, RUN_TIMEOUT_S, _preconditions
    from tests.support.components import missing
    from tests.support.namespaces import run_check

    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the Chromium end-to-end test cannot run: {reason}")
    screenshot = tmp_path_factory.mktemp("e2e") / "console.png"
    try:
        return run_check(
            namespace, CHECK_SCRIPT, ["--screenshot", str(screenshot)], REPO_ROOT, RUN_TIMEOUT_S
        )
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for png in screenshot.parent.glob("*.png"):
            shutil.copy2(png, ARTIFACTS / png.name)
