"""Never leave the rig keyed: the operator's network is cut silently while it holds PTT.

One run of `netcut_check.py` inside a private network namespace serves every test here: a real
server, board agent and `rigctld -m 1 -P RIG`, the keying operator in a nested namespace
behind a veth pair, and a second operator on the station's side. The cut drops every packet
on both veth ends (nftables, netdev ingress): nothing tells either side, as when Wi-Fi drops or
a NAT times out. The rig's PTT is read from rigctld on a connection of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.components import missing
from tests.support.namespaces import namespace_command, run_check
from tests.support.rigctld import require_rigctld

pytestmark = pytest.mark.timeout(200)

HERE: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = HERE.parents[1]
CHECK_SCRIPT: Final = HERE / "netcut_check.py"
# Above the script's own bound (90 s); a run takes ~14 s here.
RUN_TIMEOUT_S: Final = 150
#: The server's dead-man (`floor.deadman_s`, 1 s) from the last keep-alive that got through,
#: plus the way to the rig; measured from the moment the cut was in place (nothing more got
#: through).
MAX_RELEASE_S: Final = 1.5
#: How long after the heal the rig must stay unkeyed (the late keep-alives arrive meanwhile).
MIN_QUIET_AFTER_HEAL_S: Final = 2.0
#: The second operator's key and release, each seen at rigctld.
MAX_SECOND_OPERATOR_S: Final = 2.0

#: What the release message shows, to tell a slow dead-man from a slow cut or a slow way.
TIMING_FIELDS: Final = (
    "cut_silent_after_s",
    "cut_apply_s",
    "release_from_cut_start_s",
    "release_after_last_keepalive_s",
)

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
    command, why = namespace_command(PROBE)
    if command is None:
        return None, f"cannot build a veth pair with an nftables netdev table: {why}"
    return command, ""


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    require_rigctld()
    namespace, reason = _preconditions()
    if namespace is None:
        missing(f"the network-cut test cannot run: {reason}")
    return run_check(namespace, CHECK_SCRIPT, [], REPO_ROOT, RUN_TIMEOUT_S)


def test_silent_cut_releases_the_rig_within_the_deadman(report: dict[str, Any]) -> None:
    assert report["keyed_before_cut"] is True, "keep-alives over the veth did not hold the key"
    release = report["release_s"]
    assert release is not None, f"the rig stayed keyed through the {report['cut_s']} s cut"
    timing = {k: report.get(k) for k in TIMING_FIELDS}
    assert release <= MAX_RELEASE_S, f"the rig was released {release} s after the cut: {timing}"


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
