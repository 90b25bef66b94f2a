"""Socket.IO namespaces: thin. Each event is parsed strictly, handed to the station service,
and answered with an ack (`{"ok": true, ...}` or `{"ok": false, "error": {...}}`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import msgspec
import socketio

import radiocore_protocol as protocol
from media.errors import MediaError
from media.participant import AGENT_KEY, MediaFailure
from media.ratelimit import RateLimiter
from radiocore_protocol import ErrorCode, ProtocolError
from signaling.auth import OperatorIdentity
from signaling.errors import NotJoinedError, SignalingError, UnavailableError
from signaling.stations import AgentSession, StationService

logger = logging.getLogger(__name__)

Handler = Callable[[str, Any], Awaitable[msgspec.Struct | None]]


class StrictNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Dispatches events from a table of (payload type, handler); refuses anything else, and
    more than `max_events_per_second` events a second from one connection."""

    events: dict[str, tuple[type[msgspec.Struct], Handler]]

    def __init__(self, namespace: str, max_events_per_second: int) -> None:
        super().__init__(namespace)
        self._rate = max_events_per_second
        self._limits: dict[str, RateLimiter] = {}
        self._telling: set[asyncio.Task[None]] = set()
        #: Connections refused at connect (bad credentials) and events refused for their rate,
        #: since start (`GET /metrics`).
        self.refused = 0
        self.rate_limited = 0

    def tell_media_failed(self, sid: str, board_id: str, failure: MediaFailure) -> None:
        """Send `error` `media_failed` to `sid` from synchronous code (the SFU's callbacks)."""
        body = protocol.MediaFailed(
            message=failure.message, reason=failure.reason, board_id=board_id
        )
        task = asyncio.get_running_loop().create_task(
            self.emit("error", protocol.to_builtins(body), to=sid)
        )
        self._telling.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._telling.discard)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            if event == "disconnect" and args:
                self._limits.pop(args[0], None)
            return await super().trigger_event(event, *args)
        sid = args[0]
        limiter = self._limits.get(sid)
        if limiter is None:
            limiter = self._limits[sid] = RateLimiter(self._rate)
        if not limiter.allow():
            self.rate_limited += 1
            return protocol.failure(ErrorCode.RATE_LIMITED, "too many events; slow down")
        entry = self.events.get(event)
        if entry is None:
            message = f"unknown event {event[:64]!r}"
            await self.emit(
                "error", {"code": ErrorCode.UNKNOWN_EVENT.value, "message": message}, to=sid
            )
            return protocol.failure(ErrorCode.UNKNOWN_EVENT, message)
        payload_type, handler = entry
        if len(args) > 2:
            return protocol.failure(ErrorCode.BAD_REQUEST, "an event takes one JSON object")
        raw = args[1] if len(args) == 2 else {}
        try:
            payload = protocol.decode_payload(payload_type, raw)
            reply = await handler(sid, payload)
        except (ProtocolError, MediaError) as exc:
            logger.info("%s %s refused: %s", self.namespace, event, exc.message)
            return protocol.failure(exc.code, exc.message)
        except SignalingError as exc:
            logger.info("%s %s refused: %s", self.namespace, event, exc.message)
            return exc.to_ack()
        except Exception as exc:
            if self._service.is_outage(exc):  # nothing was written: the client may retry
                logger.warning("%s %s: the database did not answer", self.namespace, event)
                return UnavailableError().to_ack()
            logger.exception("%s %s failed", self.namespace, event)
            return protocol.failure(ErrorCode.INTERNAL, "the server failed; nothing was changed")
        return protocol.ok(reply)


def refuse(code: ErrorCode, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refusal; the client's `connect_error` gets `{message, data: {code, message}}`."""
    body = {"code": code.value, "message": message}
    return socketio.exceptions.ConnectionRefusedError(message, body)


def placed_elsewhere(server: str, node: str) -> socketio.exceptions.ConnectionRefusedError:
    """A board agent's refusal with `placed_elsewhere`: its station goes on node `node`, which
    it reaches at `server` (its own spelling, from `AgentAuth.other_servers`)."""
    message = f"this station is placed on the less loaded node {node}: connect to {server}"
    body = protocol.to_builtins(
        protocol.PlacedElsewhere(code=ErrorCode.PLACED_ELSEWHERE, message=message, server=server)
    )
    return socketio.exceptions.ConnectionRefusedError(message, body)


class Empty(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Payload of events that take no fields."""


class AgentNamespace(StrictNamespace):
    """`/agent`: one connection per board agent, authenticated by the board secret."""

    def __init__(self, service: StationService, max_events_per_second: int) -> None:
        super().__init__(protocol.AGENT_NAMESPACE, max_events_per_second)
        self._service = service
        self._sessions: dict[str, AgentSession] = {}
        #: Agents sent to a less loaded node at connect, since start (`GET /metrics`).
        self.placed = 0
        self.events = {
            "hello": (protocol.AgentHello, self._hello),
            "offer": (protocol.AgentOffer, self._offer),
            "ice_candidate": (protocol.AgentCandidate, self._candidate),
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        try:
            credentials = protocol.decode_payload(protocol.AgentAuth, auth)
            session = await self._service.authenticate_agent(credentials)
        except (ProtocolError, SignalingError) as exc:
            self.refused += 1
            logger.warning("board agent refused: %s", exc.message)
            raise refuse(ErrorCode.UNAUTHORIZED, exc.message) from None
        except Exception as exc:
            if not self._service.is_outage(exc):
                raise
            # not its credentials: the agent retries with its backoff
            logger.warning("board agent not admitted now: the database did not answer")
            raise refuse(ErrorCode.UNAVAILABLE, UnavailableError.default_message) from None
        placement = self._service.placement(session, credentials)
        if placement is not None:
            self.placed += 1
            logger.info(
                "board %s placed on node %s (%d peer connections) rather than here (%d): its "
                "agent is sent to %s",
                session.board_id,
                placement.node,
                placement.load,
                placement.here,
                placement.server,
                extra={"board_id": session.board_id},
            )
            raise placed_elsewhere(placement.server, placement.node)
        self._sessions[sid] = session
        replaced = await self._service.agent_connected(session, sid)
        board = {"board_id": session.board_id}
        if replaced is not None:
            logger.info(
                "board %s reconnected; dropping its previous connection",
                session.board_id,
                extra=board,
            )
            self._sessions.pop(replaced, None)
            await self.disconnect(replaced)
        logger.info(
            "board agent for %s (%s) connected", session.board_id, session.name, extra=board
        )

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None and await self._service.agent_disconnected(session, sid):
            logger.info(
                "board agent for %s disconnected",
                session.board_id,
                extra={"board_id": session.board_id},
            )

    def media_failed(self, board_id: str, key: str, failure: MediaFailure) -> None:
        """The SFU gave up on a board agent's peer connection: tell that agent."""
        if key != AGENT_KEY:
            return
        for sid, session in list(self._sessions.items()):
            if session.board_id == board_id:
                self.tell_media_failed(sid, board_id, failure)

    async def disconnect_boards(self, board_ids: Collection[str]) -> int:
        """Disconnect the agents of these boards at once (their boards were deleted: they
        cannot connect again); how many connections there were."""
        sids = [sid for sid, s in list(self._sessions.items()) if s.board_id in board_ids]
        for sid in sids:
            await self.disconnect(sid)
        return len(sids)

    def _session(self, sid: str) -> AgentSession:
        session = self._sessions.get(sid)
        if session is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "not connected as a board agent")
        return session

    async def _hello(self, sid: str, hello: protocol.AgentHello) -> protocol.AgentWelcome:
        session = self._session(sid)
        if hello.ptt_released_at is not None:
            await self._service.station_released(session, hello.ptt_released_at)
        return self._service.welcome(session)

    async def _offer(self, sid: str, offer: protocol.AgentOffer) -> protocol.Answer:
        sdp = await self._service.agent_offer(self._session(sid), offer)
        return protocol.Answer(type="answer", sdp=sdp)

    async def _candidate(self, sid: str, msg: protocol.AgentCandidate) -> None:
        await self._service.agent_candidate(self._session(sid), msg)


class OperatorNamespace(StrictNamespace):
    """`/operator`: browsers and operator programs, authenticated by JWT."""

    def __init__(
        self,
        service: StationService,
        max_events_per_second: int,
        *,
        max_connections_per_user: int = 16,
        max_boards_per_connection: int = 8,
    ) -> None:
        super().__init__(protocol.OPERATOR_NAMESPACE, max_events_per_second)
        self._service = service
        self._max_connections = max_connections_per_user
        self._max_boards = max_boards_per_connection
        self._identities: dict[str, OperatorIdentity] = {}
        self._joined: dict[str, set[str]] = {}
        self.events = {
            "list_boards": (Empty, self._list_boards),
            "join": (protocol.JoinRequest, self._join),
            "offer": (protocol.OperatorOffer, self._offer),
            "ice_candidate": (protocol.OperatorCandidate, self._candidate),
            "leave": (protocol.LeaveRequest, self._leave),
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        try:
            credentials = protocol.decode_payload(protocol.OperatorAuth, auth)
            identity = await self._service.authenticate_operator(credentials.token)
        except (ProtocolError, SignalingError) as exc:
            self.refused += 1
            logger.info("operator refused: %s", exc.message)
            raise refuse(ErrorCode.UNAUTHORIZED, exc.message) from None
        except Exception as exc:
            if not self._service.is_outage(exc):
                raise
            logger.warning("operator not admitted now: the database did not answer")
            raise refuse(ErrorCode.UNAVAILABLE, UnavailableError.default_message) from None
        open_now = sum(1 for i in self._identities.values() if i.user_id == identity.user_id)
        if open_now >= self._max_connections:
            self.rate_limited += 1
            logger.info(
                "operator %s refused: %d connections open",
                identity.callsign,
                open_now,
                extra={"operator_id": identity.user_id},
            )
            raise refuse(
                ErrorCode.RATE_LIMITED,
                f"this account already has {open_now} connections open to this server (the "
                "most it may); close another tab, device or program first",
            )
        self._identities[sid] = identity
        self._joined[sid] = set()
        await self.enter_room(sid, _user_room(identity.user_id))
        logger.info(
            "operator %s connected", identity.callsign, extra={"operator_id": identity.user_id}
        )

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        identity = self._identities.pop(sid, None)
        for board_id in self._joined.pop(sid, set()):
            await self._service.leave(sid, board_id)
            if identity is not None:
                logger.info(
                    "operator %s left board %s (disconnected)",
                    identity.callsign,
                    board_id,
                    extra=_context(identity, board_id),
                )

    @property
    def connected(self) -> int:
        """Operator connections open now (`GET /metrics`)."""
        return len(self._identities)

    async def announce(self, board_id: str, online: bool) -> None:
        """Tell every connected operator who may use the board that it went on/offline."""
        presence = protocol.to_builtins(protocol.Presence(board_id=board_id, online=online))
        for user_id in await self._service.audience_of(board_id):
            await self.emit("presence", presence, room=_user_room(user_id))

    def media_failed(self, board_id: str, key: str, failure: MediaFailure) -> None:
        """The SFU gave up on an operator's peer connection for a board: tell that operator
        (participants are keyed by their Socket.IO connection)."""
        if key in self._identities:
            self.tell_media_failed(key, board_id, failure)

    async def access_ended(self, board_id: str, key: str, message: str) -> None:
        """The operator `key`'s access to the board ended (`signaling.access.AccessWatch`):
        its join is forgotten and it is told why; the watch then closes its media."""
        joined = self._joined.get(key)
        if joined is None:
            return
        joined.discard(board_id)
        body = protocol.AccessEnded(message=message, board_id=board_id)
        await self.emit("error", protocol.to_builtins(body), to=key)

    async def disconnect_user(self, user_id: str) -> int:
        """Disconnect every connection of the user at once (their account was deleted: their
        tokens no longer open one); how many there were. Their media goes with them."""
        sids = [sid for sid, who in list(self._identities.items()) if who.user_id == user_id]
        for sid in sids:
            await self.disconnect(sid)
        return len(sids)

    def _identity(self, sid: str) -> OperatorIdentity:
        identity = self._identities.get(sid)
        if identity is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "not connected as an operator")
        return identity

    def _check_room_to_join(self, joined: set[str], board_id: str) -> None:
        """`rate_limited` when joining `board_id` would pass `max_boards_per_connection`."""
        if board_id not in joined and len(joined) >= self._max_boards:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"this connection has joined {len(joined)} boards (the most it may); leave one "
                "first",
            )

    def _require_joined(self, sid: str, board_id: str) -> None:
        if board_id not in self._joined.get(sid, set()):
            raise NotJoinedError()

    async def _list_boards(self, sid: str, _: Empty) -> protocol.BoardListReply:
        return protocol.BoardListReply(boards=await self._service.boards_for(self._identity(sid)))

    async def _join(self, sid: str, request: protocol.JoinRequest) -> protocol.JoinReply:
        identity = self._identity(sid)
        self._check_room_to_join(self._joined[sid], request.board_id)
        reply = await self._service.join(identity, request.board_id)
        # read again after the access check: the connection may have closed meanwhile, or
        # another join of it may have taken the last place
        joined = self._joined.get(sid)
        if joined is None:
            raise NotJoinedError("the connection closed while it was joining")
        self._check_room_to_join(joined, request.board_id)
        joined.add(request.board_id)
        logger.info(
            "operator %s joined board %s",
            identity.callsign,
            request.board_id,
            extra=_context(identity, request.board_id),
        )
        return reply

    async def _offer(self, sid: str, offer: protocol.OperatorOffer) -> protocol.Answer:
        identity = self._identity(sid)
        self._require_joined(sid, offer.board_id)
        sdp = await self._service.operator_offer(identity, sid, offer)
        if offer.board_id not in self._joined.get(sid, ()):
            # it disconnected or left the board while the answer was made: nobody will use
            # that peer connection, so it goes now (not when the media bound runs out)
            await self._service.leave(sid, offer.board_id)
            raise NotJoinedError("you left the board while the server answered your offer")
        return protocol.Answer(type="answer", sdp=sdp)

    async def _candidate(self, sid: str, msg: protocol.OperatorCandidate) -> None:
        self._identity(sid)
        self._require_joined(sid, msg.board_id)
        await self._service.operator_candidate(sid, msg)

    async def _leave(self, sid: str, request: protocol.LeaveRequest) -> None:
        identity = self._identity(sid)
        joined = request.board_id in self._joined[sid]
        self._joined[sid].discard(request.board_id)
        await self._service.leave(sid, request.board_id)
        if joined:
            logger.info(
                "operator %s left board %s",
                identity.callsign,
                request.board_id,
                extra=_context(identity, request.board_id),
            )


def _user_room(user_id: str) -> str:
    return f"user:{user_id}"


def _context(identity: OperatorIdentity, board_id: str) -> dict[str, str]:
    """The ids a log line about an operator on a board carries (JSON logs)."""
    return {"board_id": board_id, "operator_id": identity.user_id}
