"""The in-memory ZooKeeper's own affordances: its faults, its clock, the thread its watches
run on.  That it answers as ZooKeeper does is checked against the real ensemble by
``tests/integration/test_memory_zookeeper.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from zkq.coordinator.errors import Timeout
from zkq.coordinator.zk import (
    ConnectionLost,
    Create,
    EventType,
    NoNode,
    SetData,
    TransactionFailed,
    WatchEvent,
)
from zkq.coordinator.zk.memory import ManualClock, MemoryZooKeeper
from zkq.coordinator.zk.memory_session import MemorySession


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_000_000.0)


@pytest.fixture
def zk(clock: ManualClock) -> MemoryZooKeeper:
    return MemoryZooKeeper(clock=clock)


@pytest.fixture
def sessions(zk: MemoryZooKeeper) -> Iterator[list[MemorySession]]:
    made = [zk.session(name=f"s{n}") for n in range(2)]
    for session in made:
        session.start()
    try:
        yield made
    finally:
        for session in made:
            session.stop()


def events_of(seen: list[WatchEvent]) -> list[tuple[str, str | None]]:
    return [(e.type.value, e.path) for e in seen]


def test_stats_carry_the_injected_clock(
    zk: MemoryZooKeeper, clock: ManualClock, sessions: list[MemorySession]
) -> None:
    a, _ = sessions
    a.create("/n", b"x")
    clock.advance(2.5)
    stat = a.set("/n", b"xy")
    assert (stat.created, stat.modified, stat.version) == (1_000_000.0, 1_000_002.5, 1)


def test_watches_run_on_the_sessions_event_thread_in_the_order_of_the_writes(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    a.create("/n")
    threads: set[str] = set()
    seen: list[WatchEvent] = []

    def on_event(event: WatchEvent) -> None:
        threads.add(threading.current_thread().name)
        seen.append(event)

    b.get("/n", watch=on_event)
    b.get_children("/n", watch=on_event)
    a.set("/n", b"1")
    a.create("/n/c")
    zk.settle()
    assert events_of(seen) == [("CHANGED", "/n"), ("CHILD", "/n")]
    assert threads == {"s1-events"}


def test_a_dropped_connection_keeps_the_session_and_its_ephemerals(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    a.create("/e", ephemeral=True)
    heard: list[str] = []
    a.on_state_change(heard.append)
    seen: list[WatchEvent] = []
    a.get("/e", watch=seen.append)
    session_id = a.session_id
    zk.disconnect(a)
    with pytest.raises(ConnectionLost):
        a.get("/e")
    with pytest.raises(Timeout):  # a read with a deadline gives up once it has passed
        a.get_many(["/e"], deadline=0.0)
    assert b.exists("/e") is not None
    zk.reconnect(a)
    zk.settle()
    assert heard == ["SUSPENDED", "CONNECTED"]
    assert events_of(seen) == [("NONE", None)]  # the watch was dropped with the connection
    assert a.session_id == session_id and a.generation == 0 and a.connections == 2


def test_an_expired_session_loses_its_ephemerals_and_comes_back_as_another(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    a.create("/e", ephemeral=True)
    old = a.session_id
    zk.expire(a, reconnect=False)
    assert b.exists("/e") is None
    assert not a.connected.is_set() and a.generation == 1
    with pytest.raises(ConnectionLost):
        a.exists("/e")
    zk.reconnect(a)
    assert a.connected.is_set() and a.session_id != old
    owned = b.exists(a.create("/e2", ephemeral=True))
    assert owned is not None and owned.ephemeral_owner == a.session_id


def test_a_lost_reply_is_applied_and_answered_with_connection_lost(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    zk.lose_next_reply(a)
    zxid = zk.zxid
    with pytest.raises(ConnectionLost):
        a.multi([Create("/m", b"1"), Create("/m/c")])
    assert b.get_children("/m") == ["c"]
    assert zk.zxid == zxid + 1
    assert a.connected.is_set() and a.connections == 2  # dropped and back
    a.multi([SetData("/m", b"2")])  # the next one is answered


def test_a_lost_reply_of_a_refused_multi_hides_the_refusal(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, _ = sessions
    zk.lose_next_reply(a)
    with pytest.raises(ConnectionLost):
        a.multi([Create("/m"), Create("/m")])
    with pytest.raises(NoNode):
        a.get("/m")


def test_a_request_over_zookeepers_buffer_drops_the_connection_unapplied(
    sessions: list[MemorySession],
) -> None:
    a, _ = sessions
    with pytest.raises(ConnectionLost):
        a.multi([Create(f"/big{n}", b"x" * 300_000) for n in range(4)])
    assert a.connected.is_set()
    with pytest.raises(TransactionFailed):
        a.multi([Create("/big0"), Create("/big0")])  # nothing of it was applied
    assert a.exists("/big1") is None


def test_a_stopped_session_takes_its_ephemerals_and_answers_nothing(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    a.create("/e", ephemeral=True)
    seen: list[WatchEvent] = []
    b.exists("/e", watch=seen.append)
    a.stop()
    zk.settle()
    assert events_of(seen) == [(EventType.DELETED.value, "/e")]
    with pytest.raises(ConnectionLost):
        a.get("/")
    a.start()  # a stopped client may start again, as a new session
    assert a.get_children("/") == ["zookeeper"]


def test_a_callback_that_writes_is_settled_too(
    zk: MemoryZooKeeper, sessions: list[MemorySession]
) -> None:
    a, b = sessions
    a.create("/n")
    seen: list[WatchEvent] = []
    b.get("/n", watch=lambda _e: b.create("/n/echo"))
    a.get_children("/n", watch=seen.append)
    a.set("/n", b"go")
    zk.settle()  # b's callback ran, and a's watch it fired has run as well
    assert events_of(seen) == [("CHILD", "/n")]
