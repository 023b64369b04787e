"""Leases on the in-memory ZooKeeper with a manual clock: the leader extends a running
attempt's deadline when its claim is renewed, a renewal racing the take-back wins, a renewal
of an attempt that was taken back never renews the next attempt (review M1), and the worker
learns that its attempt is over from its claim, also when it was disconnected at the time
or lost its session (review M2)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator import overdue
from zkq.coordinator.job import JobState
from zkq.coordinator.lease import Lease, parse_lease
from zkq.coordinator.store import JobSpec, JobStore
from zkq.dev.waiting import wait_until
from zkq.worker.control import Cancelled
from zkq.worker.leases import ClaimChanged, LeaseKeeper, SessionChanged
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pipeline import Assignment, Pipeline
from zkq.worker.pools import ThreadPool
from zkq.worker.registry import JobContext, Registry


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


def running(cluster: MemoryCluster, client: JobStore, worker: JobStore, wid: str) -> str:
    """A job with timeout 10 assigned to and started by ``wid``; its id."""
    cluster.register(worker.session, wid)
    job = client.submit(JobSpec("t", timeout=10, max_attempts=3))
    leader = Leader(cluster)
    leader.rounds()
    cluster.start(worker, wid, job.id)
    leader.rounds()
    return job.id


def renew(cluster: MemoryCluster, worker: JobStore, job_id: str, seconds: float) -> None:
    """Renew as a worker's committer does (a versioned set of the claim)."""
    path = cluster.layout.claim(job_id)
    raw, stat = worker.session.get(path)
    worker.session.set(path, parse_lease(raw).renewed(seconds).to_bytes(), stat.version)


def tries(client: JobStore, job_id: str) -> list[str]:
    return [str(a.outcome) for a in client.get(job_id).tries()]


def test_a_renewal_moves_the_deadline(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("worker")
    job_id = running(cluster, client, worker, "w1")
    leader = Leader(cluster)
    leader.rounds()  # first sight running: deadline now + 10
    cluster.clock.advance(8)
    renew(cluster, worker, job_id, 30)  # at 8: the lease runs to 38 at the earliest
    cluster.clock.advance(5)  # 13: past 10 + 2, and looked at: the renewal is seen
    leader.rounds()
    assert client.get(job_id).state == JobState.RUNNING
    cluster.clock.advance(30)  # 43: 13 + 30 is the deadline, + 2 of grace
    leader.rounds()
    assert client.get(job_id).state == JobState.RUNNING
    cluster.clock.advance(3)  # 46: past it
    leader.rounds()
    assert tries(client, job_id) == ["timeout"]


def test_a_renewal_racing_the_take_back_wins(
    cluster: MemoryCluster, client: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = cluster.store("worker")
    job_id = running(cluster, client, worker, "w1")
    leader = Leader(cluster)
    leader.rounds()
    read = overdue.read_attempts
    racing = [True]

    def read_then_renew(store: JobStore, job_ids: list[str]) -> Any:
        found = read(store, job_ids)
        if racing and job_id in job_ids:
            racing.clear()
            renew(cluster, worker, job_id, 20)  # between the look and the take-back
        return found

    monkeypatch.setattr(overdue, "read_attempts", read_then_renew)
    cluster.clock.advance(13)  # overdue by what the leader read
    leader.rounds(1)
    assert client.get(job_id).state == JobState.RUNNING  # the delete at the seen version lost
    assert not racing, "the renewal never raced the look"
    cluster.clock.advance(3)  # looked at again soon: the renewal is seen (deadline 16 + 20)
    leader.rounds()
    cluster.clock.advance(18)  # 34: within it
    leader.rounds()
    assert client.get(job_id).state == JobState.RUNNING
    cluster.clock.advance(5)  # 39: past 36 + 2
    leader.rounds()
    assert tries(client, job_id) == ["timeout"]


class Keeper:
    """A worker's lease keeper, its events delivered when the test says."""

    def __init__(self, cluster: MemoryCluster, worker: JobStore) -> None:
        self.cluster = cluster
        self.events: list[ClaimChanged | SessionChanged] = []
        self.keeper: LeaseKeeper[str] = LeaseKeeper(
            worker.session, cluster.layout, self.events.append, clock=cluster.clock
        )
        worker.session.on_state_change(lambda state: self.events.append(SessionChanged(state)))

    def deliver(self) -> None:
        assert self.keeper.settle(), "the claim watches were never set"
        self.cluster.zk.settle()
        for event in self.events:
            if isinstance(event, ClaimChanged):
                self.keeper.claim_changed(event)
            else:
                self.keeper.session_changed(event)
        self.events.clear()


def held(cluster: MemoryCluster, client: JobStore) -> tuple[JobStore, Keeper, str]:
    worker = cluster.store("worker")
    job_id = running(cluster, client, worker, "wA")
    keeper = Keeper(cluster, worker)
    job, version = worker.get_versioned(job_id)
    keeper.keeper.hold("A", job, version, "wA")
    return worker, keeper, job_id


def test_a_renewal_of_an_attempt_taken_back_never_renews_the_next_one(
    cluster: MemoryCluster, client: JobStore
) -> None:
    a, keeper, job_id = held(cluster, client)
    leader = Leader(cluster)
    leader.rounds()
    cluster.clock.advance(13)
    leader.rounds()
    assert tries(client, job_id) == ["timeout"]
    a.session.delete(cluster.layout.worker("wA"))  # A is not chosen again
    b = cluster.store("b")
    cluster.register(b.session, "wB")
    leader.rounds()
    cluster.start(b, "wB", job_id)  # B's claim: version 0, as A's was
    claim = cluster.layout.claim(job_id)
    # A's renewal, queued before A heard its claim went: written before the watch is read
    keeper.keeper.renew("A", job_id, 60)
    assert keeper.keeper.step() == [("A", "lease")]
    raw, stat = b.session.get(claim)
    assert stat.version == 0 and parse_lease(raw).worker == "wB"


def test_a_cancel_while_disconnected_is_noticed_after_reconnecting(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker, keeper, job_id = held(cluster, client)
    cluster.zk.disconnect(worker.session)  # the claim's watch fires NONE and is gone
    client.cancel(job_id)
    keeper.deliver()
    assert keeper.keeper.step() == []  # nothing to see while disconnected
    cluster.zk.reconnect(worker.session)
    keeper.deliver()
    assert keeper.keeper.step() == [("A", "cancelled")]


def test_a_cancel_is_seen_by_the_claim_watch(cluster: MemoryCluster, client: JobStore) -> None:
    _, keeper, job_id = held(cluster, client)
    keeper.deliver()
    assert keeper.keeper.step() == []
    client.cancel(job_id)
    keeper.deliver()
    assert keeper.keeper.step() == [("A", "cancelled")]


def test_a_lost_session_stops_every_attempt(cluster: MemoryCluster, client: JobStore) -> None:
    worker, keeper, _ = held(cluster, client)
    cluster.zk.expire(worker.session)
    keeper.deliver()
    assert keeper.keeper.step() == [("A", "session")]
    assert keeper.keeper.step() == []  # each once


def test_suspended_past_the_session_timeout_stops_every_attempt(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker, keeper, job_id = held(cluster, client)
    cluster.zk.disconnect(worker.session)
    keeper.deliver()
    cluster.clock.advance(3)
    keeper.keeper.renew("A", job_id, 10)  # due, but unwritable while disconnected:
    assert keeper.keeper.next_wake() == pytest.approx(worker.session.session_timeout - 3)
    cluster.clock.advance(worker.session.session_timeout / 2 - 3)
    assert keeper.keeper.step() == []
    cluster.clock.advance(worker.session.session_timeout / 2)
    assert keeper.keeper.step() == [("A", "session")]
    cluster.zk.reconnect(worker.session)


def test_renewals_are_coalesced_and_carry_the_latest_lease(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker, keeper, job_id = held(cluster, client)
    claim = cluster.layout.claim(job_id)
    cluster.clock.advance(3)  # past a quarter of the 10 s lease: written at once
    keeper.keeper.renew("A", job_id, 10)
    assert keeper.keeper.step() == []
    keeper.keeper.renew("A", job_id, 20)
    keeper.keeper.renew("A", job_id, 40)
    assert keeper.keeper.step() == []  # deferred: within 2.5 s of the last write
    assert worker.session.get(claim)[1].version == 1
    wait = keeper.keeper.next_wake()
    assert wait is not None and 0 < wait <= 2.5
    cluster.clock.advance(wait)
    keeper.deliver()
    assert keeper.keeper.step() == []
    raw, stat = worker.session.get(claim)
    assert stat.version == 2 and parse_lease(raw) == Lease("wA", 1, 40.0, 2)


class Metrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__(1, lambda: 0)
        self.outcomes: list[str] = []

    def ended(self, job_type: str, outcome: str, seconds: float | None = None) -> None:
        super().ended(job_type, outcome, seconds)
        self.outcomes.append(outcome)


@pytest.fixture
def cooperative(cluster: MemoryCluster) -> Iterator[dict[str, Any]]:
    """A one-slot pipeline whose handler polls ``ctx.cancelled``, then waits for the test."""
    seen: dict[str, Any] = {"stopped": threading.Event(), "leave": threading.Event()}

    def handler(_payload: Any, ctx: JobContext) -> str:
        wait_until(lambda: ctx.cancelled, 10, what="the attempt to be revoked")
        seen["reason"] = ctx.cancel_reason
        try:
            ctx.heartbeat()
        except Cancelled as exc:
            seen["raised"] = exc.reason
        seen["stopped"].set()
        seen["leave"].wait(10)
        return "late"

    registry = Registry()
    registry.add("t", handler)
    worker = cluster.store("worker")
    metrics = Metrics()
    released: list[tuple[str, bool]] = []
    pipeline = Pipeline(
        worker,
        ThreadPool(registry),
        1,
        metrics,
        generation=lambda: 0,
        release=lambda job_id, relist: released.append((job_id, relist)),
    )
    seen.update(worker=worker, metrics=metrics, released=released, pipeline=pipeline)
    pipeline.start()
    try:
        yield seen
    finally:
        seen["leave"].set()
        wait_until(lambda: pipeline.busy == 0, 10, what="the slot to come back")
        pipeline.stop()


def test_a_cancelled_cooperative_handler_stops_and_its_slot_frees_when_it_returns(
    cluster: MemoryCluster, client: JobStore, cooperative: dict[str, Any]
) -> None:
    worker: JobStore = cooperative["worker"]
    pipeline: Pipeline = cooperative["pipeline"]
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t", timeout=10))
    Leader(cluster).rounds()
    found, version = worker.get_versioned(job.id)
    pipeline.offer([Assignment(found, version, "w1", generation=0)])
    wait_until(lambda: client.get(job.id).state == JobState.RUNNING, 10, what="the start")
    client.cancel(job.id)
    assert cooperative["stopped"].wait(10), "the handler never saw the cancel"
    assert cooperative["reason"] == "cancelled" and cooperative["raised"] == "cancelled"
    wait_until(lambda: pipeline.outstanding == 0, 10, what="the revoked attempt recorded")
    assert cooperative["metrics"].outcomes == ["revoked"]
    assert (job.id, True) in cooperative["released"]
    assert pipeline.busy == 1  # the handler has not returned: its slot is not free yet
    cooperative["leave"].set()
    wait_until(lambda: pipeline.busy == 0, 10, what="the slot to come back")
    assert cooperative["metrics"].outcomes == ["revoked"]  # its return committed nothing
    assert client.get(job.id).state == JobState.CANCELLED
