"""The SFU: one room per board, participants admitted by signaling, packets forwarded."""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from media.config import IceServerSpec, SfuConfig
from media.errors import StationOfflineError
from media.floor import FloorObserver
from media.forwarder import ForwardTotals, LatencyRecorder
from media.lane import PyLane, lane_named
from media.participant import AGENT_KEY, MediaFailure, Participant, ParticipantIdentity, Role
from media.relay import OpenUpstream, RelayRoom
from media.room import Room
from radiocore import aiortc_hooks, udp_mux
from radiocore_protocol import TxEndReason

logger = logging.getLogger(__name__)

#: How often `flush()` looks at the data channels' backlog.
_FLUSH_POLL_S = 0.01


class StationObserver(Protocol):
    """Told when a station comes online and goes offline (signaling's presence implements it).

    Online means the station's media is up and it can take commands: its agent is in the room
    and the agent's control data channel is open (`Sfu.station_online`). Calls alternate per
    board, starting with `station_up`; they are made on the event loop, from aiortc's
    callbacks, so they must neither block nor raise.
    """

    def station_up(self, board_id: str) -> None:
        """The agent's control channel opened."""
        ...

    def station_down(self, board_id: str) -> None:
        """The agent left the room (for whatever reason) after being up."""
        ...


#: Told of a participant's media failure: (board id, participant key, failure).
MediaFailureListener = Callable[[str, str, MediaFailure], None]


class NoStationObserver:
    def station_up(self, board_id: str) -> None:
        pass

    def station_down(self, board_id: str) -> None:
        pass


@dataclass(frozen=True)
class SfuStats:
    rooms: int
    participants: int
    packets_in: int
    packets_forwarded: int
    packets_dropped: int
    invalid_messages: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    latency_samples: int


@dataclass(frozen=True)
class SfuTotals:
    """Counts since the SFU started, rooms that are gone included (`GET /metrics`)."""

    #: Audio forwarded both ways (the station's to listeners, the floor holder's to the station).
    forwarded: ForwardTotals
    #: Data-channel messages refused as invalid (malformed, unknown, oversize).
    invalid_messages: int


class Sfu:
    """Rooms by board id. Signaling decides who may join; the SFU negotiates and forwards."""

    def __init__(
        self,
        config: SfuConfig,
        observer: FloorObserver | None = None,
        station_observer: StationObserver | None = None,
        ice_servers: Callable[[], Sequence[IceServerSpec]] | None = None,
    ) -> None:
        """`observer` is told of every transmission (the TX audit log), `station_observer` of
        every station coming online and going offline. `ice_servers` gives each new peer
        connection its own list (TURN credentials expire); without it, `config.ice_servers`."""
        self.config = config
        self._ice_servers_for = ice_servers or (lambda: config.ice_servers)
        self._observer = observer
        self._station_observer = station_observer or NoStationObserver()
        self._rooms: dict[str, Room] = {}
        #: Stations of other nodes whose listeners here are served through a relay.
        self._relayed: dict[str, RelayRoom] = {}
        self._failure_listeners: list[MediaFailureListener] = []
        self._latency = (
            LatencyRecorder(config.latency_sample_every) if config.latency_sample_every else None
        )
        #: What rooms that are gone counted (`totals()` adds the current rooms').
        self._retired = ForwardTotals()
        self._retired_invalid = 0
        aiortc_hooks.check_hooks()
        aiortc_hooks.set_host_addresses(config.ice_host_addresses)
        aiortc_hooks.setup_dtls()  # RSA-certificate peers (GStreamer), failure reasons kept
        low, high = config.ice_port_range
        if config.ice_udp_port:
            ports = f"{config.ice_udp_port}, shared by every peer connection"
        elif low:
            ports = f"{low}-{high}"
        else:
            ports = "any (set ice.udp_port, or udp_port_min/udp_port_max, for a firewall)"
        #: True while this SFU holds its shared UDP port open (`open`, `close`).
        self._holds_port = False
        logger.info(
            "SFU media: host candidates on %s, UDP ports %s%s",
            ", ".join(config.ice_host_addresses) or "every interface",
            ports,
            f", announced as {config.ice_announced_address}"
            if config.ice_announced_address
            else "",
        )
        lane = lane_named(config.lane)  # ValueError: `compiled` asked for and not built
        #: True when listeners are served by the compiled forwarding lane (`media.lane`).
        self.lane_compiled = lane is not PyLane
        logger.info(
            "SFU forwarding lane: %s",
            "compiled (media._lane)" if self.lane_compiled else "pure Python (media.lane.PyLane)",
        )

    def on_media_failed(self, listener: MediaFailureListener) -> None:
        """Call `listener(board_id, participant key, failure)` whenever a participant's media
        fails for good (ICE or DTLS; once per connection), so that its client can be told.
        Called on the event loop from aiortc's callbacks: it must neither block nor raise."""
        self._failure_listeners.append(listener)

    def _media_failed(self, board_id: str, participant: Participant, failure: MediaFailure) -> None:
        for listener in self._failure_listeners:
            try:
                listener(board_id, participant.key, failure)
            except Exception:
                logger.exception("a media-failure listener failed")

    def room(self, board_id: str) -> Room | None:
        return self._rooms.get(board_id)

    def rooms(self) -> tuple[Room, ...]:
        """Every room now (a copy: rooms come and go while the caller awaits)."""
        return tuple(self._rooms.values())

    def listeners(self) -> int:
        """Streams of station audio this SFU sends or is about to: to operators (relayed ones
        included) and to other nodes' and workers' relays (the load listeners are placed by)."""
        # those negotiating count already: listeners joining at once are spread
        here = sum(len(room.rx.targets) + len(room.negotiating) for room in self._rooms.values())
        relayed = self._relayed.values()
        return here + sum(len(room.rx.targets) + len(room.negotiating) for room in relayed)

    def relay_rooms(self) -> tuple[RelayRoom, ...]:
        """Every relayed room now: another node's station and its listeners here (a copy)."""
        return tuple(self._relayed.values())

    def _room(self, board_id: str) -> Room:
        room = self._rooms.get(board_id)
        if room is None:
            room = self._rooms[board_id] = Room(
                board_id,
                self.config,
                self._latency,
                station_observer=self._station_observer,
                floor_observer=self._observer,
                on_empty=self._forget_if_empty,
            )
        return room

    def station_online(self, board_id: str) -> bool:
        """The station's media is up and it can take commands (see `StationObserver`)."""
        room = self._rooms.get(board_id)
        return room is not None and room.station_online

    async def connect_agent(self, board_id: str, name: str, offer_sdp: str) -> str:
        """Negotiate the board agent's peer connection; returns the SDP answer."""
        identity = ParticipantIdentity(key=AGENT_KEY, role=Role.AGENT, callsign=name)
        relayed = self._relayed.get(board_id)
        if relayed is not None:  # the station came here: its listeners relayed here join it
            relayed.upstream_lost()
        return await self._connect(board_id, identity, offer_sdp)

    async def connect_operator(
        self, board_id: str, identity: ParticipantIdentity, offer_sdp: str
    ) -> str:
        """Negotiate an operator's peer connection with a board's room; returns the answer."""
        if not self.station_online(board_id):
            raise StationOfflineError("the station is offline")
        return await self._connect(board_id, identity, offer_sdp)

    async def connect_relay(self, board_id: str, node: str, offer_sdp: str) -> str:
        """Negotiate node `node`'s relay of this station (`media.relay`); returns the answer."""
        if not self.station_online(board_id):
            raise StationOfflineError("the station is offline")
        identity = ParticipantIdentity(
            key=f"relay:{node}", role=Role.RELAY, callsign=f"relay to node {node}"
        )
        return await self._connect(board_id, identity, offer_sdp)

    async def connect_relayed(
        self,
        board_id: str,
        identity: ParticipantIdentity,
        offer_sdp: str,
        open_upstream: OpenUpstream,
        source: str = "",
    ) -> str:
        """Negotiate a listen-only operator of a station on another node (`source`), served
        here through this node's relay of it (connected first if need be, through
        `open_upstream`: the station's node's answer to the relay's offer); returns the
        answer."""
        room = self._relayed.get(board_id)
        if room is None or room.ended:  # an ended one is closing: this listener starts anew
            room = self._relayed[board_id] = RelayRoom(
                board_id, self.config, self._latency, open_upstream, self._forget_relay, source
            )
        participant = room.new_participant(identity, self._ice_servers_for())
        participant.on_media_failed = lambda p, failure: self._media_failed(board_id, p, failure)
        room.negotiating[identity.key] = participant
        try:
            await room.upstream(self._ice_servers_for())
            answer = await participant.accept_offer(offer_sdp)
        except BaseException:
            room.finish_negotiation(participant)
            await participant.close()
            if room.empty:
                await room.close()
            raise
        room.finish_negotiation(participant)
        await room.admit(participant)
        logger.info(
            "operator %s joined board %s through this node's relay",
            identity.callsign,
            board_id,
            extra={"board_id": board_id, "operator_id": identity.user_id},
        )
        return answer

    def _forget_relay(self, room: RelayRoom) -> None:
        if self._relayed.get(room.board_id) is room:
            del self._relayed[room.board_id]
            self._retired.add(room.rx.totals())
            self._retired_invalid += room.invalid_messages

    def relay_source(self, board_id: str) -> str | None:
        """The node this node's relay of the station connects to, if it relays it."""
        room = self._relayed.get(board_id)
        return room.source if room is not None else None

    def relay_source_gone(self, board_id: str, source: str) -> None:
        """Node `source` is dead: this node's relay of the station from it, if any, ends (its
        listeners are told to join again) without waiting for its connection to time out."""
        room = self._relayed.get(board_id)
        if room is not None and room.source == source:
            room.upstream_lost()

    def station_moved(self, board_id: str, home: str | None) -> None:
        """The station is online on node `home` now (None: offline): if this node relays it
        from another node, its relayed listeners are told to join again (`media_failed`), where
        the station is now. Offline alone ends nothing: the station may come back to its node."""
        room = self._relayed.get(board_id)
        if room is not None and home is not None and home != room.source:
            room.upstream_lost()

    async def _connect(self, board_id: str, identity: ParticipantIdentity, offer_sdp: str) -> str:
        room = self._room(board_id)
        participant = room.new_participant(identity, self._ice_servers_for())
        participant.on_media_failed = lambda p, failure: self._media_failed(board_id, p, failure)
        room.negotiating[identity.key] = participant
        try:
            answer = await participant.accept_offer(offer_sdp)
        except BaseException:
            room.finish_negotiation(participant)
            await participant.close()
            self._forget_if_empty(room)
            raise
        room.finish_negotiation(participant)
        await room.admit(participant)
        logger.info(
            "%s %s joined board %s",
            identity.role.value,
            identity.callsign,
            board_id,
            extra={"board_id": board_id, "operator_id": identity.user_id},
        )
        return answer

    async def add_candidate(
        self, board_id: str, key: str, candidate: str, sdp_mid: str | None, index: int | None
    ) -> bool:
        """Apply a trickled candidate to that one participant's connection; False if none."""
        room = self._rooms.get(board_id)
        participant = room.participant(key) if room is not None else None
        if participant is None:
            relayed = self._relayed.get(board_id)
            participant = relayed.participant(key) if relayed is not None else None
        if participant is None:
            return False
        await participant.add_candidate(candidate, sdp_mid, index)
        return True

    async def disconnect(self, board_id: str, key: str) -> None:
        relayed = self._relayed.get(board_id)
        if relayed is not None and key in relayed.operators:
            await relayed.remove(key)
            return
        room = self._rooms.get(board_id)
        if room is None:
            return
        await room.remove(key)
        self._forget_if_empty(room)

    def _forget_if_empty(self, room: Room) -> None:
        if room.empty and self._rooms.get(room.board_id) is room:
            del self._rooms[room.board_id]
            self._retire(room)

    def _retire(self, room: Room) -> None:
        self._retired.add(room.rx.totals())
        self._retired.add(room.tx.totals())
        self._retired_invalid += room.invalid_messages

    def end_transmissions(self, reason: TxEndReason) -> int:
        """End every transmission now, as the floor policy ends one (PTT off to each station
        ahead of its backlog, the holder and the operators told); how many there were."""
        ended = 0
        for room in list(self._rooms.values()):
            if room.floor.holder is not None:
                room.floor.end(reason)
                ended += 1
        return ended

    async def flush(self, timeout_s: float) -> bool:
        """Wait, at most `timeout_s`, until every data channel handed what it was sent to the
        network (so PTT off reached the stations before their connections close); True when
        it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for _ in range(max(1, int(timeout_s / _FLUSH_POLL_S))):
            if not any(room.data_pending() for room in self._rooms.values()):
                return True
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_FLUSH_POLL_S)
        return not any(room.data_pending() for room in self._rooms.values())

    async def open(self) -> None:
        """Bind the shared UDP port (`ice_udp_port`) on every host address now, so that a port
        in use stops the server at its start; OSError naming the address and port. Nothing to
        do without a shared port (sockets are bound per connection)."""
        port = self.config.ice_udp_port
        if not port or self._holds_port:
            return
        udp_mux.use_port(port)
        self._holds_port = True
        try:
            await udp_mux.open_muxes(aiortc_hooks.host_addresses(), port)
        except OSError:
            self._holds_port = False
            udp_mux.release(port)
            raise

    async def close(self) -> None:
        for relayed in list(self._relayed.values()):
            await relayed.close()
        for room in list(self._rooms.values()):
            await room.close()
            if self._rooms.get(room.board_id) is room:  # not forgotten while closing
                del self._rooms[room.board_id]
                self._retire(room)
        self._rooms.clear()
        if self._holds_port:
            self._holds_port = False
            udp_mux.release(self.config.ice_udp_port)

    def unclaimed_datagrams(self) -> int:
        """Datagrams to this process's shared UDP port (`ice_udp_port`) that no peer connection
        owned, dropped since it opened (0 without a shared port)."""
        port = self.config.ice_udp_port
        return sum(mux.unclaimed for mux in udp_mux.muxes(port)) if port else 0

    def totals(self) -> SfuTotals:
        """Forwarding and refusal counts since start (monotonic, unlike `stats()`, which counts
        the rooms there are now)."""
        forwarded = ForwardTotals()
        forwarded.add(self._retired)
        invalid = self._retired_invalid
        for room in self._rooms.values():
            forwarded.add(room.rx.totals())
            forwarded.add(room.tx.totals())
            invalid += room.invalid_messages
        for relayed in self._relayed.values():
            forwarded.add(relayed.rx.totals())
            invalid += relayed.invalid_messages
        return SfuTotals(forwarded=forwarded, invalid_messages=invalid)

    def latency_since(self, mark: int) -> tuple[int, list[float]]:
        """The forwarding-latency samples (seconds) recorded after `mark` and still held, and
        the mark to pass next time (start with 0); none when sampling is off
        (`latency_sample_every` 0)."""
        if self._latency is None:
            return mark, []
        return self._latency.recorded, self._latency.since(mark)

    def reset_latency(self) -> None:
        if self._latency is not None:
            self._latency.clear()

    def participant_count(self) -> int:
        """Peer connections this SFU serves: agents, operators, relays (a node's load)."""
        rooms, relayed = self._rooms.values(), self._relayed.values()
        participants = sum(len(r.operators) + len(r.relays) + (r.agent is not None) for r in rooms)
        return participants + sum(len(r.operators) for r in relayed)

    def stats(self) -> SfuStats:
        rooms = list(self._rooms.values())
        relayed = list(self._relayed.values())
        participants = self.participant_count()
        forwarded = dropped = 0
        for fanout in [*(r.rx for r in rooms), *(r.tx for r in rooms), *(r.rx for r in relayed)]:
            for target in fanout.targets:
                forwarded += target.packets_sent
                dropped += target.dropped
        samples = sorted(self._latency.samples()) if self._latency else []
        p50 = p99 = None
        if len(samples) >= 2:
            cuts = statistics.quantiles(samples, n=100, method="inclusive")
            p50, p99 = cuts[49] * 1000, cuts[98] * 1000
        return SfuStats(
            rooms=len(rooms),
            participants=participants,
            packets_in=sum(r.rx.packets_in + r.tx.packets_in for r in rooms)
            + sum(r.rx.packets_in for r in relayed),
            packets_forwarded=forwarded,
            packets_dropped=dropped,
            invalid_messages=sum(r.invalid_messages for r in rooms)
            + sum(r.invalid_messages for r in relayed),
            latency_ms_p50=p50,
            latency_ms_p99=p99,
            latency_samples=len(samples),
        )
