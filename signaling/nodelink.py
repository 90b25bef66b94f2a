"""Reaching a station through any node (issue 11): the node an operator is connected to (its
"edge") forwards the operator's offer, trickled candidates and leaving to the node the station's
agent is on (its "home"), whose SFU makes the operator a participant of the station's room like
any other — floor, PTT, status and audio all as on one node. Only signaling takes the detour;
the media flows between the operator and the home node, whose media ports (or TURN) the
operator must reach.

Between nodes: `POST {home}api/internal/node/{offer,candidate,leave}` with a JSON body, signed
with a key derived from the shared `secret` (`X-RadioCore-Node`: the sender's name,
`X-RadioCore-Time`: unix seconds, `X-RadioCore-Signature`: HMAC-SHA256 over the three and the
path and body, refused beyond `MAX_SKEW_S`). A forwarded operator's key at the home node is
`{edge node}|{its connection id}`; what the home node must tell that operator outside its data
channel (its media failed, its access ended) goes to the edge node on the Redis channel
`radiocore:to:{edge node}` (`signaling.cluster`), which tells the operator's connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from media.errors import MediaError, StationOfflineError
from media.participant import MediaFailure, ParticipantIdentity, Role
from radiocore_protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from media.sfu import Sfu
    from signaling.presence import Presence

logger = logging.getLogger(__name__)

#: A signed request older (or newer) than this is refused.
MAX_SKEW_S: Final = 30.0
#: Bound on one request to another node.
REQUEST_TIMEOUT_S: Final = 10.0
#: Between the edge node's name and the connection id in a forwarded operator's key.
KEY_SEPARATOR: Final = "|"
_NODE: Final = "X-RadioCore-Node"
_TIME: Final = "X-RadioCore-Time"
_SIGNATURE: Final = "X-RadioCore-Signature"


class NodeAuthError(Exception):
    """A request between nodes that is not signed by a node of this server."""


class NodeKey:
    """Signs and checks requests between the nodes of one server (all share `secret`)."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        # a key of its own: a signature here can never pass for a JWT signature, nor back
        self._key = hmac.new(secret.encode(), b"radiocore node link", hashlib.sha256).digest()
        self._clock = clock

    def _mac(self, node: str, when: str, path: str, body: bytes) -> str:
        message = b"\n".join([node.encode(), when.encode(), path.encode(), body])
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def headers(self, node: str, path: str, body: bytes) -> dict[str, str]:
        when = str(int(self._clock()))
        return {
            _NODE: node,
            _TIME: when,
            _SIGNATURE: self._mac(node, when, path, body),
            "Content-Type": "application/json",
        }

    def check(self, headers: Any, path: str, body: bytes) -> str:
        """The sending node's name; `NodeAuthError` when the request is not one of ours."""
        node, when, signature = headers.get(_NODE), headers.get(_TIME), headers.get(_SIGNATURE)
        if not (node and when and signature):
            raise NodeAuthError("not signed")
        try:
            skew = abs(self._clock() - int(when))
        except ValueError:
            raise NodeAuthError("bad time") from None
        if skew > MAX_SKEW_S:
            raise NodeAuthError(f"signed {skew:.0f} s away from this node's clock")
        if not hmac.compare_digest(self._mac(node, when, path, body), signature):
            raise NodeAuthError("bad signature")
        return str(node)


def forwarded_key(node: str, connection_id: str) -> str:
    return f"{node}{KEY_SEPARATOR}{connection_id}"


def split_key(key: str) -> tuple[str, str] | None:
    """(edge node, connection id) of a forwarded operator's key; None for a local one."""
    node, separator, connection_id = key.partition(KEY_SEPARATOR)
    return (node, connection_id) if separator else None


@dataclass(frozen=True)
class ForwardedOperator:
    """What the edge node says of the operator it forwards (it checked the operator's access)."""

    board_id: str
    connection_id: str
    user_id: str
    callsign: str
    can_transmit: bool
    is_owner: bool


class NodeLink:
    """The edge side: the operator's requests sent to the station's home node."""

    def __init__(
        self,
        node: str,
        key: NodeKey,
        node_url: Callable[[str], Awaitable[str | None]],
        *,
        verify_tls: bool = True,
    ) -> None:
        """`verify_tls` False: a worker reaching its own main process on loopback, whose
        certificate names the public host."""
        self.node = node
        self._key = key
        self._node_url = node_url
        self._verify_tls = verify_tls
        self._http: aiohttp.ClientSession | None = None
        #: (connection id, board id) -> the home node its peer connection is on.
        self.forwarded: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _post(self, home: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
        url = await self._node_url(home)
        if url is None:
            raise StationOfflineError(f"the station's server node ({home}) cannot be reached")
        path = f"/api/internal/node/{what}"
        data = json.dumps(body).encode()
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                connector=aiohttp.TCPConnector(ssl=self._verify_tls),
            )
        try:
            async with self._http.post(
                url.rstrip("/") + path, data=data, headers=self._key.headers(self.node, path, data)
            ) as reply:
                if reply.status != 200:
                    logger.warning(
                        "node %s answered %s to %s: %s",
                        home,
                        reply.status,
                        path,
                        (await reply.text())[:200],
                    )
                    why = (
                        "refused this node (do all nodes share the same secret?)"
                        if reply.status == 403
                        else f"answered HTTP {reply.status}"
                    )
                    raise StationOfflineError(f"the station's server node ({home}) {why}")
                answer: dict[str, Any] = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise StationOfflineError(
                f"the station's server node ({home}) did not answer: {type(exc).__name__}"
            ) from None
        error = answer.get("error")
        if isinstance(error, dict):
            try:
                code = ErrorCode(error.get("code"))
            except ValueError:
                code = ErrorCode.INTERNAL
            raise ProtocolError(code, str(error.get("message", "")))
        return answer

    async def offer(self, home: str, operator: ForwardedOperator, sdp: str) -> str:
        body = {**operator.__dict__, "sdp": sdp}
        answer = await self._post(home, "offer", body)
        self.forwarded[(operator.connection_id, operator.board_id)] = home
        return str(answer["sdp"])

    async def candidate(
        self,
        board_id: str,
        connection_id: str,
        candidate: str,
        sdp_mid: str | None,
        index: int | None,
    ) -> bool:
        home = self.forwarded.get((connection_id, board_id))
        if home is None:
            return False
        body = {
            "board_id": board_id,
            "connection_id": connection_id,
            "candidate": candidate,
            "sdpMid": sdp_mid,
            "sdpMLineIndex": index,
        }
        await self._post(home, "candidate", body)
        return True

    async def relay(self, home: str, board_id: str, sdp: str) -> str:
        """This node's relay of the station (`media.relay`): the home node's answer to its
        offer."""
        answer = await self._post(home, "relay", {"board_id": board_id, "sdp": sdp})
        return str(answer["sdp"])

    async def event(self, node: str, event: dict[str, Any]) -> None:
        """Tell node `node` an event of an operator it forwarded here (a worker to its main
        process; between nodes such events go through Redis)."""
        await self._post(node, "event", event)

    async def leave(self, board_id: str, connection_id: str) -> bool:
        """Tell the home node the operator left; False when it was not forwarded."""
        home = self.forwarded.pop((connection_id, board_id), None)
        if home is None:
            return False
        try:
            await self._post(home, "leave", {"board_id": board_id, "connection_id": connection_id})
        except (ProtocolError, StationOfflineError) as exc:  # its peer connection ends anyway
            logger.info("telling node %s that an operator left failed: %s", home, exc)
        return True


# -- the home side ----------------------------------------------------------------------------

_Handler = Callable[[web.Request], Awaitable[web.Response]]


async def read_signed(key: NodeKey, request: web.Request) -> tuple[str, dict[str, Any]]:
    """The sending node's name and the JSON object a request between nodes carries; 403 when
    it is not signed by a node of this server, 400 when it is not a JSON object."""
    body = await request.read()
    if len(body) > 256 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=256 * 1024, actual_size=len(body))
    try:
        sender = key.check(request.headers, request.path, body)
    except NodeAuthError as exc:
        logger.warning("refused a node request to %s: %s", request.path, exc)
        raise web.HTTPForbidden() from None
    try:
        data = json.loads(body)
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="not a JSON object")
    return sender, data


def refusal(code: ErrorCode, message: str) -> web.Response:
    """A refusal as the operator would get it on one node (the edge node passes it on)."""
    return web.json_response({"error": {"code": code.value, "message": message}})


def checked(handler: _Handler) -> _Handler:
    """`handler` with a missing or mistyped field answered 400 instead of 500."""

    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (KeyError, TypeError, ValueError) as exc:  # a field missing or mistyped
            raise web.HTTPBadRequest(text=f"bad request: {type(exc).__name__}") from None

    return run


def forwarded_identity(sender: str, data: dict[str, Any]) -> ParticipantIdentity:
    """The participant a forwarded operator (`ForwardedOperator`'s fields) is made."""
    return ParticipantIdentity(
        key=forwarded_key(sender, str(data["connection_id"])),
        role=Role.OPERATOR,
        callsign=str(data["callsign"]),
        user_id=str(data["user_id"]),
        can_transmit=bool(data["can_transmit"]),
        is_owner=bool(data["is_owner"]),
    )


def participant_routes(key: NodeKey, sfu_of: Callable[[], Sfu]) -> list[web.RouteDef]:
    """`candidate` and `leave` of a forwarded operator, the same on a node and on a worker."""

    async def candidate(request: web.Request) -> web.Response:
        sender, data = await read_signed(key, request)
        try:
            await sfu_of().add_candidate(
                str(data["board_id"]),
                forwarded_key(sender, str(data["connection_id"])),
                str(data["candidate"]),
                data.get("sdpMid"),
                data.get("sdpMLineIndex"),
            )
        except (MediaError, ProtocolError) as exc:  # a malformed candidate: told as on one node
            return refusal(exc.code, exc.message)
        return web.json_response({"ok": True})

    async def leave(request: web.Request) -> web.Response:
        sender, data = await read_signed(key, request)
        key_ = forwarded_key(sender, str(data["connection_id"]))
        await sfu_of().disconnect(str(data["board_id"]), key_)
        return web.json_response({"ok": True})

    return [
        web.post("/api/internal/node/candidate", checked(candidate)),
        web.post("/api/internal/node/leave", checked(leave)),
    ]


def node_routes(
    key: NodeKey,
    presence_of: Callable[[], Presence],
    sfu_of: Callable[[], Sfu],
    on_event_of: Callable[[], Callable[[dict[str, Any]], None]],
) -> list[web.RouteDef]:
    """The home side's endpoints (the presence and the SFU looked up when a request comes:
    they exist only once the server runs); `event`: what a worker of this node tells it of
    the operators it serves (`signaling.workers`)."""

    def not_here(board_id: str) -> web.Response | None:
        presence = presence_of()
        if presence.home(board_id) != presence.node:
            return refusal(ErrorCode.STATION_OFFLINE, "the station is not on this node now")
        return None

    async def offer(request: web.Request) -> web.Response:
        sender, data = await read_signed(key, request)
        board_id = str(data["board_id"])
        elsewhere = not_here(board_id)
        if elsewhere is not None:
            return elsewhere
        identity = forwarded_identity(sender, data)
        try:
            sdp = await sfu_of().connect_operator(board_id, identity, str(data["sdp"]))
        except (MediaError, ProtocolError) as exc:  # a bad offer too: told as on one node
            return refusal(exc.code, exc.message)
        logger.info("operator %s joined board %s through node %s", identity.callsign, board_id,
                    sender)  # fmt: skip
        return web.json_response({"sdp": sdp})

    async def relay(request: web.Request) -> web.Response:
        sender, data = await read_signed(key, request)
        board_id = str(data["board_id"])
        elsewhere = not_here(board_id)
        if elsewhere is not None:
            return elsewhere
        try:
            sdp = await sfu_of().connect_relay(board_id, sender, str(data["sdp"]))
        except (MediaError, ProtocolError) as exc:
            return refusal(exc.code, exc.message)
        logger.info("node %s relays board %s to its listeners", sender, board_id)
        return web.json_response({"sdp": sdp})

    async def event(request: web.Request) -> web.Response:
        _, data = await read_signed(key, request)
        on_event_of()(data)
        return web.json_response({"ok": True})

    return [
        web.post("/api/internal/node/offer", checked(offer)),
        web.post("/api/internal/node/relay", checked(relay)),
        web.post("/api/internal/node/event", checked(event)),
        *participant_routes(key, sfu_of),
    ]


def media_failed_event(board_id: str, connection_id: str, failure: MediaFailure) -> dict[str, Any]:
    return {
        "kind": "media_failed",
        "board_id": board_id,
        "connection_id": connection_id,
        "reason": failure.reason,
        "message": failure.message,
    }


def access_ended_event(board_id: str, connection_id: str, message: str) -> dict[str, Any]:
    return {
        "kind": "access_ended",
        "board_id": board_id,
        "connection_id": connection_id,
        "message": message,
    }
