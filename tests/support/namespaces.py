"""Running a check script inside a private network namespace, and reading its JSON report.

The e2e console check and the network-cut check each run as one script under `unshare -n`
(only loopback, nothing leaves the machine) that prints one JSON line as its report; the tests
judge that report. Both find a way to make a namespace the same way, and read the report the
same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

#: Root can make a network namespace directly; others may through a user namespace.
NAMESPACE_COMMANDS: Final = (("unshare", "-n"), ("unshare", "--map-root-user", "-n"))


def namespace_command(probe: str = "true") -> tuple[tuple[str, ...] | None, str]:
    """The first way to run `sh -c probe` in a new network namespace that works here (the
    command prefix), or (None, why none did)."""
    failures = []
    for command in NAMESPACE_COMMANDS:
        attempt = subprocess.run(
            [*command, "sh", "-c", probe], capture_output=True, text=True, timeout=10, check=False
        )
        if attempt.returncode == 0:
            return command, ""
        failures.append(f"`{' '.join(command)}`: {attempt.stderr.strip() or attempt.returncode}")
    return None, (
        f"no network namespace could run `{probe}` (uid {os.getuid()}; needs root or "
        f"unprivileged user namespaces): {'; '.join(failures)}"
    )


def run_check(
    namespace: tuple[str, ...], script: Path, args: list[str], cwd: Path, timeout_s: float
) -> dict[str, Any]:
    """Run `script` in a new namespace; its last JSON line, or fail the test saying why."""
    name = script.name
    try:
        run = subprocess.run(
            [*namespace, sys.executable, str(script), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name} did not finish in {timeout_s} s: {exc.stderr!r}")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"{name} printed no JSON (exit {run.returncode});\n"
            f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    print(json.dumps(result, indent=2))  # shown with -rA / on failure
    if not result.get("ok"):
        pytest.fail(
            f"{name} stopped: {result.get('failure')}\n"
            f"report: {json.dumps(result, indent=2)}\nstderr: {run.stderr[-4000:]}"
        )
    return result
