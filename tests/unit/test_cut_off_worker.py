"""A worker cut off from ZooKeeper for longer than its session timeout stops its running
attempts on its own clock (the leader will have taken them back, if the session ended).  But
the session may live on: a ZooKeeper election restarts every session's timer, so a worker
suspended through a long election keeps its session and its claims.  Then nobody else takes
the job back before its timeout, and the worker must hand it back itself once connected
again; when the session did end, the leader's requeue stays the only one."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.history import AttemptOutcome
from zkq.coordinator.job import JobState
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.zk.memory import ManualClock
from zkq.dev.waiting import wait_until
from zkq.worker.cut_off import CutOff
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pipeline import Assignment, Pipeline
from zkq.worker.pools import ThreadPool
from zkq.worker.registry import JobContext, Registry

#: the worker's session timeout: its own clock stops the handler this long after a cut
SESSION = 0.3


@pytest.fixture
def cut_off(cluster: MemoryCluster) -> Iterator[dict[str, Any]]:
    """A one-slot pipeline on a session with a short timeout, running one job whose handler
    is stopped by force."""
    seen: dict[str, Any] = {"stopped": threading.Event()}

    def handler(_payload: Any, ctx: JobContext) -> str:
        try:  # stopped by force: a lost session's attempt may run elsewhere already
            wait_until(lambda: ctx.cancelled, 10, what="the attempt to be stopped")
        finally:
            seen["reason"] = ctx.cancel_reason
            seen["stopped"].set()
        return "late"

    registry = Registry()
    registry.add("t", handler)
    session = cluster.zk.session(dataclasses.replace(cluster.config.zk, session_timeout=SESSION))
    cluster.sessions.append(session)
    session.start()
    worker = JobStore(session, cluster.config.limits)
    released: list[tuple[str, bool]] = []
    pipeline = Pipeline(
        worker,
        ThreadPool(registry),
        1,
        WorkerMetrics(1, lambda: 0),
        generation=lambda: 0,
        release=lambda job_id, relist: released.append((job_id, relist)),
    )
    pipeline.start()
    client = cluster.store("client")
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t", timeout=300, max_attempts=3))
    Leader(cluster).rounds()
    found, version = worker.get_versioned(job.id)
    pipeline.offer([Assignment(found, version, "w1", generation=0)])
    wait_until(lambda: client.get(job.id).state == JobState.RUNNING, 10, what="the start")
    seen.update(worker=worker, client=client, job_id=job.id, pipeline=pipeline, released=released)
    try:
        yield seen
    finally:
        cluster.zk.reconnect(session)
        wait_until(lambda: pipeline.busy == 0, 10, what="the slot to come back")
        pipeline.stop()


def test_a_worker_whose_session_lived_on_gives_the_job_back(
    cluster: MemoryCluster, cut_off: dict[str, Any]
) -> None:
    worker: JobStore = cut_off["worker"]
    client: JobStore = cut_off["client"]
    pipeline: Pipeline = cut_off["pipeline"]
    job_id: str = cut_off["job_id"]
    cluster.zk.disconnect(worker.session)
    assert cut_off["stopped"].wait(10), "the handler was never stopped"
    assert cut_off["reason"] == "session"
    wait_until(lambda: pipeline.busy == 0, 10, what="the stopped handler's slot")
    # nothing can be written while cut off: the attempt stays the worker's to settle
    assert client.get(job_id).state == JobState.RUNNING
    assert pipeline.outstanding == 1 and cut_off["released"] == []
    cluster.zk.reconnect(worker.session)  # the same session: its claim is still there
    wait_until(lambda: client.get(job_id).state == JobState.PENDING, 10, what="the give-back")
    job = client.get(job_id)
    assert [a.outcome for a in job.tries()] == [AttemptOutcome.LOST]
    assert job.history[-1].by == "worker" and "cut off" in (job.history[-1].error or "")
    assert job.worker is None and job.attempts == 1
    assert client.session.exists(cluster.layout.claim(job_id)) is None
    assert client.session.exists(cluster.layout.inbox_entry("w1", job_id)) is None
    wait_until(lambda: cut_off["released"], 10, what="the give-back recorded")
    assert cut_off["released"] == [(job_id, True)] and pipeline.outstanding == 0
    # and it runs again: the leader assigns it like any pending job
    cluster.register(client.session, "w2")
    Leader(cluster).rounds()
    assert client.get(job_id).state == JobState.ASSIGNED


def test_a_worker_whose_session_ended_leaves_the_job_to_the_leader(
    cluster: MemoryCluster, cut_off: dict[str, Any]
) -> None:
    worker: JobStore = cut_off["worker"]
    client: JobStore = cut_off["client"]
    pipeline: Pipeline = cut_off["pipeline"]
    job_id: str = cut_off["job_id"]
    cluster.zk.disconnect(worker.session)
    assert cut_off["stopped"].wait(10), "the handler was never stopped"
    cluster.zk.expire(worker.session)  # reconnects under a new session
    wait_until(lambda: cut_off["released"], 10, what="the attempt let go")
    assert cut_off["released"] == [(job_id, True)] and pipeline.outstanding == 0
    job = client.get(job_id)
    assert job.state == JobState.RUNNING and job.worker == "w1"  # the worker wrote nothing
    Leader(cluster).rounds()  # w1's registration went with its session: the leader requeues
    job = client.get(job_id)
    assert job.state == JobState.PENDING and job.history[-1].by == "leader"


def test_a_stopped_attempt_is_given_back_once_its_handler_returned_or_its_slot_is_lost() -> None:
    """While the stopped handler still runs, the claim keeps a second copy from starting
    elsewhere; one that outlives the pool's stop grace has lost its slot, and may never
    return."""
    clock = ManualClock()
    stopped: CutOff[str] = CutOff(grace=5.0, clock=clock)
    stopped.add("j1", "A")
    stopped.add("j2", "B")
    assert stopped.next_wake() == pytest.approx(5.0)
    stopped.returned("j1", "not A")  # another attempt of the job: not this one
    assert stopped.due(connected=True) == []
    stopped.returned("j1", "A")
    assert stopped.due(connected=False) == []  # nothing is written while cut off
    assert stopped.due(connected=True) == ["A"]
    clock.advance(5.0)
    assert stopped.next_wake() == pytest.approx(0.01)
    assert stopped.due(connected=True) == ["B"] and len(stopped) == 0
    stopped.put_back("j2", "B")  # settling failed: tried again at the next event
    assert stopped.next_wake() is None and stopped.due(connected=True) == ["B"]
