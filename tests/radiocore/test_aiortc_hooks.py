"""The forwarding hook relies on aiortc/aioice internals; this fails loudly when they move."""

from __future__ import annotations

import aioice.ice
import aiortc
import pytest

from radiocore import aiortc_hooks
from radiocore.aiortc_hooks import HookError


def test_pinned_versions_are_installed() -> None:
    # radiocore/aiortc_hooks.py was written against exactly these; re-check the hooks on upgrade
    assert aiortc.__version__ == "1.16.0"
    assert aioice.__version__ == "0.13.0"


def test_every_private_attribute_the_hooks_use_exists() -> None:
    aiortc_hooks.check_hooks()


def test_check_hooks_notices_a_missing_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice.StunProtocol, "send_data")
    with pytest.raises(HookError, match=r"StunProtocol\.send_data"):
        aiortc_hooks.check_hooks()


def test_host_addresses_are_configurable_and_restorable() -> None:
    original = aioice.ice.get_host_addresses
    try:
        aiortc_hooks.set_host_addresses(["127.0.0.1", "10.1.2.3", "::1", "fd00::5"])
        gather = aioice.ice.get_host_addresses
        assert gather(use_ipv4=True, use_ipv6=False) == ["127.0.0.1", "10.1.2.3"]
        assert gather(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "10.1.2.3", "::1", "fd00::5"]
        assert gather(use_ipv4=False, use_ipv6=True) == ["::1", "fd00::5"]
        aiortc_hooks.set_host_addresses([])
        assert aioice.ice.get_host_addresses is original
    finally:
        aioice.ice.get_host_addresses = original
