"""Configuration of the SFU, owned by the media package (signaling fills it from its config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from radiocore_protocol import MAX_DATA_MESSAGE_BYTES, MIN_DEADMAN_S


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
    #: Inclusive UDP port range of the SFU's host candidates; (0, 0): any port.
    ice_port_range: tuple[int, int] = (0, 0)
    #: The IPv4 address host candidates announce in place of the bound one ("": the bound one).
    ice_announced_address: str = ""
    #: One UDP port every peer connection shares (`radiocore.udp_mux`); 0: a port each.
    ice_udp_port: int = 0
    #: Seconds from the answer for a connection's media to come up; then its client is told
    #: (`media_failed`, reason `ice`) and the connection closed (aioice alone waits ~63 s).
    ice_connect_timeout_s: float = 8.0
    #: The explicit ICE server list the server's own peer connections use (may be empty).
    ice_servers: tuple[IceServerSpec, ...] = ()
    #: Packets a listener may have waiting on a slow (relayed) path before the oldest go.
    listener_queue_packets: int = 64
    #: Data-channel bytes queued to one peer before further messages to it are dropped
    #: (PTT off to a station is never dropped: it goes ahead of the backlog).
    max_buffered_data_bytes: int = 262_144
    #: Data-channel messages per second one connection may send.
    max_messages_per_second: int = 1000
    #: Largest data-channel message accepted, in bytes (`too_large` above it); at most the
    #: protocol's limit.
    max_data_message_bytes: int = MAX_DATA_MESSAGE_BYTES
    #: Trickled candidates kept for a connection whose offer is still being applied.
    max_early_candidates: int = 32
    #: Record server ingress -> egress latency of every Nth forwarded packet (0: off).
    latency_sample_every: int = 0
    #: The forwarding lane (`media.lane`): auto (compiled when built), compiled, python.
    lane: str = "auto"
    #: Seconds without a keep-alive from the floor holder before PTT is released (dead-man).
    deadman_s: float = 1.0
    #: Longest continuous transmission, seconds; then PTT is released.
    tx_timeout_s: float = 180.0
    #: Seconds before the time-out at which the holder is warned (0: no warning).
    tx_warning_s: float = 10.0
    #: A room sends `roster` (who is on the station) at most this often; changes in between
    #: are coalesced into one message to each operator.
    roster_interval_s: float = 0.25

    def __post_init__(self) -> None:
        if self.listener_queue_packets < 1:
            raise ValueError("listener_queue_packets must be at least 1")
        if self.max_buffered_data_bytes < 0:
            raise ValueError("max_buffered_data_bytes must be 0 or more")
        if self.max_messages_per_second < 1:
            raise ValueError("max_messages_per_second must be at least 1")
        if not 1 <= self.max_data_message_bytes <= MAX_DATA_MESSAGE_BYTES:
            raise ValueError(f"max_data_message_bytes must be 1 … {MAX_DATA_MESSAGE_BYTES}")
        if self.max_early_candidates < 0:
            raise ValueError("max_early_candidates must be 0 or more")
        if self.deadman_s < MIN_DEADMAN_S:
            raise ValueError(
                f"deadman_s must be at least {MIN_DEADMAN_S} s (two keep-alive intervals)"
            )
        if self.tx_timeout_s <= 0 or self.tx_warning_s < 0:
            raise ValueError("tx_timeout_s must be positive, tx_warning_s 0 or more")
        if not 0 <= self.roster_interval_s <= 10:
            raise ValueError("roster_interval_s must be 0 … 10 s")
        low, high = self.ice_port_range
        if (low, high) != (0, 0) and not 1 <= low <= high <= 65535:
            raise ValueError(f"ice_port_range {low}-{high} is not a port range")
        if not 0 <= self.ice_udp_port <= 65535:
            raise ValueError(f"ice_udp_port {self.ice_udp_port} is not a port")
        if self.ice_udp_port and (low, high) != (0, 0):
            raise ValueError("ice_udp_port and ice_port_range are both set")
        if not 1.0 <= self.ice_connect_timeout_s <= 60.0:
            raise ValueError("ice_connect_timeout_s must be 1 … 60 s")
        if self.latency_sample_every < 0:
            raise ValueError("latency_sample_every must be 0 (off) or more")
