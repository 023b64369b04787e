"""A worker's inbox on the in-memory ZooKeeper: a job taken back from the worker's lost
session and assigned to its new one while the worker still held it is offered once the
old hold is let go; only jobs assigned to the worker are offered, so listing again after a
refusal cannot loop; a listing that failed is tried again."""

from __future__ import annotations

import threading

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.history import AttemptOutcome
from zkq.coordinator.job import JobState
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.zk import ConnectionLost
from zkq.worker.inbox import Inbox


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


def offered(inbox: Inbox, worker_id: str, generation: int) -> list[str]:
    return [a.job.id for a in inbox.new_assignments(worker_id, generation)]


def test_a_job_given_back_to_our_new_session_while_held_is_offered_once_let_go(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    inbox = Inbox(worker, threading.Event())
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t"))
    leader = Leader(cluster)
    leader.rounds()
    assert offered(inbox, "w1", 0) == [job.id]  # held from now on, queued in the pipeline
    cluster.zk.expire(worker.session)  # w1 is gone; the worker comes back as w2
    cluster.register(worker.session, "w2")
    leader.rounds()  # the leader takes the job back from w1 and gives it to w2
    assert cluster.inbox(worker, "w2") == [job.id]
    assert offered(inbox, "w2", 1) == []  # still held under the lost session
    inbox.release(job.id, relist=True)  # the pipeline drops the lost session's assignment
    assert inbox.dirty
    assignments = inbox.new_assignments("w2", 1)
    assert [(a.job.id, a.job.worker, a.generation) for a in assignments] == [(job.id, "w2", 1)]


def test_only_jobs_assigned_to_us_are_offered_and_none_is_held_for_nothing(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    inbox = Inbox(worker, threading.Event())
    cluster.register(worker.session, "w1")
    running, cancelled = client.submit(JobSpec("t")), client.submit(JobSpec("t"))
    Leader(cluster).rounds()
    cluster.start(worker, "w1", running.id)  # our own running attempt keeps its entry
    client.cancel(cancelled.id)
    # a stray: an entry whose record went on elsewhere (left by hand, or by an old bug)
    stray = client.submit(JobSpec("t"))
    worker.session.create(cluster.layout.inbox_entry("w1", stray.id))
    assert client.get(running.id).state == JobState.RUNNING
    assert offered(inbox, "w1", 0) == []
    assert len(inbox) == 0  # nothing held: a later change is read afresh
    assert offered(inbox, "w1", 0) == []  # and listing again offers nothing: no loop


def test_a_listing_that_failed_is_made_again(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("worker")
    inbox = Inbox(worker, threading.Event())
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t"))
    Leader(cluster).rounds()
    cluster.zk.disconnect(worker.session)
    with pytest.raises(ConnectionLost):
        inbox.new_assignments("w1", 0)
    assert inbox.dirty and len(inbox) == 0  # its watch may not be set: list again
    cluster.zk.reconnect(worker.session)
    assert offered(inbox, "w1", 0) == [job.id]
    assert not inbox.dirty


def test_an_assignment_is_offered_once_per_version_of_its_record(
    cluster: MemoryCluster, client: JobStore
) -> None:
    """A claim refused for a reason the record does not show (a leftover claim node, an
    older cluster's ACL) is let go and listed again: offering the same record again would
    be refused again, in a loop.  Once the record changes, it is offered again."""
    worker = cluster.store("worker")
    inbox = Inbox(worker, threading.Event())
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t"))
    leader = Leader(cluster)
    leader.rounds()
    assert offered(inbox, "w1", 0) == [job.id]
    inbox.release(job.id, relist=True)  # refused at its claim; the record did not change
    assert offered(inbox, "w1", 0) == []
    assert offered(inbox, "w1", 0) == []
    client.requeue(job.id, AttemptOutcome.REQUEUED, "by hand", spend_attempt=False, by="operator")
    leader.rounds()  # assigned to w1 again: a new version
    assert client.get(job.id).worker == "w1"
    assert offered(inbox, "w1", 0) == [job.id]
