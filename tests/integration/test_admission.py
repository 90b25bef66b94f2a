"""Admission from the data (issue 8): who may listen and transmit is read from the store at
`join`, at `offer`, and again while connected, so that a right that goes away ends a live
session within seconds, not when the token expires.

The access rules themselves (`signaling.access.access_of`) are checked against both databases
at chosen times (no waiting). Then, live: the real server (its re-check interval and listening
grace shortened through its config), a real board agent process and real aiortc operators;
grants, blocks, bookings and accounts are changed directly in the server's store. What is
asserted is what a person sees: a refusal that says why, `ptt_released` with `access_ended`,
the `error` event that ends the session, audio that stops arriving (RTP packets counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import radiocore_protocol as protocol
from radiocore import aiortc_hooks
from signaling import keys
from signaling.access import (
    BLOCKED,
    NO_ACCOUNT,
    NO_RIGHT,
    NO_SUCH_BOARD,
    Access,
    access_of,
    access_to,
    when_text,
)
from signaling.accounts import create_account
from signaling.errors import ForbiddenError
from signaling.store import Store, create_store
from tests.integration.harness import (
    Account,
    AgentProcess,
    LiveServer,
    Operator,
    start_server,
    stop_server,
    tx_log,
)
from tests.support.postgres import PostgresServer, fresh_database, start_postgres
from tests.support.waiting import wait_for

#: The server's re-check interval and the listening grace after a booking's end, in seconds.
RECHECK_S = 0.2
GRACE_S = 1.0
#: How long a change in the store may take to end a live session: one re-check interval and
#: a generous margin for a loaded machine (the interval is what the server promises).
CUT_WITHIN_S = RECHECK_S + 5.0
CONFIG: dict[str, object] = {"access.recheck_s": RECHECK_S, "access.listen_grace_s": GRACE_S}
PTT_ON = protocol.encode(protocol.Ptt(state=True)).decode()
T0 = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


# -- the databases ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def database_url(kind: str, request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of `kind` (`sqlite` or `postgres`): its `database_url`."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/radiocore.sqlite3"
        return
    async with fresh_database(request.getfixturevalue("postgres")) as url:
        yield url


# -- the access rules, on both databases ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with (
        database_url(request.param, request, tmp_path) as url,
        create_store(url, tmp_path) as opened,
    ):
        yield opened


async def _people(store: Store) -> tuple[str, str, str, str]:
    """A board (its id) with its owner, a guest and someone else (their user ids)."""
    owner = await store.create_user("owner@example.org", "scrypt$x", "DL1OWN")
    guest = await store.create_user("guest@example.org", "scrypt$x", "DL3GST")
    other = await store.create_user("other@example.org", "scrypt$x", "DL2OTH")
    board = await store.create_board(owner.id, "Test station", "sha256$x")
    return board.id, owner.id, guest.id, other.id


async def _at(store: Store, board_id: str, user_id: str, now: datetime, grace: float = 0) -> Access:
    board = await store.get_board(board_id)
    return await access_of(store, board, user_id, now, grace=timedelta(seconds=grace))


async def test_owner_grants_and_refusals_say_why(store: Store) -> None:
    board, owner, guest, other = await _people(store)
    owned = await _at(store, board, owner, T0)
    assert (owned.level, owned.may_transmit, owned.is_owner) == ("owner", True, True)

    refused = await _at(store, board, guest, T0)
    assert (refused.level, refused.reason) == (None, NO_RIGHT)
    assert isinstance(refused.refusal(), ForbiddenError)
    with pytest.raises(ForbiddenError, match=NO_RIGHT):
        refused.admitted()

    await store.set_grant(board, guest, "listen")
    listening = await _at(store, board, guest, T0)
    assert (listening.may_listen, listening.may_transmit, listening.until) == (True, False, None)
    await store.set_grant(board, guest, "transmit")
    assert (await _at(store, board, guest, T0)).level == "transmit"
    await store.set_grant(board, guest, None)  # withdrawn
    assert (await _at(store, board, guest, T0)).reason == NO_RIGHT

    await store.set_grant(board, other, "transmit")
    await store.block_user(board, other)  # a block ends the grant, and wins over any
    blocked = await _at(store, board, other, T0)
    assert (blocked.level, blocked.reason) == (None, BLOCKED)
    with pytest.raises(ForbiddenError):  # and a blocked user cannot book
        await store.create_booking(board, other, T0, T0 + timedelta(hours=1))

    unknown = await access_to(store, "0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e", owner, T0)
    assert (unknown.board, unknown.reason) == (None, NO_SUCH_BOARD)
    await store.delete_user(guest)
    assert (await _at(store, board, guest, T0)).reason == NO_ACCOUNT


async def test_a_booking_admits_its_guest_inside_its_window_only(store: Store) -> None:
    board, _, guest, other = await _people(store)
    start, end = T0, T0 + timedelta(minutes=30)
    booking = await store.create_booking(board, guest, start, end)

    before = await _at(store, board, guest, start - timedelta(seconds=1))
    assert before.level is None
    assert before.reason == "your booking starts at 2026-11-27 15:00 UTC"
    inside = await _at(store, board, guest, start)
    assert (inside.level, inside.until, inside.booking) == ("transmit", end, booking)
    assert not inside.is_owner
    last = await _at(store, board, guest, end - timedelta(microseconds=1))
    assert last.level == "transmit"
    assert (await _at(store, board, other, start + timedelta(minutes=1))).reason == NO_RIGHT

    after = await _at(store, board, guest, end)  # [start, end): the end is outside
    assert (after.level, after.reason) == (None, "your booking ended at 2026-11-27 15:30 UTC")
    # with a grace, listening only, until the grace is over
    grace = await _at(store, board, guest, end + timedelta(seconds=2), grace=5)
    assert (grace.level, grace.until) == ("listen", end + timedelta(seconds=5))
    assert grace.reason == "your booking ended at 2026-11-27 15:30 UTC"
    assert (await _at(store, board, guest, end + timedelta(seconds=5), grace=5)).level is None

    # a listen grant and a booking: transmit inside the window, listen outside
    await store.set_grant(board, guest, "listen")
    assert (await _at(store, board, guest, start)).level == "transmit"
    assert (await _at(store, board, guest, end)).level == "listen"

    await store.cancel_booking(booking.id, start + timedelta(minutes=1))
    await store.set_grant(board, guest, None)
    cancelled = await _at(store, board, guest, start + timedelta(minutes=2), grace=5)
    assert (cancelled.level, cancelled.reason) == (None, "your booking was cancelled")


async def test_the_owner_keeps_everything_whatever_the_bookings(store: Store) -> None:
    board, owner, guest, _ = await _people(store)
    await store.create_booking(board, guest, T0, T0 + timedelta(minutes=30))
    during = await _at(store, board, owner, T0 + timedelta(minutes=1))
    assert (during.level, during.until) == ("owner", None)


# -- live: a real server, a board agent, aiortc operators -------------------------------------


@pytest.fixture(params=["sqlite"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The server with short re-checks, on SQLite (or PostgreSQL: parametrize indirectly)."""
    async with database_url(request.param, request, tmp_path) as url:
        env = {"RADIOCORE_DATABASE_URL": url}
        live = await start_server(tmp_path, config=CONFIG, env=env)
        try:
            yield live
        finally:
            await stop_server(live)
            aiortc_hooks.set_host_addresses(())


def store_of(server: LiveServer) -> Store:
    return server.app[keys.STORE]


async def add_guest(server: LiveServer) -> Account:
    """A third user, with no grant."""
    guest = Account("guest@example.org", "guest-password", "DL3GST")
    user = await create_account(store_of(server), guest.email, guest.password, guest.callsign)
    guest.user_id = user.id
    return guest


async def connected(server: LiveServer, account: Account, **options: Any) -> Operator:
    operator = Operator(server, await server.token(account), tap=True, **options)
    await operator.connect()
    return operator


def errors(operator: Operator) -> list[dict[str, Any]]:
    """The `error` events the operator received (Socket.IO)."""
    return [data for kind, data in operator.events if kind == "error"]


def released(operator: Operator) -> list[protocol.PttReleased]:
    decoded = [protocol.decode_server_message(m) for m in operator.messages("ptt_released")]
    return [m for m in decoded if isinstance(m, protocol.PttReleased)]


async def hears(operator: Operator, packets: int = 25) -> bool:
    """Whether `packets` more RTP packets of the station's audio arrive (20 ms each)."""
    start = len(operator.packets)
    return await wait_for(lambda: len(operator.packets) >= start + packets, seconds=15)


async def packets_after_cut(operator: Operator) -> int:
    """RTP packets that arrived during the second after the half second after the cut
    (packets in flight when the server closed the connection are let through first); the
    station sends 50 a second."""
    await asyncio.sleep(0.5)
    then = len(operator.packets)
    await asyncio.sleep(1.0)
    return len(operator.packets) - then


async def test_a_guest_is_admitted_inside_the_booking_window_refused_before_it(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest_account = await add_guest(server)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    await store_of(server).create_booking(
        server.board_id, guest_account.user_id, start, start + timedelta(minutes=5)
    )
    guest = await connected(server, guest_account)
    try:
        # the booked station is listed, so the console can show it before the window opens
        boards = (await guest.call("list_boards", {}))["boards"]
        assert [b["id"] for b in boards] == [server.board_id]
        early = await guest.call("join", {"board_id": server.board_id})
        assert early == {
            "ok": False,
            "error": {"code": "forbidden", "message": f"your booking starts at {when_text(start)}"},
        }
        assert await wait_for(lambda: datetime.now(UTC) >= start, seconds=10)
        reply = await guest.join_and_listen(server.board_id)
        assert reply["ok"], reply
        assert (guest.joined["can_transmit"], guest.joined["is_owner"]) == (True, False)
        assert await hears(guest), "the guest hears nothing inside its window"
    finally:
        await guest.close()


@pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)
async def test_a_booking_ending_during_ptt_releases_transmit_first_then_listening(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest_account = await add_guest(server)
    now = datetime.now(UTC)
    end = now + timedelta(seconds=7)  # time enough to connect and key on a loaded machine
    await store_of(server).create_booking(server.board_id, guest_account.user_id, now, end)
    guest = await connected(server, guest_account, mic_hz=600.0)
    owner = await connected(server, server.owner)
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert (await owner.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: guest.channel.readyState == "open")
        guest.key()
        assert await wait_for(
            lambda: any('"holder":"DL3GST"' in m for m in owner.messages("floor"))
        ), "the booked guest could not key inside its window"
        assert datetime.now(UTC) < end, "the test connected too slowly to key inside the window"
        assert await wait_for(lambda: len(agent.tx_pcm()) >= 48000 // 2, seconds=10)

        # the window ends: transmit first…
        assert await wait_for(lambda: released(guest), seconds=15)
        assert released(guest) == [protocol.PttReleased(reason="access_ended")]
        assert datetime.now(UTC) >= end
        assert not errors(guest), "listening was cut together with transmitting"
        released_at = len(guest.packets)
        assert await wait_for(lambda: any('"holder":null' in m for m in owner.messages("floor")))
        written = len(agent.tx_pcm())
        # …then, after the grace, listening, with the reason
        assert await wait_for(lambda: errors(guest), seconds=GRACE_S + CUT_WITHIN_S)
        ended = f"your booking ended at {when_text(end)}"
        assert errors(guest) == [
            {
                "code": "forbidden",
                "message": f"your access to Test station ended: {ended}",
                "board_id": server.board_id,
            }
        ]
        assert len(guest.packets) > released_at, "the guest heard nothing during its grace"
        since = await packets_after_cut(guest)
        assert since == 0, f"{since} packets reached the guest after its access ended"
        assert await hears(owner), "the owner's audio stopped too"
        assert len(agent.tx_pcm()) - written < 48000 // 10, "the guest's voice went on the air"
        guest.unkey(silently=True)

        sessions = await tx_log(server.url, await server.token(server.owner), server.board_id)
        assert [(s["callsign"], s["reason"]) for s in sessions] == [("DL3GST", "access_ended")]
        again = await guest.call("join", {"board_id": server.board_id})
        assert again["error"] == {"code": "forbidden", "message": ended}
        offer = {"board_id": server.board_id, "type": "offer", "sdp": "v=0"}
        assert (await guest.call("offer", offer))["error"]["code"] == "not_joined"
    finally:
        await guest.close()
        await owner.close()


@pytest.mark.parametrize("server", ["sqlite", "postgres"], indirect=True)
async def test_a_revoked_grant_ends_a_live_session(server: LiveServer, agent: AgentProcess) -> None:
    guest = await connected(server, server.other)  # granted transmit by the seed
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert await hears(guest)
        await store_of(server).set_grant(server.board_id, server.other.user_id, None)
        assert await wait_for(lambda: errors(guest), seconds=CUT_WITHIN_S), (
            "the session outlived its grant"
        )
        assert errors(guest)[0]["message"] == f"your access to Test station ended: {NO_RIGHT}"
        since = await packets_after_cut(guest)
        assert since == 0, f"{since} packets arrived after the grant was withdrawn"
        assert not released(guest)  # it held no floor: nothing to release
        again = await guest.call("join", {"board_id": server.board_id})
        # no grant, no booking: a private board is not even shown to exist
        assert again["error"] == {"code": "not_found", "message": NO_SUCH_BOARD}
    finally:
        await guest.close()


async def test_a_grant_lowered_to_listen_releases_ptt_and_keeps_listening(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest = await connected(server, server.other, mic_hz=600.0)
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: guest.channel.readyState == "open")
        guest.key()
        assert await wait_for(lambda: any('"you":true' in m for m in guest.messages("floor")))
        await store_of(server).set_grant(server.board_id, server.other.user_id, "listen")
        assert await wait_for(lambda: released(guest), seconds=CUT_WITHIN_S)
        assert released(guest) == [protocol.PttReleased(reason="access_ended")]
        guest.unkey(silently=True)
        guest.send(PTT_ON)  # pressing again is refused, saying why
        reason = "you may no longer transmit on Test station: the owner granted you listen"
        assert await wait_for(lambda: guest.messages("error"))
        refusal = protocol.decode_server_message(guest.messages("error")[0])
        assert refusal == protocol.Error(
            code=protocol.ErrorCode.FORBIDDEN, message=reason, ref="ptt"
        )
        assert await hears(guest), "a listener lost its audio with its transmit right"
        assert not errors(guest)
    finally:
        await guest.close()


async def test_a_blocked_user_is_cut_and_refused_despite_a_grant(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest = await connected(server, server.other)  # granted transmit by the seed
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert await hears(guest)
        store = store_of(server)
        await store.block_user(server.board_id, server.other.user_id)
        assert await wait_for(lambda: errors(guest), seconds=CUT_WITHIN_S)
        assert errors(guest)[0]["message"] == f"your access to Test station ended: {BLOCKED}"
        since = await packets_after_cut(guest)
        assert since == 0
        again = await guest.call("join", {"board_id": server.board_id})
        assert again["error"] == {"code": "forbidden", "message": BLOCKED}
        with pytest.raises(ForbiddenError):  # a blocked user cannot book either
            now = datetime.now(UTC)
            await store.create_booking(
                server.board_id, server.other.user_id, now, now + timedelta(hours=1)
            )
    finally:
        await guest.close()


async def test_the_owner_is_never_cut_and_overrides_a_guest(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest = await connected(server, server.other, mic_hz=600.0)
    owner = await connected(server, server.owner, mic_hz=800.0)
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert (await owner.join_and_listen(server.board_id))["ok"]
        assert await wait_for(lambda: guest.channel.readyState == "open")
        assert await wait_for(lambda: owner.channel.readyState == "open")
        guest.key()
        assert await wait_for(
            lambda: any('"holder":"DL2OTH"' in m for m in owner.messages("floor"))
        )
        owner.key()  # the owner takes over at any time
        assert await wait_for(lambda: released(guest))
        assert released(guest) == [protocol.PttReleased(reason="override", by="DL1OWN")]
        guest.unkey(silently=True)

        await store_of(server).set_grant(server.board_id, server.other.user_id, None)
        assert await wait_for(lambda: errors(guest), seconds=CUT_WITHIN_S)
        await asyncio.sleep(5 * RECHECK_S)  # several more re-checks with the owner on the air
        assert await hears(owner), "the owner's audio stopped"
        assert not errors(owner) and not released(owner)
        floor = json.loads(owner.messages("floor")[-1])
        assert (floor["holder"], floor["you"]) == ("DL1OWN", True)
        owner.unkey()
    finally:
        await guest.close()
        await owner.close()


async def test_a_deleted_accounts_live_session_ends(
    server: LiveServer, agent: AgentProcess
) -> None:
    guest = await connected(server, server.other)
    try:
        assert (await guest.join_and_listen(server.board_id))["ok"]
        assert await hears(guest)
        await store_of(server).delete_user(server.other.user_id)  # cascades: its grant too
        assert await wait_for(lambda: errors(guest), seconds=CUT_WITHIN_S)
        assert errors(guest)[0]["message"] == f"your access to Test station ended: {NO_ACCOUNT}"
        since = await packets_after_cut(guest)
        assert since == 0
    finally:
        await guest.close()
