"""The forwarding lane, compiled (media/_lane.c) and pure Python (media.lane.PyLane), side by
side: the same packets on the wire, byte for byte, that a listener's SRTP session accepts; the
same RTCP sender-report counters (written into the sender by `sync()`, before each report); the
same refusals of bad input; and the compiled one is built under `make test` (a missing compiler
fails here, it does not fall back silently)."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import pylibsrtp
import pytest

from media import lane
from media.lane import LaneFactory, LaneLike, PyLane
from media.rtp_munger import RtpMunger
from radiocore import aiortc_hooks
from tests.media.lanes import KINDS, compiled_lane, lane_of

KEY = bytes(range(30))  # AES-128 key + 112-bit salt
SSRC = 0x1234ABCD
# the header tail a sender's wiring gives: SSRC, then a one-byte header extension (a=mid "0")
TAIL = SSRC.to_bytes(4, "big") + bytes.fromhex("bede0001") + bytes.fromhex("10300000")
NTP0 = 3_900_000_000 << 32


class Sender:
    """The RTCP counters an aiortc RTCRtpSender keeps (name-mangled), nothing else."""

    def __init__(self) -> None:
        self._RTCRtpSender__ntp_timestamp = 0
        self._RTCRtpSender__rtp_timestamp = 0
        self._RTCRtpSender__octet_count = 0
        self._RTCRtpSender__packet_count = 0


class Dtls:
    def __init__(self) -> None:
        self._RTCDtlsTransport__tx_bytes = 0
        self._RTCDtlsTransport__tx_packets = 0


def session(direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(policy=pylibsrtp.Policy(key=KEY, ssrc_type=direction))


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


@pytest.fixture
def sender_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def wired(kind: LaneFactory, first_seq: int = 100, first_ts: int = 5000) -> tuple[LaneLike, Any]:
    made = kind(48000, first_seq, first_ts)
    sender, dtls = Sender(), Dtls()
    tx = session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    context, protect = aiortc_hooks.srtp_addresses(tx)
    made.wire(0x90, 111, TAIL, tx, context, protect, sender, dtls)
    return made, (sender, dtls, tx)


def test_the_compiled_lane_is_built_and_used_by_default() -> None:
    assert lane.Lane is compiled_lane()
    assert lane.lane_named("auto") is lane.lane_named("compiled") is lane.CompiledLane
    assert lane.lane_named("python") is PyLane
    with pytest.raises(ValueError):
        lane.lane_named("fast")


@pytest.mark.parametrize("name", KINDS)
def test_a_lane_sends_what_the_listener_decrypts_with_its_numbers(
    name: str, receiver: socket.socket, sender_socket: socket.socket
) -> None:
    made, (sender, dtls, _) = wired(lane_of(name))
    made.use_socket(sender_socket, socket.AF_INET, *receiver.getsockname())
    rx = session(pylibsrtp.Policy.SSRC_ANY_INBOUND)
    payloads = [bytes([n]) * (20 + n) for n in range(5)]
    for n, payload in enumerate(payloads):
        assert made.send(7, 40_000 + n, 900_000 + 960 * n, 0x80 * (n == 0), payload, NTP0) is None
    for n, payload in enumerate(payloads):
        data, source = receiver.recvfrom(2048)
        assert source == sender_socket.getsockname()
        plain = rx.unprotect(data)
        assert plain[0] == 0x90 and plain[1] == 111 | (0x80 if n == 0 else 0)
        assert int.from_bytes(plain[2:4], "big") == 100 + n
        assert int.from_bytes(plain[4:8], "big") == 5000 + 960 * n
        assert plain[8:20] == TAIL and plain[20:] == payload
    assert (made.packets, made.octets, made.late, made.send_errors) == (5, 110, 0, 0)
    assert sender._RTCRtpSender__packet_count == 0  # written before a report, not per packet
    made.sync()
    assert sender._RTCRtpSender__packet_count == 5
    assert sender._RTCRtpSender__octet_count == 110
    assert sender._RTCRtpSender__rtp_timestamp == 5000 + 960 * 4
    assert sender._RTCRtpSender__ntp_timestamp == NTP0
    assert dtls._RTCDtlsTransport__tx_packets == 5
    assert dtls._RTCDtlsTransport__tx_bytes == sum(20 + len(p) + 10 for p in payloads)  # + auth tag


def test_both_lanes_put_the_same_bytes_on_the_wire(receiver: socket.socket) -> None:
    """A random stream (loss, reordering, duplicates, source changes, wraps) through both lanes,
    each with its own SRTP session of the same key: identical datagrams, identical counters."""
    rng = random.Random(11)
    events: list[tuple[int, int, int, int, bytes, int]] = []
    source, seq, ts, ntp = 1, 65_500, 2**32 - 50_000, NTP0
    for _ in range(600):  # bounded
        roll = rng.random()
        if roll < 0.02:
            source += 1
            seq, ts = rng.getrandbits(16), rng.getrandbits(32)
        elif roll < 0.1:
            seq -= rng.randint(1, 80)  # reordered, duplicate or too late
        else:
            seq += rng.choice((1, 1, 1, 2, 3))
        ntp += rng.randint(0, 40) << 22
        payload = rng.randbytes(rng.randint(1, 200))
        events.append((source, seq & 0xFFFF, (ts + 960 * seq) & 0xFFFFFFFF, 0, payload, ntp))
    received: dict[str, list[bytes]] = {}
    counters: dict[str, tuple[int, ...]] = {}
    for name in KINDS:
        made, (sender, dtls, _) = wired(lane_of(name), first_seq=65_530, first_ts=2**32 - 100)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.bind(("127.0.0.1", 0))
            made.use_socket(out, socket.AF_INET, *receiver.getsockname())
            for event in events:
                made.send(*event)
            received[name] = [receiver.recv(2048) for _ in range(made.packets)]
        made.sync()
        counters[name] = (
            made.packets,
            made.octets,
            made.late,
            sender._RTCRtpSender__packet_count,
            sender._RTCRtpSender__octet_count,
            sender._RTCRtpSender__rtp_timestamp,
            dtls._RTCDtlsTransport__tx_bytes,
        )
    assert received["python"] == received["compiled"]
    assert counters["python"] == counters["compiled"]
    assert counters["python"][2] > 0  # some came late: the drop rules ran too
    # and the numbers are the reference munger's
    munger = RtpMunger(48000, 65_530, 2**32 - 100)
    rx = session(pylibsrtp.Policy.SSRC_ANY_INBOUND)
    expected = [m for e in events if (m := munger.munge(e[0], e[1], e[2], e[5])) is not None]
    got = [rx.unprotect(d) for d in received["compiled"]]
    assert [(int.from_bytes(p[2:4], "big"), int.from_bytes(p[4:8], "big")) for p in got] == expected


@pytest.mark.parametrize("name", KINDS)
def test_without_a_socket_the_lane_returns_the_protected_packet(name: str) -> None:
    made, (sender, _, _) = wired(lane_of(name))
    made.use_socket(None)
    data = made.send(3, 10, 20, 0, b"opus", NTP0)
    assert data is not None
    plain = session(pylibsrtp.Policy.SSRC_ANY_INBOUND).unprotect(data)
    assert plain[20:] == b"opus" and int.from_bytes(plain[2:4], "big") == 100
    assert made.send(3, 10, 20, 0, b"opus", NTP0) is None  # sent before: dropped, counted late
    made.sync()
    assert (made.packets, made.late, sender._RTCRtpSender__packet_count) == (1, 1, 1)


@pytest.mark.parametrize("name", KINDS)
def test_a_closed_socket_is_never_written_to(name: str, receiver: socket.socket) -> None:
    """A socket closed under the lane (its listener left): nothing is sent on its old number,
    which the kernel may have given to another socket already."""
    made, _ = wired(lane_of(name))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    made.use_socket(out, socket.AF_INET, *receiver.getsockname())
    out.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as reused:  # may take out's number
        reused.bind(("127.0.0.1", 0))
        assert made.send(1, 1, 1, 0, b"x", NTP0) is None
    assert made.send_errors == 1
    receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        receiver.recv(2048)


@pytest.mark.parametrize("name", KINDS)
def test_bad_input_is_refused_and_changes_nothing(name: str) -> None:
    kind = lane_of(name)
    with pytest.raises(ValueError):
        kind(0, 1, 1)
    unwired = kind(48000, 1, 1)
    with pytest.raises(RuntimeError):
        unwired.send(1, 1, 1, 0, b"x", NTP0)
    made, (sender, _, _) = wired(kind)
    with pytest.raises(TypeError):
        made.send(1, 1, 1, 0, "text", NTP0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        made.send(1, 1, 1, 0, bytes(1400), NTP0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(ValueError):
        made.use_socket(sock, socket.AF_INET, "x", 9)
    made.sync()
    assert (made.packets, made.late, sender._RTCRtpSender__packet_count) == (0, 0, 0)
    assert sender._RTCRtpSender__ntp_timestamp == 0  # no packet: no time pair stated
    unwired.sync()  # nothing to write to: nothing happens
    made.use_socket(None)
    assert made.send(1, 1, 1, 0, bytes(1200), NTP0) is not None  # the largest sizes pass


def test_a_batch_puts_on_the_wire_what_each_lane_alone_would(receiver: socket.socket) -> None:
    """`send_many` over lanes sharing one socket (a shared port) and lanes with sockets of their
    own: every listener gets the bytes its lane's `send` gives (the twin lanes below, of the same
    key and numbers), and the same counters; more lanes than one sendmmsg takes (64)."""
    send_many = lane.send_many
    assert send_many is not None
    kind = compiled_lane()
    nominated: dict[int, Any] = {1: "pair"}
    shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    listeners = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(70)]
    try:
        batch, twins = [], []
        for n, listener in enumerate(listeners):
            listener.bind(("127.0.0.1", 0))
            listener.settimeout(2.0)
            made, _ = wired(kind, first_seq=n, first_ts=1000 * n)
            twin, _ = wired(kind, first_seq=n, first_ts=1000 * n)
            out = own[n % 3] if n >= 64 else shared
            made.use_socket(out, socket.AF_INET, *listener.getsockname())
            made.follow(nominated, "pair")
            twin.use_socket(None)
            batch.append(made)
            twins.append(twin)
        events = [
            (5, 300 + i, 48_000 + 960 * i, 0, bytes([i]) * (30 + i), NTP0 + i) for i in range(4)
        ]
        events.append(events[1])  # a duplicate: late everywhere
        for event in events:
            assert send_many(tuple(batch), *event) is None
        for made, twin, listener in zip(batch, twins, listeners, strict=True):
            expected = [d for e in events if (d := twin.send(*e)) is not None]
            assert [listener.recv(2048) for _ in expected] == expected
            assert (made.packets, made.octets, made.late) == (twin.packets, twin.octets, 1)
            assert made.send_errors == 0
    finally:
        for s in (shared, *own, *listeners):
            s.close()


def test_a_batch_leaves_a_lane_that_cannot_go_with_it_to_its_caller(
    receiver: socket.socket, sender_socket: socket.socket
) -> None:
    """Not wired, no socket (a relayed pair's queue), never told what to follow, or ICE
    nominated another pair: those lanes are left untouched and their indexes returned; a closed
    socket counts an error and writes nothing; bad input is refused."""
    send_many = lane.send_many
    assert send_many is not None
    kind = compiled_lane()
    nominated: dict[int, Any] = {1: "pair"}
    ready, _ = wired(kind)
    ready.use_socket(sender_socket, socket.AF_INET, *receiver.getsockname())
    ready.follow(nominated, "pair")
    unwired = kind(48000, 1, 1)
    queued, _ = wired(kind)
    queued.use_socket(None)
    queued.follow(nominated, "pair")
    unfollowed, _ = wired(kind)
    unfollowed.use_socket(sender_socket, socket.AF_INET, *receiver.getsockname())
    moved, _ = wired(kind)
    moved.use_socket(sender_socket, socket.AF_INET, *receiver.getsockname())
    moved.follow(nominated, "old pair")
    closed, _ = wired(kind)
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.use_socket(gone, socket.AF_INET, *receiver.getsockname())
    closed.follow(nominated, "pair")
    gone.close()
    lanes = (unwired, ready, queued, unfollowed, moved, closed)
    assert send_many(lanes, 1, 10, 20, 0, b"opus", NTP0) == [0, 2, 3, 4]
    assert receiver.recv(2048)  # the ready one's
    receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        receiver.recv(2048)
    assert [made.packets for made in lanes] == [0, 1, 0, 0, 0, 0]
    assert closed.send_errors == 1
    nominated[1] = "old pair"  # ICE went back: `moved` goes with the batch again, `ready` not
    assert send_many((ready, moved), 1, 11, 980, 0, b"opus", NTP0) == [0]
    assert moved.packets == 1
    ready.follow(None, None)
    assert send_many((ready,), 1, 12, 1940, 0, b"opus", NTP0) == [0]
    with pytest.raises(TypeError):
        send_many([ready], 1, 13, 2900, 0, b"opus", NTP0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        send_many((ready, PyLane(48000, 1, 1)), 1, 13, 2900, 0, b"opus", NTP0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        send_many((ready,), 1, 13, 2900, 0, "text", NTP0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ready.follow({1: "pair"}.items(), "pair")  # type: ignore[arg-type]
    assert moved.packets == 1 and ready.packets == 1
