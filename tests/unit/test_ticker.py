"""The leader's ticker on the in-memory ZooKeeper: one job per tick, misfires, overlap,
config schedules, and two tickers at once with each exactly-once guard alone."""

from __future__ import annotations

import contextlib
import random
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job
from zkq.coordinator.metrics import CoordinatorCollector
from zkq.coordinator.schedule_book import ScheduleBook
from zkq.coordinator.schedules import ScheduleRecord, ScheduleState
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.ticker import Ticker, ticker_for
from zkq.coordinator.zk import ConnectionLost, ZkSession


def jobs_of(session: ZkSession, cluster: MemoryCluster) -> list[Job]:
    """Every job record in the tree (a unit test's cluster is small)."""
    out = []
    root = cluster.layout.jobs
    for era in session.get_children(root):
        for tick in session.get_children(f"{root}/{era}"):
            for job_id in session.get_children(f"{root}/{era}/{tick}"):
                out.append(Job.from_bytes(session.get(f"{root}/{era}/{tick}/{job_id}")[0]))
    return out


def every(name: str, seconds: float, created_at: float, **more: object) -> ScheduleRecord:
    return ScheduleRecord(
        name=name,
        owner="_",
        every=seconds,
        created_at=created_at,
        anchor=created_at,  # ticks at created_at + k * seconds, whatever the clock's start
        template={"type": "t", "payload": {"from": name}},
        **more,  # type: ignore[arg-type]
    )


def state_of(session: ZkSession, cluster: MemoryCluster, name: str) -> ScheduleState:
    raw, _ = session.get(cluster.layout.schedule("_", name) + "/state")
    return ScheduleState.from_bytes(raw)


@pytest.fixture
def leader(cluster: MemoryCluster) -> Leader:
    leader = Leader(cluster)
    leader.ticker = ticker_for(leader.dispatcher, (), DispatchStats())  # type: ignore[attr-defined]
    leader.dispatcher.tasks.append(leader.ticker)  # type: ignore[attr-defined]
    return leader


def test_the_leader_makes_one_job_per_tick(cluster: MemoryCluster, leader: Leader) -> None:
    book = ScheduleBook(leader.session, cluster.layout)
    start = cluster.clock()
    book.add(every("each-ten", 10, start))
    leader.rounds(4)
    for _ in range(5):
        cluster.clock.advance(10)
        leader.rounds(4)
    made = [j for j in jobs_of(leader.session, cluster) if j.schedule]
    assert len(made) == 5
    assert len({j.schedule["tick"] for j in made if j.schedule}) == 5
    assert all(j.type == "t" and j.payload == {"from": "each-ten"} for j in made)
    assert all(j.scheduled_for == "schedule" and j.run_at is not None for j in made)
    state = state_of(leader.session, cluster, "each-ten")
    assert state.last_job == max(j.id for j in made) and state.skipped == 0


@pytest.mark.parametrize(("misfire", "jobs", "skipped"), [("run_once", 1, 359), ("skip", 0, 360)])
def test_ticks_missed_with_no_leader_follow_the_misfire_policy(
    cluster: MemoryCluster, misfire: str, jobs: int, skipped: int
) -> None:
    book = ScheduleBook(cluster.session("admin"), cluster.layout)
    start = cluster.clock()
    book.add(every("m", 10, start, misfire=misfire))
    first = Leader(cluster)
    first.dispatcher.tasks.append(ticker_for(first.dispatcher, (), DispatchStats()))
    cluster.clock.advance(10)
    first.rounds(4)  # one tick, in time
    first.session.stop()
    cluster.clock.advance(3600)  # an hour with no leader
    second = Leader(cluster)
    stats = DispatchStats()
    second.dispatcher.tasks.append(ticker_for(second.dispatcher, (), stats))
    second.rounds(3)
    made = [j for j in jobs_of(second.session, cluster) if j.schedule]
    assert len(made) == 1 + jobs
    state = state_of(second.session, cluster, "m")
    assert state.skipped == skipped
    assert state.last_tick_at is not None and state.last_tick_at > cluster.clock() - 10
    assert stats.schedule_ticks["skipped"] == skipped


def test_a_paused_schedule_does_not_fire_and_resuming_applies_the_misfire_policy(
    cluster: MemoryCluster, leader: Leader
) -> None:
    book = ScheduleBook(leader.session, cluster.layout)
    start = cluster.clock()
    book.add(every("p", 10, start, misfire="skip"))
    book.set_paused("_", "p", True)
    for _ in range(6):
        cluster.clock.advance(10)
        leader.rounds(4)
    assert not [j for j in jobs_of(leader.session, cluster) if j.schedule]
    book.set_paused("_", "p", False)
    leader.rounds(4)
    assert not [j for j in jobs_of(leader.session, cluster) if j.schedule]
    assert state_of(leader.session, cluster, "p").skipped == 6
    cluster.clock.advance(10)
    leader.rounds(4)
    assert len([j for j in jobs_of(leader.session, cluster) if j.schedule]) == 1


def test_overlap_skip_waits_for_the_last_job(cluster: MemoryCluster, leader: Leader) -> None:
    book = ScheduleBook(leader.session, cluster.layout)
    start = cluster.clock()
    book.add(every("o", 10, start, overlap="skip"))
    for _ in range(3):
        cluster.clock.advance(10)
        leader.rounds(4)
    made = [j for j in jobs_of(leader.session, cluster) if j.schedule]
    assert len(made) == 1  # the first is still pending: the next two are skipped
    assert state_of(leader.session, cluster, "o").skipped == 2


def test_config_schedules_are_upserted_and_never_deleted(cluster: MemoryCluster) -> None:
    session = cluster.session("admin")
    book = ScheduleBook(session, cluster.layout)
    old = every("declared", 60, 1000.0, source="config")
    gone = every("undeclared", 60, 1000.0, source="config")
    book.add(old)
    book.add(gone)
    changed = old.replace(every=120)
    store = cluster.store("ticker")
    ticker = Ticker(store, lambda: None, lambda *p: None, lambda e: None, [changed])
    ticker.upsert_declared()
    assert book.get("declared").record.every == 120
    assert book.get("undeclared").record == gone  # absent from this config: it stays
    fresh = every("fresh", 60, 0.0, source="config")  # as a config file declares it
    Ticker(
        store, lambda: None, lambda *p: None, lambda e: None, [fresh], cluster.clock
    ).upsert_declared()
    assert book.get("fresh").record.created_at == cluster.clock()  # not a catch-up from 1970
    ticker.upsert_declared()  # the same definition: nothing to write
    assert session.get(cluster.layout.schedule("_", "declared"))[1].version == 1


def JobStoreFor(cluster: MemoryCluster):
    return cluster.store("ticker")


class NoVersionCheck(Ticker):
    """Guard 1 off: the state is written whatever its version."""

    def state_version(self, read: int) -> int:
        return -1


class RandomIds(Ticker):
    """Guard 2 off: every decision names a fresh job."""

    def tick_id(self, record: ScheduleRecord, instant: float, key: str) -> str:
        return new_job_id()


@pytest.mark.parametrize("kind", [Ticker, NoVersionCheck, RandomIds])
def test_two_tickers_interleaved_make_one_job_per_tick(
    cluster: MemoryCluster, kind: type[Ticker]
) -> None:
    """Two tickers on two sessions, neither fenced, stepped in a seeded random order, with
    lost replies: 200 ticks, each exactly one job, with either guard alone."""
    rng = random.Random(11)
    tickers = [
        kind(cluster.store(f"ticker-{n}"), lambda: None, lambda *p: None, lambda e: None)
        for n in range(2)
    ]
    start = cluster.clock()
    base = start - start % 1
    ScheduleBook(cluster.session("admin"), cluster.layout).add(
        every("race", 1, base, misfire_grace=3600)
    )
    cluster.clock.advance(0.5)
    while cluster.clock() < base + 200.5:
        for ticker in rng.sample(tickers, 2):
            action = rng.random()
            if action < 0.3:
                ticker.dirty.add(("_", "race"))  # a watch fired: read it again
            if rng.random() < 0.1:
                cluster.zk.lose_next_reply(ticker.session)  # type: ignore[arg-type]
            # a lost reply: the dispatcher would reconcile; the ticker rereads what it wrote
            with contextlib.suppress(ConnectionLost):
                ticker.step(cluster.clock(), cluster.clock())
        if rng.random() < 0.5:
            cluster.clock.advance(1)
    for _ in range(3):  # let both catch up to the clock
        for ticker in tickers:
            ticker.dirty.add(("_", "race"))
            ticker.step(cluster.clock(), cluster.clock())
    made = [j for j in jobs_of(cluster.session("check"), cluster) if j.schedule]
    per_tick = Counter(j.schedule["tick"] for j in made if j.schedule)
    assert len(per_tick) == int(cluster.clock() - base) >= 200
    assert set(per_tick.values()) == {1}
    total = Counter[str]()
    for ticker in tickers:
        total.update(ticker.outcomes)
    assert total["enqueued"] <= len(per_tick)  # a multi whose reply was lost is not counted
    if kind is not RandomIds:
        assert total["duplicate"] >= 1  # they did overlap


def test_ticks_and_schedules_are_metrics(cluster: MemoryCluster) -> None:
    stats = DispatchStats()
    registry = CollectorRegistry()
    registry.register(CoordinatorCollector(stats, cluster.session("c")))
    leader = Leader(cluster)
    leader.dispatcher.tasks.append(ticker_for(leader.dispatcher, (), stats))
    start = cluster.clock()
    ScheduleBook(leader.session, cluster.layout).add(every("metered", 10, start))
    for _ in range(3):
        cluster.clock.advance(10)
        leader.rounds(4)
    sample = registry.get_sample_value
    assert sample("zkq_schedule_ticks_total", {"outcome": "enqueued"}) == 3
    assert sample("zkq_schedules") == 1
