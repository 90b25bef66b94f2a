"""Never leave the rig keyed: the operator's network is cut silently while it holds PTT.

One run of `netcut_check.py` inside a private network namespace serves every test here: a real
server, board agent and `rigctld -m 1 -P RIG`, the keying operator in a nested namespace
behind a veth pair, and a second operator on the station's side. The cut drops every packet
on both veth ends (nftables, netdev ingress): nothing tells either side, as when Wi-Fi drops or
a NAT times out. The rig's PTT is read from rigctld on a connection of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.components import missing
from tests.support.rigctld import require_rigctld

pytestmark = pytest.mark.timeout(200)

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parents[1]
CHECK_SCRIPT: Final = HERE / "netcut_check.py"
# Above the script's own bound (90 s); a run takes ~14 s here.
RUN_TIMEOUT_S: Final = 150
#: The server's dead-man (`floor.deadman_s`, 1 s) from the last keep-alive that got through,
#: plus the way to the rig; measured from the moment the cut began.
MAX_RELEASE_S: Final = 1.5
#: How long after the heal the rig must stay unkeyed (the late keep-alives arrive meanwhile).
MIN_QUIET_AFTER_HEAL_S: Final = 2.0
#: The second operator's key and release, each seen at rigctld.
MAX_SECOND_OPERATOR_S: Final = 2.0

# Root can make a network namespace directly; others may through a user namespace.
NAMESPACE_COMMANDS: Final = (("unshare", "-n"), ("unshare", "--map-root-user", "-n"))
TOOLS: Final = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "nft": "nftables",
}
# A veth pair and a netdev table: what the check builds, in a throw-away namespace.
PROBE: Final = (
    "ip link add rcprobe0 type veth peer name rcprobe1"
    " && nft add table netdev rcprobe"
    ' && nft add chain netdev rcprobe ingress "{ type filter hook ingress device rcprobe0'
    ' priority 0; policy drop; }"'
)


def _preconditions() -> tuple[tuple[str, ...] | None, str]:
    """(namespace command, "") when the check can run, else (None, why not)."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not installed (Debian: {package})"
    failures = []
    for command in NAMESPACE_COMMANDS:
        probe = subprocess.run(
            [*command, "sh", "-c", PROBE], capture_output=True, text=True, timeout=10, check=False
        )
        if probe.returncode == 0:
            return command, ""
        failures.append(f"`{' '.join(command)}`: {probe.stderr.strip() or probe.returncode}")
    return None, (
        f"cannot build a veth pair with an nftables netdev table in a network namespace "
        f"(uid {os.getuid()}; needs root or unprivileged user namespaces): {'; '.join(failures)}"
    )


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    require_rigctld()
    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the network-cut test cannot run: {reason}")
    try:
        run = subprocess.run(
            [*namespace, sys.executable, str(CHECK_SCRIPT)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"netcut_check.py did not finish in {RUN_TIMEOUT_S} s: {exc.stderr!r}")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"netcut_check.py printed no JSON (exit {run.returncode});\n"
            f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    print(json.dumps(result, indent=2))  # shown with -rA / on failure
    if not result.get("ok"):
        pytest.fail(
            f"network-cut check stopped: {result.get('failure')}\n"
            f"report: {json.dumps(result, indent=2)}\nstderr: {run.stderr[-4000:]}"
        )
    return result


def test_silent_cut_releases_the_rig_within_the_deadman(report: dict[str, Any]) -> None:
    assert report["keyed_before_cut"] is True, "keep-alives over the veth did not hold the key"
    release = report["release_s"]
    assert release is not None, f"the rig stayed keyed through the {report['cut_s']} s cut"
    assert release <= MAX_RELEASE_S, f"the rig was released {release} s after the cut"


def test_late_keepalives_after_the_heal_do_not_key_the_rig_again(report: dict[str, Any]) -> None:
    assert report["keyed_at_heal"] is False, "the rig was still keyed when the network came back"
    answered = report["marker_answered_after_heal_s"]
    assert answered is not None, "what the operator queued during the cut never reached the server"
    watched = report["watched_after_heal_s"]
    assert watched >= MIN_QUIET_AFTER_HEAL_S
    assert watched >= answered, "the late keep-alives arrived after the watch"
    assert report["keepalives_sent_during_cut"] >= 4, "nothing was queued during the cut"
    assert report["rekeyed_after_heal_s"] is None, (
        f"the rig keyed again {report['rekeyed_after_heal_s']} s after the network came back"
    )
    assert report["keyed_after_stale_release"] is False


def test_cut_operator_is_told_of_the_deadman_once_back(report: dict[str, Any]) -> None:
    told = report["cut_operator"]["ptt_released"]
    assert told is not None, "the cut operator never heard that its transmission ended"
    assert (told["reason"], told["by"]) == ("deadman", None)
    assert told["after_heal_s"] >= 0


def test_second_operator_keys_and_releases_after_the_cut(report: dict[str, Any]) -> None:
    assert report["second_operator_errors"] == [], "the floor was not free after the cut"
    key = report["second_key_s"]
    assert key is not None and key <= MAX_SECOND_OPERATOR_S, f"keyed after {key} s"
    assert report["second_keyed_after_hold"] is True
    release = report["second_release_s"]
    assert release is not None and release <= MAX_SECOND_OPERATOR_S, f"released after {release} s"
