"""Corners of the coordinator's transitions on the in-memory ZooKeeper, each a scenario a
busy cluster meets now and then: a write whose reply is lost, a stale version inside a
shared multi, a bucket the leader deleted and a retry needs again, a draining worker's
queue, an inbox orphaned while no leader ran, and a record nobody can read.

Each test ends by accounting for every job: what state it is in, how many attempts it
spent, and that nothing is left holding it (pending entry, inbox entry, claim)."""

from __future__ import annotations

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.buckets import EMPTY_SHARD_GRACE
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import AttemptOutcome, Job, JobState
from zkq.coordinator.paths import bucket_of
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.zk.memory_session import MemorySession


def member(cluster: MemoryCluster, name: str) -> tuple[MemorySession, JobStore]:
    """A session of the cluster's (typed as the fake's, for its faults) and its store."""
    session = cluster.session(name)
    return session, JobStore(session, cluster.config.limits)


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return member(cluster, "client")[1]


def held_by_nothing(cluster: MemoryCluster, store: JobStore, job: Job) -> None:
    """A finished job has no pending entry, claim or inbox entry left anywhere."""
    layout, session = cluster.layout, store.session
    assert not session.exists(layout.pending_entry(job.type, job.priority, job.id))
    assert not session.exists(layout.claim(job.id))
    for worker_id in session.get_children(layout.inboxes):
        assert job.id not in session.get_children(layout.inbox(worker_id)), worker_id


# -- lost replies -------------------------------------------------------------------------------
def test_a_completion_whose_reply_is_lost_is_recognised_when_retried(
    cluster: MemoryCluster, client: JobStore
) -> None:
    """The worker's completion applies but its reply is lost: the retry reads the record,
    finds its own write there and reports success, neither writing twice nor calling
    itself fenced (which would make the worker drop a job it did finish)."""
    worker_session, worker = member(cluster, "worker")
    cluster.register(worker_session, "w1")
    job = client.submit(JobSpec("t", max_attempts=2))
    Leader(cluster).rounds()
    started, version = cluster.start(worker, "w1", job.id)
    zxid = cluster.zk.zxid
    cluster.zk.lose_next_reply(worker_session)
    done = FencedWriter(worker).complete(started, version, "w1", "ok")
    assert done.state == JobState.SUCCEEDED
    assert cluster.zk.zxid == zxid + 1, "applied once, not again after the lost reply"
    stored = client.get(job.id)
    assert (stored.state, stored.result, stored.attempts) == (JobState.SUCCEEDED, "ok", 1)
    assert [a.outcome for a in stored.history] == [AttemptOutcome.SUCCEEDED]
    held_by_nothing(cluster, client, stored)


@pytest.mark.parametrize("started", [False, True], ids=["pending", "running"])
def test_a_cancel_whose_reply_is_lost_is_recognised_when_retried(
    cluster: MemoryCluster, started: bool
) -> None:
    """A client's cancel applies but its reply is lost: the retry finds the job cancelled
    by that very write and returns it, instead of refusing to cancel a cancelled job."""
    client_session, client = member(cluster, "client")
    job = client.submit(JobSpec("t"))
    if started:
        worker_session, worker = member(cluster, "worker")
        cluster.register(worker_session, "w1")
        Leader(cluster).rounds()
        cluster.start(worker, "w1", job.id)
    zxid = cluster.zk.zxid
    cluster.zk.lose_next_reply(client_session)
    cancelled = client.cancel(job.id)
    assert cancelled.state == JobState.CANCELLED
    assert cluster.zk.zxid == zxid + 1, "applied once, not again after the lost reply"
    stored = client.get(job.id)
    assert stored.state == JobState.CANCELLED and stored.worker is None
    expected = [AttemptOutcome.CANCELLED] if started else []
    assert [a.outcome for a in stored.history] == expected
    held_by_nothing(cluster, client, stored)


# -- one stale version in a shared multi ----------------------------------------------------------
def test_one_stale_version_among_several_assignments_costs_that_job_one_round(
    cluster: MemoryCluster, client: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader reads three pending jobs and assigns them in one multi, but one record
    was rewritten after the read (same state, new version: an operator's edit, a sweep's
    repair).  The multi is refused for that op only: the two others go in the same round,
    the stale one stays pending with its entry, and a later round, reading it again,
    assigns it too.  Each job ends up assigned once, at no attempt's cost.

    The stale job is of a type of its own, alone in its pending tick, so no write of the
    other assignments fires a watch that would re-list it anyway: only the leader's own
    note of the refusal brings it back."""
    worker_session, worker = member(cluster, "worker")
    cluster.register(worker_session, "w1", types=frozenset({"t", "u"}), slots=4)
    first, stale, last = client.submit_many([JobSpec("t"), JobSpec("u"), JobSpec("t")])
    leader = Leader(cluster)
    read = leader.store.read_many
    touched: list[str] = []

    def read_then_touch(job_ids: list[str]) -> tuple[dict[str, object], set[str]]:
        found = read(job_ids)
        if stale.id in job_ids and not touched:
            path = cluster.layout.job(stale.id)
            client.session.set(path, client.session.get(path)[0])  # same bytes, new version
            touched.append(stale.id)
        return found  # type: ignore[return-value]

    monkeypatch.setattr(leader.store, "read_many", read_then_touch)
    assert leader.rounds(1) == 2
    assert cluster.inbox(worker, "w1") == sorted([first.id, last.id])
    left = client.get(stale.id)
    assert left.state == JobState.PENDING and left.worker is None
    assert client.session.exists(cluster.layout.pending_entry("u", 0, stale.id))
    assert leader.dispatcher.stats.transactions == 2  # the multi went again once, without it
    assert leader.rounds() == 1  # the refused job's shard was marked to be read again
    assert cluster.inbox(worker, "w1") == sorted([first.id, stale.id, last.id])
    for job_id in cluster.finish(worker, "w1"):
        done = client.get(job_id)
        assert (done.state, done.attempts) == (JobState.SUCCEEDED, 1), job_id
        held_by_nothing(cluster, client, done)


# -- a bucket deleted, then needed again ----------------------------------------------------------
def test_a_tick_the_leader_deleted_is_recreated_by_a_retry_and_the_retry_runs(
    cluster: MemoryCluster, client: JobStore
) -> None:
    """A job is assigned, so its pending tick empties; its time passes the grace and the
    leader deletes the tick.  The attempt then fails with an attempt left: the retry's
    pending entry goes into the tick of the job's creation, which is gone.  The fail must
    recreate it (not be refused, which would strand the job running), and the leader must
    see the recreated entry and assign the retry, which then succeeds."""
    worker_session, worker = member(cluster, "worker")
    cluster.register(worker_session, "w1")
    job = client.submit(JobSpec("t", max_attempts=2))
    era, tick = bucket_of(job.id)
    tick_path = f"{cluster.layout.pending_type('t')}/{era}/{tick}"
    leader = Leader(cluster)
    leader.rounds()
    assert client.session.get_children(tick_path) == []
    cluster.clock.advance(EMPTY_SHARD_GRACE + 60)
    leader = Leader(cluster)  # a leader that takes over reads every tick, this one too
    leader.rounds()
    assert not client.session.exists(tick_path), "the leader kept the emptied old tick"
    started, version = cluster.start(worker, "w1", job.id)
    retried = FencedWriter(worker).fail(
        started, version, "w1", {"type": "RuntimeError", "message": "once", "traceback": ""}
    )
    assert retried.state == JobState.PENDING
    assert client.session.exists(cluster.layout.pending_entry("t", 0, job.id))
    assert leader.rounds() == 1
    assert cluster.finish(worker, "w1") == [job.id]
    done = client.get(job.id)
    assert (done.state, done.attempts) == (JobState.SUCCEEDED, 2)
    assert [a.outcome for a in done.history] == [AttemptOutcome.ERROR, AttemptOutcome.SUCCEEDED]
    held_by_nothing(cluster, client, done)


# -- a draining worker --------------------------------------------------------------------------
def drain(cluster: MemoryCluster, store: JobStore, worker_id: str) -> None:
    """Mark a worker draining as its service does: its registration rewritten in place."""
    path = cluster.layout.worker(worker_id)
    raw, _ = store.session.get(path)
    store.session.set(path, WorkerInfo.from_bytes(worker_id, raw).drained().to_bytes())


def test_a_draining_workers_unstarted_prefetched_jobs_go_elsewhere_at_no_attempt_cost(
    cluster: MemoryCluster, client: JobStore
) -> None:
    """A worker with one slot and room to prefetch two holds three jobs, one running.  It
    begins to drain: the two it has not started go to another worker at once (not after
    the running one ends), cost no attempt, and only the running one stays to finish."""
    draining_session, draining = member(cluster, "draining")
    other_session, other = member(cluster, "other")
    cluster.register(draining_session, "d", slots=1, prefetch=2)
    jobs = client.submit_many([JobSpec("t", max_attempts=1) for _ in range(3)])
    leader = Leader(cluster)
    assert leader.rounds() == 3
    running = jobs[0].id
    started, version = cluster.start(draining, "d", running)
    cluster.register(other_session, "o", slots=2)
    drain(cluster, draining, "d")
    assert leader.rounds() == 2
    assert cluster.inbox(draining, "d") == [running]
    assert cluster.inbox(other, "o") == sorted(j.id for j in jobs[1:])
    for job in jobs[1:]:
        moved = client.get(job.id)
        assert (moved.state, moved.worker, moved.attempts) == (JobState.ASSIGNED, "o", 0)
        assert all(a.outcome == AttemptOutcome.REQUEUED for a in moved.history)
    FencedWriter(draining).complete(started, version, "d", "ok")
    cluster.finish(other, "o")
    for job in jobs:
        done = client.get(job.id)
        # max_attempts 1: a hand-on that spent an attempt would have left nothing to run
        assert (done.state, done.attempts) == (JobState.SUCCEEDED, 1), job.id
        held_by_nothing(cluster, client, done)


# -- an inbox orphaned while no leader ran ------------------------------------------------------
def test_an_orphan_inbox_of_a_worker_that_died_with_no_leader_running_is_emptied(
    cluster: MemoryCluster, client: JobStore
) -> None:
    """A worker holds a running and a queued job; the leader goes, then the worker's
    session expires while nobody leads, so no watch sees it go.  The next leader finds an
    inbox with no registration: the running job comes back as lost (its attempt spent),
    the queued one at no cost, both run once on another worker, and the inbox goes."""
    gone_session, gone = member(cluster, "gone")
    other_session, other = member(cluster, "other")
    cluster.register(gone_session, "gone", slots=1, prefetch=1)
    ran, queued = client.submit_many([JobSpec("t", max_attempts=2) for _ in range(2)])
    first = Leader(cluster)
    assert first.rounds() == 2
    cluster.start(gone, "gone", ran.id)
    cluster.zk.expire(first.session, reconnect=False)  # no leader from here on
    cluster.zk.expire(gone_session, reconnect=False)  # its registration and claim go
    cluster.register(other_session, "other", slots=2)
    assert Leader(cluster).rounds() == 2
    assert not client.session.exists(cluster.layout.inbox("gone"))
    assert cluster.inbox(other, "other") == sorted([ran.id, queued.id])
    lost = client.get(ran.id)
    assert [a.outcome for a in lost.tries()] == [AttemptOutcome.LOST] and lost.attempts == 1
    assert client.get(queued.id).attempts == 0
    cluster.finish(other, "other")
    for job_id, attempts in ((ran.id, 2), (queued.id, 1)):
        done = client.get(job_id)
        assert (done.state, done.attempts) == (JobState.SUCCEEDED, attempts), job_id
        held_by_nothing(cluster, client, done)


# -- a record nobody can read -----------------------------------------------------------------
@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xffnot json", b"", b"[1, 2]", b'{"schema": 1}', b'{"schema": 1, "history": [1]}'],
    ids=["bytes", "empty", "a-list", "no-fields", "bad-history"],
)
def test_a_garbage_record_does_not_stop_dispatch(
    cluster: MemoryCluster, client: JobStore, garbage: bytes
) -> None:
    """One pending job's record is damaged.  The leader leaves it (and its entry) alone
    and counts it, and every other job, before and after it in the queue, is assigned
    and runs; the damage neither stops the round nor makes the leader offer the bad one
    round after round."""
    worker_session, worker = member(cluster, "worker")
    cluster.register(worker_session, "w1", slots=8)
    jobs = client.submit_many([JobSpec("t") for _ in range(5)])
    bad = jobs[2]
    client.session.set(cluster.layout.job(bad.id), garbage)
    leader = Leader(cluster)
    assert leader.rounds() == 4
    assert leader.rounds() == 0
    leader.dispatcher._publish(every=0)
    assert leader.dispatcher.stats.unreadable == 1
    assert client.session.exists(cluster.layout.pending_entry("t", 0, bad.id))
    assert client.session.get(cluster.layout.job(bad.id))[0] == garbage
    late = client.submit(JobSpec("t"))  # dispatch goes on for what comes after
    assert leader.rounds() == 1
    finished = cluster.finish(worker, "w1")
    assert finished == sorted([*(j.id for j in jobs if j is not bad), late.id])
    for job_id in finished:
        assert client.get(job_id).state == JobState.SUCCEEDED
