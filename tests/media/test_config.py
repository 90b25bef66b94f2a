"""The SFU's config: its defaults follow the protocol, and it refuses what cannot be safe."""

from __future__ import annotations

import pytest

import radiocore_protocol as protocol
from media.config import SfuConfig


def test_defaults_follow_the_protocol() -> None:
    config = SfuConfig()
    assert config.max_data_message_bytes == protocol.MAX_DATA_MESSAGE_BYTES
    assert config.max_early_candidates == 32
    assert config.deadman_s >= protocol.MIN_DEADMAN_S


def test_the_shortest_deadman_is_two_keepalive_intervals() -> None:
    assert SfuConfig(deadman_s=protocol.MIN_DEADMAN_S).deadman_s == protocol.MIN_DEADMAN_S
    with pytest.raises(ValueError, match="deadman_s"):
        SfuConfig(deadman_s=protocol.MIN_DEADMAN_S - 0.01)


@pytest.mark.parametrize("size", [0, protocol.MAX_DATA_MESSAGE_BYTES + 1])
def test_the_message_limit_is_at_most_the_protocols(size: int) -> None:
    with pytest.raises(ValueError, match="max_data_message_bytes"):
        SfuConfig(max_data_message_bytes=size)


@pytest.mark.parametrize(
    "field",
    [
        {"max_early_candidates": -1},
        {"max_buffered_data_bytes": -1},
        {"listener_queue_packets": 0},
        {"max_messages_per_second": 0},
        {"tx_timeout_s": 0},
        {"tx_warning_s": -1},
        {"latency_sample_every": -1},
    ],
)
def test_nonsense_is_refused(field: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(field))):
        SfuConfig(**field)  # type: ignore[arg-type]
