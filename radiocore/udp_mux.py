"""One UDP port for every ICE connection of a process (`ice.udp_port`).

A firewall admin opens one port, not a range: every peer connection of the SFU gathers its host
candidate on the same socket per local address, and this module tells their datagrams apart, as
LiveKit's and mediasoup's single-port modes do:

- a STUN binding request goes to the connection whose local ICE username fragment opens its
  USERNAME attribute (`local:remote`; aiortc gives all transports of one peer connection the
  same: then to the one that knows the remote fragment, or does not yet, and has a remote
  candidate at the source address, else to the address's owner), and its source address
  becomes that connection's
  (RFC 8445: the remote side checks from each of its candidates before anything else flows) —
  an address another connection owns only if the request is signed with this connection's
  password;
- a STUN response goes to the connection that sent the request (by transaction ID);
- anything else (DTLS, SRTP, SRTCP, binding indications) goes to the connection that owns its
  source address; a datagram from an address no connection owns is dropped and counted.

aioice is used through public names only: each connection gets a `MuxedStunProtocol` (an
aioice `StunProtocol` whose transport is this socket's, seen through `_SharedTransport`); aioice
authenticates the requests as usual (a forged request with a known username fragment moves
nothing but the forger's own address). Sockets are opened per (address, port) on first use or
by `open_muxes` at start, and closed when the last user `release`s the port.

One socket per address is also what a batched send (`sendmmsg`) needs.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterable
from typing import Any, cast

import aioice.ice
import aioice.stun

logger = logging.getLogger(__name__)

_STUN_HEADER = 20
_STUN_COOKIE = b"\x21\x12\xa4\x42"
_BINDING_REQUEST = 0x0001
_USERNAME = 0x0006
#: The class bits of a STUN message type that make it a success or error response.
_RESPONSE_BIT = 0x0100
#: Send and receive buffers of a shared socket (every listener's packets pass through it).
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


def _request_username(data: bytes) -> tuple[str, str] | None:
    """The (local, remote) username fragments of a STUN binding request (USERNAME
    `local:remote`), read without parsing the whole message; None if it is not one or has no
    USERNAME."""
    if len(data) < _STUN_HEADER or data[4:8] != _STUN_COOKIE:
        return None
    if int.from_bytes(data[0:2], "big") != _BINDING_REQUEST:
        return None
    end = min(len(data), _STUN_HEADER + int.from_bytes(data[2:4], "big"))
    pos = _STUN_HEADER
    while pos + 4 <= end:
        kind = int.from_bytes(data[pos : pos + 2], "big")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if kind == _USERNAME:
            value = data[pos + 4 : pos + 4 + length]
            try:
                local, _, remote = value.decode("utf-8").partition(":")
            except UnicodeDecodeError:
                return None
            return local, remote
        pos += 4 + length + (-length % 4)
    return None


def _signed_for(data: bytes, protocol: MuxedStunProtocol) -> bool:
    """True when the binding request `data` carries a MESSAGE-INTEGRITY made with the password
    of `protocol`'s connection: only such a request takes an address another connection owns
    (a request with a forged source address and someone's username fragment moves nothing)."""
    try:
        message = aioice.stun.parse_message(data)
    except ValueError:
        return False
    return message.check_message_integrity(protocol.receiver.local_password.encode("utf8"))


class UdpMux(asyncio.DatagramProtocol):
    """The socket of one (address, port) and the connections that share it."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None
        #: Connections by local ICE username fragment: aiortc gives every transport of one
        #: peer connection the same (an offer's audio and data before BUNDLE settles; an
        #: answer's m-lines when the offer has no BUNDLE group).
        self._by_ufrag: dict[str, list[MuxedStunProtocol]] = {}
        self._by_addr: dict[tuple[Any, Any], MuxedStunProtocol] = {}
        self._by_transaction: dict[bytes, MuxedStunProtocol] = {}
        #: Datagrams no connection owned (dropped).
        self.unclaimed = 0

    async def open(self) -> None:
        """Bind the socket; OSError (with the address and port) when it cannot be bound."""
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.address, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"cannot bind UDP {self.address} port {self.port}: {exc.strerror}"
            ) from None
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self.sock = sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for group in list(self._by_ufrag.values()):
            for protocol in group:
                protocol.connection_lost(exc)
        self._by_ufrag.clear()
        self._by_addr.clear()
        self._by_transaction.clear()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def attach(self, connection: aioice.ice.Connection) -> MuxedStunProtocol:
        """A protocol for `connection` on this socket (one per connection and address)."""
        if self.transport is None:
            raise OSError(f"UDP {self.address} port {self.port} is closed")
        group = self._by_ufrag.setdefault(connection.local_username, [])
        if any(p.receiver is connection for p in group):  # a second component (no rtcp-mux)
            raise OSError(f"ICE connection {connection.local_username!r} is already on this port")
        protocol = MuxedStunProtocol(connection, self)
        group.append(protocol)
        protocol.connection_made(_SharedTransport(self, protocol))
        return protocol

    def detach(self, protocol: MuxedStunProtocol) -> None:
        """Forget `protocol` (its connection closes): its datagrams are dropped from now on."""
        group = self._by_ufrag.get(protocol.ufrag, [])
        if protocol in group:
            group.remove(protocol)
            if not group:
                del self._by_ufrag[protocol.ufrag]
        for addr in protocol.addresses:
            if self._by_addr.get(addr) is protocol:
                del self._by_addr[addr]
        protocol.addresses.clear()
        for transaction in list(protocol.transactions):
            if self._by_transaction.get(transaction) is protocol:
                del self._by_transaction[transaction]

    def owner_of(self, addr: tuple[Any, ...]) -> MuxedStunProtocol | None:
        """The connection datagrams from `addr` go to (None: dropped)."""
        return self._by_addr.get((addr[0], addr[1]))

    @property
    def connections(self) -> int:
        return sum(len(group) for group in self._by_ufrag.values())

    def claim(self, protocol: MuxedStunProtocol, addr: tuple[Any, Any]) -> None:
        """Datagrams from `addr` go to `protocol` from now on."""
        owner = self._by_addr.get(addr)
        if owner is protocol:
            return
        if owner is not None:
            owner.addresses.discard(addr)
        self._by_addr[addr] = protocol
        protocol.addresses.add(addr)

    def claim_if_free(self, protocol: MuxedStunProtocol, addr: tuple[Any, Any]) -> None:
        """Datagrams from `addr` go to `protocol` unless another connection has it."""
        if addr not in self._by_addr:
            self.claim(protocol, addr)

    def expect_response(self, protocol: MuxedStunProtocol, transaction: bytes) -> None:
        self._by_transaction[transaction] = protocol

    def forget_response(self, protocol: MuxedStunProtocol, transaction: bytes) -> None:
        if self._by_transaction.get(transaction) is protocol:
            del self._by_transaction[transaction]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        key = (addr[0], addr[1])
        if data and data[0] < 4 and len(data) >= _STUN_HEADER:  # STUN (RFC 7983)
            if data[0] & (_RESPONSE_BIT >> 8):
                protocol = self._by_transaction.get(data[8:20])
                if protocol is not None:
                    protocol.datagram_received(data, addr)
                    return
            else:
                username = _request_username(data)
                if username is not None:
                    protocol = self._addressee(username, key)
                    if protocol is not None:
                        owner = self._by_addr.get(key)
                        if owner is None or (owner is not protocol and _signed_for(data, protocol)):
                            self.claim(protocol, key)
                        protocol.datagram_received(data, addr)
                        return
        owner = self._by_addr.get(key)
        if owner is None:
            self.unclaimed += 1
            return
        if data and data[0] >= 4:  # DTLS, SRTP, SRTCP: straight to the connection (aioice's
            # protocol would first try, and fail, to parse it as STUN)
            owner.receiver.data_received(data, owner.local_candidate.component)
            return
        owner.datagram_received(data, addr)

    def _addressee(
        self, username: tuple[str, str], key: tuple[Any, Any]
    ) -> MuxedStunProtocol | None:
        """The connection a binding request with `username` (local, remote) from `key` is for.
        Of several with that local fragment (one peer connection's transports): of those whose
        remote fragment is that one or not known yet (aiortc starts them one after the other),
        the one with a signalled remote candidate at that address, else one that learned it
        (peer-reflexive), else the one that owns the address, else the first."""
        group = self._by_ufrag.get(username[0])
        if not group:
            return None
        if len(group) == 1:
            return group[0]
        named = [p for p in group if p.receiver.remote_username in (None, username[1])] or group
        for learned in (False, True):
            for protocol in named:
                if any(
                    (c.host, c.port) == key and (c.type == "prflx") == learned
                    for c in protocol.receiver.remote_candidates
                ):
                    return protocol
        owner = self._by_addr.get(key)
        if owner is not None and owner in named:
            return owner
        return named[0]

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP %s port %d: %s", self.address, self.port, exc)


class _SharedTransport(asyncio.DatagramTransport):
    """What one connection's protocol sees of the shared socket: it sends on it; closing it
    detaches the connection and leaves the socket open for the others."""

    def __init__(self, mux: UdpMux, protocol: MuxedStunProtocol) -> None:
        super().__init__()
        self._mux = mux
        self._protocol: MuxedStunProtocol | None = protocol
        #: The socket itself, where `aiortc_hooks.pair_socket` looks for asyncio's own.
        self._sock = mux.sock

    def sendto(self, data: Any, addr: Any = None) -> None:
        transport = self._mux.transport
        if transport is not None and self._protocol is not None:
            transport.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._mux.sock
        if name == "sockname" and self._mux.sock is not None:
            return self._mux.sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._protocol is None

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return
        self._mux.detach(protocol)
        asyncio.get_running_loop().call_soon(protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class MuxedStunProtocol(aioice.ice.StunProtocol):
    """aioice's protocol for one connection on a shared socket (see the module docstring)."""

    def __init__(self, receiver: aioice.ice.Connection, mux: UdpMux) -> None:
        super().__init__(receiver)
        self.mux = mux
        self.ufrag = receiver.local_username
        #: The remote addresses whose datagrams come here.
        self.addresses: set[tuple[Any, Any]] = set()

    async def request(
        self,
        request: aioice.stun.Message,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[aioice.stun.Message, tuple[str, int]]:
        transaction = request.transaction_id
        self.mux.expect_response(self, transaction)
        if integrity_key is not None:  # a connectivity check: that address is the peer's
            self.mux.claim_if_free(self, (addr[0], addr[1]))
        try:
            return await super().request(request, addr, integrity_key, retransmissions)
        finally:
            self.mux.forget_response(self, transaction)


_MUXES: dict[tuple[str, int], UdpMux] = {}
_USERS: dict[int, int] = {}


def use_port(port: int) -> None:
    """One more user (an SFU) of the shared `port`: its sockets stay open until it `release`s."""
    _USERS[port] = _USERS.get(port, 0) + 1


async def open_muxes(addresses: Iterable[str], port: int) -> list[UdpMux]:
    """Bind `port` on each of `addresses` now (a server's start: a port in use is an error
    there, not a missing candidate later): OSError naming the address and port when the port is
    taken or not allowed on any of them, or when none could be bound. An address that cannot be
    bound for another reason (an IPv6 address still tentative, say) is logged and left to later
    connections, which try again."""
    opened: list[UdpMux] = []
    failures: list[OSError] = []
    wanted = list(addresses)
    for address in wanted:
        try:
            opened.append(await mux_for(address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise
            logger.warning("ICE: %s (left out for now)", exc)
            failures.append(exc)
    if wanted and not opened:
        raise failures[0]
    return opened


async def mux_for(address: str, port: int) -> UdpMux:
    """The shared socket of (`address`, `port`), bound on first use."""
    mux = _MUXES.get((address, port))
    if mux is not None and mux.transport is not None:
        return mux
    mux = UdpMux(address, port)
    await mux.open()
    _MUXES[(address, port)] = mux
    logger.info("ICE: every peer connection shares UDP %s port %d", address, port)
    return mux


def muxes(port: int) -> list[UdpMux]:
    """The open shared sockets of `port` (one per local address)."""
    return [m for (_, p), m in _MUXES.items() if p == port and m.transport is not None]


def release(port: int) -> None:
    """One user of `port` fewer; the last one closes its sockets."""
    users = _USERS.get(port, 0) - 1
    if users > 0:
        _USERS[port] = users
        return
    _USERS.pop(port, None)
    for key in [k for k in _MUXES if k[1] == port]:
        _MUXES.pop(key).close()
