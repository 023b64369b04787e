"""The leader's sweep on the in-memory ZooKeeper: jobs whose node was lost (removed by hand,
or by a bug of some version) are found and moved, and healthy jobs are left alone."""

from __future__ import annotations

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import JobState
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.sweep import FIRST_PASS_DELAY, PASS_INTERVAL


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


@pytest.fixture
def worker(cluster: MemoryCluster) -> JobStore:
    store = cluster.store("worker")
    cluster.register(store.session, "w1", slots=4)
    return store


def a_pass(cluster: MemoryCluster, leader: Leader) -> None:
    """Let the leader's clock run to its next sweep, and run rounds until it is through."""
    cluster.clock.advance(max(FIRST_PASS_DELAY, PASS_INTERVAL))
    for _ in range(20):
        leader.rounds(1)
        cluster.clock.advance(1)


def test_a_pending_job_whose_entry_is_gone_gets_it_back_and_runs(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t"))
    client.session.delete(cluster.layout.pending_entry("t", 0, job.id))  # by hand
    leader = Leader(cluster)
    assert leader.rounds() == 0  # nothing shows it to the leader
    a_pass(cluster, leader)
    assert cluster.inbox(worker, "w1") == [job.id]
    assert leader.dispatcher.stats.swept == 1


def test_an_assignment_whose_inbox_entry_is_gone_is_taken_back(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t"))
    leader = Leader(cluster)
    leader.rounds()
    client.session.delete(cluster.layout.inbox_entry("w1", job.id))  # the worker never sees it
    a_pass(cluster, leader)
    again = client.get(job.id)
    # taken back at no attempt's cost, and given out again
    assert again.state == JobState.ASSIGNED and again.attempts == 0
    assert cluster.inbox(worker, "w1") == [job.id]


def test_a_running_job_whose_inbox_entry_and_claim_are_gone_is_taken_back(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t", max_attempts=3))
    leader = Leader(cluster)
    leader.rounds()
    cluster.start(worker, "w1", job.id)
    client.session.delete(cluster.layout.inbox_entry("w1", job.id))  # by hand
    client.session.delete(cluster.layout.claim(job.id))
    leader.rounds()
    a_pass(cluster, leader)
    taken = client.get(job.id)
    assert [a.outcome for a in taken.tries()] == ["lost"]
    assert taken.state == JobState.ASSIGNED and taken.attempts == 1


def test_a_running_attempt_nobody_times_is_timed_again(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t", timeout=5, max_attempts=2))
    leader = Leader(cluster)
    leader.rounds()
    cluster.start(worker, "w1", job.id)
    leader.dispatcher.attempts.forget(job.id)  # as if a look had been dropped
    a_pass(cluster, leader)
    assert [a.outcome for a in client.get(job.id).tries()] == ["timeout"]


def test_a_sweep_over_healthy_jobs_writes_nothing(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    client.session.create(cluster.layout.paused_type("t"))  # the leader assigns nothing
    pending, assigned, running, done = client.submit_many([JobSpec("t") for _ in range(4)])
    for job in (assigned, running, done):  # assigned by hand, as the leader would
        read, version = client.get_versioned(job.id)
        client.assign_many([(read, version, "w1")])
    cluster.start(worker, "w1", running.id)
    job, version = cluster.start(worker, "w1", done.id)
    FencedWriter(worker).complete(job, version, "w1", "ok")
    leader = Leader(cluster)
    leader.rounds()
    zxid = cluster.zk.zxid
    cluster.clock.advance(FIRST_PASS_DELAY)
    leader.dispatcher.sweep.run_pass(cluster.clock())
    assert cluster.zk.zxid == zxid
    assert leader.dispatcher.stats.swept == 0
    states = [client.get(j.id).state for j in (pending, assigned, running, done)]
    assert states == [JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING, JobState.SUCCEEDED]
