"""Store edge cases the services rely on, against a real ensemble (no services running)."""

from __future__ import annotations

import time

import pytest

from zkq.coordinator.errors import InvalidInput, LeadershipLost
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.ids import id_for_time
from zkq.coordinator.job import AttemptOutcome, JobSpec, JobState
from zkq.coordinator.store import JobStore

pytestmark = pytest.mark.integration


def take(store: JobStore, job_id: str, worker: str = "w1") -> tuple[int, object]:
    """Assign and start a job as the leader and a worker would."""
    store.session.ensure_path(store.layout.inbox(worker))
    job, version = store.get_versioned(job_id)
    assigned, refused = store.assign_many([(job, version, worker)])
    assert assigned and not refused
    job, version = store.get_versioned(job_id)
    job, version = FencedWriter(store).start(job, version, worker)
    return version, job


def test_a_retry_recreates_a_pending_tick_deleted_while_the_job_ran(store: JobStore) -> None:
    job = store.submit(JobSpec("t", max_attempts=2))
    version, running = take(store, job.id)
    tick = store.layout.pending_shard("t", job.id)
    store.session.delete(tick)  # the leader deletes emptied ticks once their time is past
    error = {"type": "E", "message": "boom"}
    after = FencedWriter(store).fail(running, version, "w1", error)  # type: ignore[arg-type]
    assert after.state == JobState.PENDING
    assert store.session.get_children(tick) == [f"999-{job.id}"]


def test_a_requeue_recreates_a_deleted_pending_tick(store: JobStore) -> None:
    job = store.submit(JobSpec("t", max_attempts=3))
    take(store, job.id)
    store.session.delete(store.layout.pending_shard("t", job.id))
    taken = store.requeue(job.id, AttemptOutcome.LOST, "worker gone")
    assert taken is not None and taken.state == JobState.PENDING
    assert store.session.exists(store.layout.pending_entry("t", 0, job.id))


def test_an_assignment_batch_of_large_records_stays_under_the_request_limit(
    store: JobStore,
) -> None:
    # 30 records of ~60 KB: one multi would be ~1.8 MB, past jute.maxbuffer
    jobs = store.submit_many([JobSpec("big", "x" * 60_000) for _ in range(30)])
    store.session.ensure_path(store.layout.inbox("w1"))
    read = store.get_many([j.id for j in jobs])
    assigned, refused = store.assign_many([(job, version, "w1") for job, version in read.values()])
    assert len(assigned) == 30 and not refused
    assert len(store.session.get_children(store.layout.inbox("w1"))) == 30


@pytest.mark.parametrize("offset", [-3600.0, 3600.0])
def test_a_job_id_dated_far_from_now_is_refused(store: JobStore, offset: float) -> None:
    with pytest.raises(InvalidInput, match="dated"):
        store.submit(JobSpec("t", job_id=id_for_time(time.time() + offset)))


def test_an_assignment_fenced_by_a_gone_election_node_is_refused_whole(store: JobStore) -> None:
    jobs = store.submit_many([JobSpec("t") for _ in range(3)])
    store.session.ensure_path(store.layout.inbox("w1"))
    fence = store.session.create(store.layout.election + "/leader-", ephemeral=True, sequence=True)
    read = store.get_many([j.id for j in jobs])
    choices = [(job, version, "w1") for job, version in read.values()]
    assigned, _ = store.assign_many(choices[:1], fence=fence)
    assert len(assigned) == 1
    store.session.delete(fence)  # as when the leader's session expires
    with pytest.raises(LeadershipLost):
        store.assign_many(choices[1:], fence=fence)
    assert len(store.session.get_children(store.layout.inbox("w1"))) == 1
    assert all(store.get(job.id).state == JobState.PENDING for job, _, _ in choices[1:])
