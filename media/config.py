"""Configuration of the SFU, owned by the media package (signaling fills it from its config)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IceServerSpec:
    """One STUN/TURN server handed to peers; `urls` like `turn:host:3478?transport=udp`."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SfuConfig:
    #: Local addresses ICE gathers host candidates on; empty means every interface.
    ice_host_addresses: tuple[str, ...] = ()
    #: The explicit ICE server list the server's own peer connections use (may be empty).
    ice_servers: tuple[IceServerSpec, ...] = ()
    #: Packets a listener may have waiting on a slow (relayed) path before the oldest go.
    listener_queue_packets: int = 64
    #: Data-channel bytes queued to one peer before further messages to it are dropped.
    max_buffered_data_bytes: int = 262_144
    #: Data-channel messages per second one connection may send.
    max_messages_per_second: int = 1000
    #: Record server ingress -> egress latency of every Nth forwarded packet (0: off).
    latency_sample_every: int = 0
    #: Seconds without a keep-alive from the floor holder before PTT is released (dead-man).
    deadman_s: float = 1.0
    #: Longest continuous transmission, seconds; then PTT is released.
    tx_timeout_s: float = 180.0
    #: Seconds before the time-out at which the holder is warned (0: no warning).
    tx_warning_s: float = 10.0

    def __post_init__(self) -> None:
        if self.listener_queue_packets < 1:
            raise ValueError("listener_queue_packets must be at least 1")
        if self.max_messages_per_second < 1:
            raise ValueError("max_messages_per_second must be at least 1")
        if self.deadman_s <= 0 or self.tx_timeout_s <= 0 or self.tx_warning_s < 0:
            raise ValueError("deadman_s and tx_timeout_s must be positive, tx_warning_s >= 0")
        if self.latency_sample_every < 0:
            raise ValueError("latency_sample_every must be 0 (off) or more")
