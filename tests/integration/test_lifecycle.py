"""The job lifecycle against a real three-node ensemble, coordinators and workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import client_of, log_text, member_by_pid, running_cluster, worker_pid
from zkq.coordinator.client import Client
from zkq.coordinator.errors import (
    InvalidTransition,
    JobIdTaken,
    JobNotFound,
    PayloadTooLarge,
    WaitTimeout,
)
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import JobSpec, JobState
from zkq.dev.cluster import DevCluster
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with running_cluster(tmp_path_factory.mktemp("lifecycle"), worker_concurrency=8) as c:
        yield c


@pytest.fixture
def client(cluster: DevCluster) -> Iterator[Client]:
    with client_of(cluster) as c:
        yield c


def test_a_job_runs_to_success_with_its_result(client: Client) -> None:
    job = client.submit("echo", {"hello": ["world", 1]})
    assert job.state == JobState.PENDING
    done = client.wait(job.id, 30)
    assert done.state == JobState.SUCCEEDED
    assert done.result == {"hello": ["world", 1]}
    assert done.attempts == 1 and len(done.history) == 1
    assert done.history[0].outcome == "succeeded" and done.finished_at


def test_a_job_is_seen_assigned_then_running(client: Client) -> None:
    job = client.submit("sleep", 1.0)
    seen = {client.wait(job.id, 10, until=lambda j: j.state != JobState.PENDING).state}
    running = client.wait(job.id, 10, until=lambda j: j.state == JobState.RUNNING)
    seen.add(running.state)
    assert running.worker and running.started_at
    assert client.wait(job.id, 10).state == JobState.SUCCEEDED
    assert JobState.RUNNING in seen


def test_a_failing_handler_fails_the_job_with_its_error(client: Client) -> None:
    done = client.wait(client.submit("fail", "boom").id, 30)
    assert done.state == JobState.FAILED
    assert done.error and done.error["message"] == "boom" and done.error["type"] == "RuntimeError"
    assert "Traceback" in done.error["traceback"]


def test_retries_up_to_max_attempts_then_dead(client: Client) -> None:
    done = client.wait(client.submit("fail", "again", max_attempts=3).id, 30)
    assert done.state == JobState.DEAD and done.attempts == 3
    assert [a.outcome for a in done.history] == ["error"] * 3


def test_a_retry_can_succeed(client: Client) -> None:
    done = client.wait(client.submit("flaky", 2, max_attempts=3).id, 30)
    assert done.state == JobState.SUCCEEDED and done.result == "ok on attempt 2"
    assert [a.outcome for a in done.history] == ["error", "succeeded"]


def test_children_are_created_with_the_parents_success(client: Client) -> None:
    parent = client.wait(client.submit("fanout", 3).id, 30)
    assert parent.state == JobState.SUCCEEDED and len(parent.children) == 3
    children = [client.wait(cid, 30) for cid in parent.children]
    assert [c.state for c in children] == [JobState.SUCCEEDED] * 3
    assert {c.parent for c in children} == {parent.id}
    assert sorted(c.result["child"] for c in children) == [0, 1, 2]


def test_an_oversized_result_fails_the_job_clearly(client: Client) -> None:
    done = client.wait(client.submit("bigresult", 70_000).id, 30)
    assert done.state == JobState.FAILED
    assert done.error and "over the limit" in done.error["message"]


def test_an_oversized_payload_is_refused_at_submission(client: Client) -> None:
    with pytest.raises(PayloadTooLarge, match="65536"):
        client.submit("echo", "x" * 70_000)


def test_cancel_a_pending_job(client: Client) -> None:
    job = client.submit("nobody-serves-this")
    cancelled = client.cancel(job.id)
    assert cancelled.state == JobState.CANCELLED
    with pytest.raises(InvalidTransition):
        client.cancel(job.id)


def test_cancel_a_running_job_fences_its_worker(cluster: DevCluster, client: Client) -> None:
    job = client.submit("sleep", 1.5)
    # running on a worker first: cancelling a pending job also gives "cancelled"
    running = client.wait(job.id, 10, until=lambda j: j.state == JobState.RUNNING)
    assert running.worker and running.started_at
    name = member_by_pid(cluster, worker_pid(running.worker))
    cancelled = client.cancel(job.id)
    assert cancelled.state == JobState.CANCELLED
    # the worker learns of it from its claim and stops the attempt, recording nothing (or,
    # had the sleep ended first, its completion is refused): it overwrites nothing
    wait_until(
        lambda: any(
            ("handler stopped (cancelled)" in line or "completion refused (fenced)" in line)
            and job.id in line
            for line in log_text(cluster, name).splitlines()
        ),
        30,
        what="the worker to stop the attempt (or its late completion to be refused)",
    )
    final = client.get(job.id)
    assert final.state == JobState.CANCELLED and final.result is None
    assert final.updated_at == cancelled.updated_at, "the worker wrote after the cancel"


def test_resubmitting_the_same_job_creates_no_duplicate(client: Client) -> None:
    job_id = new_job_id()
    first = client.submit("echo", {"n": 1}, job_id=job_id)
    again = client.submit("echo", {"n": 1}, job_id=job_id)
    assert again.id == first.id == job_id
    with pytest.raises(JobIdTaken):
        client.submit("echo", {"n": 2}, job_id=job_id)
    assert client.wait(job_id, 30).history[0].outcome == "succeeded"
    assert len(client.wait(job_id, 1).history) == 1


def test_higher_priority_runs_first_fifo_within_a_priority(
    cluster: DevCluster, client: Client
) -> None:
    # a dedicated one-slot worker for a type nobody else serves makes the order observable
    cluster.add_worker(app="tests.apps.solo", concurrency=1, name="solo-worker")
    cluster.wait_registered(workers=3, coordinators=2)
    try:
        blocker = client.submit("solo", 1.0)
        client.wait(blocker.id, 10, until=lambda j: j.state == JobState.RUNNING)
        specs = [JobSpec("solo", None, priority=p) for p in (1, 5, 1, 9, 5)]
        jobs = client.submit_many(specs)
        done = [client.wait(j.id, 30) for j in jobs]
        assert [j.state for j in done] == [JobState.SUCCEEDED] * len(specs)
        order = sorted(range(len(done)), key=lambda i: done[i].result["began"])
        assert [specs[i].priority for i in order] == [9, 5, 5, 1, 1]
        assert order.index(1) < order.index(4) and order.index(0) < order.index(2)  # FIFO
    finally:
        cluster.stop_member("solo-worker")


def test_a_thousand_jobs_each_succeed_exactly_once(client: Client) -> None:
    jobs = client.submit_many([JobSpec("noop", {"n": n}) for n in range(1000)])
    assert len({j.id for j in jobs}) == 1000
    done = [client.wait(j.id, 120) for j in jobs]
    assert all(j.state == JobState.SUCCEEDED for j in done)
    # exactly once: one attempt each, which succeeded
    assert all(j.attempts == 1 and [a.outcome for a in j.history] == ["succeeded"] for j in done)
    workers = {j.history[0].worker for j in done}
    assert len(workers) == 2, "both workers should have taken part"


def test_workers_are_listed_with_their_slots(client: Client) -> None:
    workers = client.workers()
    assert len(workers) >= 2
    assert all(w["slots"] == 8 and "echo" in w["types"] for w in workers[:2])


@pytest.mark.parametrize("root", ["/elsewhere"])
def test_clusters_under_other_roots_do_not_see_each_others_jobs(
    cluster: DevCluster, client: Client, root: str, tmp_path: Path
) -> None:
    other = Client(cluster.config("frontend", root=root))
    other.start()
    try:
        job = other.submit("echo", 1)
        with pytest.raises(WaitTimeout) as raised:  # no worker there
            other.wait(job.id, 1.5)
        assert raised.value.job is not None and raised.value.job.state == JobState.PENDING
        # and this cluster, under the default root, has no such job
        with pytest.raises(JobNotFound):
            client.get(job.id)
    finally:
        other.close()


def test_a_prefetched_job_queued_past_its_timeout_is_not_taken_back(
    cluster: DevCluster, client: Client
) -> None:
    # one slot, one prefetched: the second job waits behind the first longer than its
    # own timeout, which counts from its start, not from its assignment
    cluster.add_worker(
        app="tests.apps.solo", concurrency=1, extra_args=["--prefetch", "1"], name="solo-2"
    )
    try:
        first = client.submit("solo", 3.0, timeout=10)
        client.wait(first.id, 10, until=lambda j: j.state == JobState.RUNNING)
        queued = client.submit("solo", 0.1, timeout=1)
        assert client.wait(queued.id, 5, until=lambda j: j.state != JobState.PENDING).state == (
            JobState.ASSIGNED
        )
        done = client.wait(queued.id, 20)
        assert done.state == JobState.SUCCEEDED and done.attempts == 1
        first_finished = client.get(first.id).finished_at
        assert first_finished is not None
        assert done.history[0].started_at >= first_finished - 0.5
    finally:
        cluster.stop_member("solo-2")
