"""The station service: who may connect as a board, who may use which board, presence.

Plain logic, no transport: the Socket.IO namespaces parse, call this, and emit.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import radiocore_protocol as protocol
from media.errors import StationOfflineError
from media.participant import AGENT_KEY, ParticipantIdentity, Role
from media.sfu import Sfu
from signaling.access import Access, access_to
from signaling.auth import JwtAuthority, OperatorIdentity, check_board_secret
from signaling.cluster import ClusterPresence, Placement
from signaling.errors import AuthError, ForbiddenError, NotFoundError
from signaling.ice import IcePlan
from signaling.nodelink import ForwardedOperator, NodeLink
from signaling.presence import Presence
from signaling.store import Board, Store, TxSession

if TYPE_CHECKING:
    from signaling.workers import WorkerPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSession:
    board_id: str
    owner_id: str | None  # None: provisioned, not paired yet
    name: str


class StationService:
    def __init__(
        self,
        store: Store,
        sfu: Sfu,
        presence: Presence,
        authority: JwtAuthority,
        ice: IcePlan,
        max_sdp_chars: int = protocol.MAX_SDP_CHARS,
        node_link: NodeLink | None = None,
        relay_listeners: bool = True,
    ) -> None:
        self._max_sdp_chars = max_sdp_chars
        #: With several nodes: listen-only operators of a station on another node are served by
        #: this node's relay of it (`media.relay`), not forwarded there.
        self.relay_listeners = relay_listeners
        #: This node's media workers, once started (`signaling.workers`): listen-only operators
        #: of its stations are placed on the least loaded.
        self.workers: WorkerPool | None = None
        #: With several nodes: operators' requests for a station on another node go there.
        self.node_link = node_link
        self._store = store
        #: Whether an exception says the database did not answer (`Store.is_outage`).
        self.is_outage = store.is_outage
        self._sfu = sfu
        self._presence = presence
        self._authority = authority
        self._ice = ice

    def welcome(self, session: AgentSession) -> protocol.AgentWelcome:
        """What the agent of `session` is to use: its ICE servers (its own TURN credentials)."""
        return protocol.AgentWelcome(
            board_id=session.board_id,
            name=session.name,
            ice_servers=self._ice.for_peer(session.board_id),
            ice_transport_policy=self._ice.policy,
        )

    # -- board agents ----------------------------------------------------------------------

    async def authenticate_agent(self, auth: protocol.AgentAuth) -> AgentSession:
        board = await self._store.get_board(auth.board_id)
        # the same answer for an unknown board and a wrong secret: no board-id oracle
        if board is None or not check_board_secret(auth.secret, board.secret_hash):
            raise AuthError("unknown board or wrong secret")
        return AgentSession(board_id=board.id, owner_id=board.owner_id, name=board.name)

    def placement(self, session: AgentSession, auth: protocol.AgentAuth) -> Placement | None:
        """The node the station of `session` goes on instead of this one, with several nodes
        and an agent that names others it can reach (`ClusterPresence.place`); None: here."""
        presence = self._presence
        if not auth.other_servers or not isinstance(presence, ClusterPresence):
            return None
        return presence.place(session.board_id, auth.other_servers)

    def worker_listeners(self) -> int:
        """Listeners this node placed on its media workers (0 without workers)."""
        return 0 if self.workers is None else sum(self.workers.load().values())

    async def agent_connected(self, session: AgentSession, connection_id: str) -> str | None:
        """Record the agent's signaling connection; returns the connection it replaces, if any.
        (The station is online only once its media is up: see `signaling.presence`.)"""
        replaced = self._presence.agent_connected(session.board_id, connection_id)
        await self._store.touch_board(session.board_id, datetime.now(UTC))
        return replaced

    def _check_sdp(self, sdp: str) -> None:
        if len(sdp) > self._max_sdp_chars:
            raise protocol.ProtocolError(
                protocol.ErrorCode.TOO_LARGE,
                f"the SDP has {len(sdp)} characters; this server takes at most "
                f"{self._max_sdp_chars}",
            )

    async def station_released(self, session: AgentSession, released_at: float) -> None:
        """The station says when it last confirmed its transmitter unkeyed: a TX record the
        server closed at a restart (it could not know) ends then instead."""
        when = datetime.fromtimestamp(released_at, UTC)
        if when > datetime.now(UTC):
            return  # the station's clock is ahead: the restart time is the better bound
        await self._store.settle_open_tx(session.board_id, "server_restart", when)

    async def agent_offer(self, session: AgentSession, offer: protocol.AgentOffer) -> str:
        self._check_sdp(offer.sdp)
        return await self._sfu.connect_agent(session.board_id, session.name, offer.sdp)

    async def agent_candidate(self, session: AgentSession, msg: protocol.AgentCandidate) -> None:
        await self._sfu.add_candidate(
            session.board_id, AGENT_KEY, msg.candidate, msg.sdpMid, msg.sdpMLineIndex
        )

    async def agent_disconnected(self, session: AgentSession, connection_id: str) -> bool:
        """Forget the agent, and its media, if `connection_id` is still its connection; True
        when it was."""
        if not self._presence.agent_disconnected(session.board_id, connection_id):
            return False
        await self._sfu.disconnect(session.board_id, AGENT_KEY)
        # the board may have been deleted (with its owner's account): nothing to record then
        with contextlib.suppress(NotFoundError):
            await self._store.touch_board(session.board_id, datetime.now(UTC))
        return True

    # -- operators -------------------------------------------------------------------------

    async def authenticate_operator(self, token: str) -> OperatorIdentity:
        """Who a token speaks for; `AuthError` if it is refused or its account is gone (a token
        outlives the account it was issued to until it expires)."""
        identity = self._authority.verify(token)
        if await self._store.get_user(identity.user_id) is None:
            raise AuthError("the account no longer exists")
        return identity

    def _info(self, board: Board) -> protocol.BoardInfo:
        return protocol.BoardInfo(
            id=board.id, name=board.name, online=self._presence.is_online(board.id)
        )

    async def boards_for(self, operator: OperatorIdentity) -> list[protocol.BoardInfo]:
        """The operator's own boards, those granted to them, and those they booked (a booking
        that has not ended: joining is refused, saying when it starts, until it does)."""
        own = await self._store.boards_of(operator.user_id)
        granted = [board for board, _ in await self._store.boards_granted_to(operator.user_id)]
        boards = {b.id: b for b in own + granted}
        now = datetime.now(UTC)
        for booking in await self._store.bookings_of_user(operator.user_id):
            if booking.ends_at > now and booking.board_id not in boards:
                board = await self._store.get_board(booking.board_id)
                if board is not None and board.owner_id is not None:
                    boards[board.id] = board
        return [self._info(b) for b in boards.values()]

    async def _access(self, operator: OperatorIdentity, board_id: str) -> tuple[Board, Access]:
        """The board and what the operator may do there now, from the store
        (`signaling.access`); refuses those with no access, saying why."""
        access = await access_to(self._store, board_id, operator.user_id, datetime.now(UTC))
        return access.admitted(), access

    async def join(self, operator: OperatorIdentity, board_id: str) -> protocol.JoinReply:
        board, access = await self._access(operator, board_id)
        return protocol.JoinReply(
            board=self._info(board),
            ice_servers=self._ice.for_peer(operator.user_id),
            ice_transport_policy=self._ice.policy,
            can_transmit=access.may_transmit,
            is_owner=access.is_owner,
        )

    async def operator_offer(
        self, operator: OperatorIdentity, connection_id: str, offer: protocol.OperatorOffer
    ) -> str:
        self._check_sdp(offer.sdp)
        board, access = await self._access(operator, offer.board_id)
        home = self._presence.home(board.id)
        if home is None:
            raise StationOfflineError("the station is offline")
        if home != self._presence.node:
            if self.node_link is None:
                raise StationOfflineError(
                    f"the station is connected to another server node ({home}), which this "
                    "node cannot reach"
                )
            if self.relay_listeners and not (access.may_transmit or access.is_owner):
                # a listener: served by this node, through its relay of the station
                link = self.node_link
                listener = ParticipantIdentity(
                    key=connection_id,
                    role=Role.OPERATOR,
                    callsign=operator.callsign,
                    user_id=operator.user_id,
                )

                async def open_upstream(sdp: str) -> str:
                    return await link.relay(home, board.id, sdp)

                return await self._sfu.connect_relayed(
                    board.id, listener, offer.sdp, open_upstream, source=home
                )
            # the station's node makes the operator a participant there (signaling.nodelink)
            forwarded = ForwardedOperator(
                board_id=board.id,
                connection_id=connection_id,
                user_id=operator.user_id,
                callsign=operator.callsign,
                can_transmit=access.may_transmit,
                is_owner=access.is_owner,
            )
            return await self.node_link.offer(home, forwarded, offer.sdp)
        workers = self.workers
        if workers is not None and not (access.may_transmit or access.is_owner):
            here = self._sfu.listeners()
            worker = workers.place(here)
            logger.info(
                "listener %s of board %s placed on %s (listeners: here %d, workers %s)",
                operator.callsign,
                board.id,
                worker or "this process",
                here,
                workers.load(),
                extra={"board_id": board.id, "operator_id": operator.user_id},
            )
            if worker is not None:
                placed = ForwardedOperator(
                    board_id=board.id,
                    connection_id=connection_id,
                    user_id=operator.user_id,
                    callsign=operator.callsign,
                    can_transmit=False,
                    is_owner=False,
                )
                return await workers.offer(worker, placed, offer.sdp)
        identity = ParticipantIdentity(
            key=connection_id,
            role=Role.OPERATOR,
            callsign=operator.callsign,
            user_id=operator.user_id,
            can_transmit=access.may_transmit,
            is_owner=access.is_owner,
        )
        return await self._sfu.connect_operator(board.id, identity, offer.sdp)

    def links(self) -> list[NodeLink]:
        """Where this node passes operators on: other nodes, its workers."""
        links = [self.node_link] if self.node_link is not None else []
        return links + ([self.workers.link] if self.workers is not None else [])

    async def operator_candidate(self, connection_id: str, msg: protocol.OperatorCandidate) -> bool:
        for link in self.links():
            if await link.candidate(
                msg.board_id, connection_id, msg.candidate, msg.sdpMid, msg.sdpMLineIndex
            ):
                return True
        return await self._sfu.add_candidate(
            msg.board_id, connection_id, msg.candidate, msg.sdpMid, msg.sdpMLineIndex
        )

    async def leave(self, connection_id: str, board_id: str) -> None:
        for link in self.links():
            if await link.leave(board_id, connection_id):
                return
        await self._sfu.disconnect(board_id, connection_id)

    async def audience_of(self, board_id: str) -> list[str]:
        """User ids who may see this board's presence: its owner, grantees and the guest whose
        booking runs now."""
        board = await self._store.get_board(board_id)
        if board is None:
            return []
        owner = [] if board.owner_id is None else [board.owner_id]
        users = [*owner, *await self._store.grantees(board_id)]
        booking = await self._store.booking_at(board_id, datetime.now(UTC))
        if booking is not None and booking.user_id not in users:
            users.append(booking.user_id)
        return users

    async def tx_log(self, operator: OperatorIdentity, board_id: str) -> list[TxSession]:
        """The board's TX audit log; only its owner may read it."""
        board, access = await self._access(operator, board_id)
        if not access.is_owner:
            raise ForbiddenError("only the board's owner may read its TX log")
        return await self._store.tx_sessions(board.id)
