"""Records that read well: a finished job names the worker that finished it, every requeue is
an entry of the history, attempt numbers never repeat, and a record written before these
fields existed still reads; jobs submitted without an API key carry a tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator import lifecycle
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.controls import Controls
from zkq.coordinator.errors import ConfigError
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import (
    MAX_ATTEMPTS_LIMIT,
    Attempt,
    AttemptOutcome,
    Job,
    JobSpec,
    JobState,
    bounded_history,
)
from zkq.coordinator.paths import Layout
from zkq.coordinator.store import JobStore

L = Layout("/zkq")
ERROR = {"type": "RuntimeError", "message": "boom", "traceback": "Traceback ...\nboom"}


def started(cluster: MemoryCluster, leader: Leader, worker: JobStore, job_id: str) -> Job:
    """Assign ``job_id`` to w1 and start it there: the running record."""
    leader.rounds()
    assert cluster.inbox(worker, "w1") == [job_id]
    return cluster.start(worker, "w1", job_id)[0]


def numbers(job: Job) -> list[int | None]:
    return [a.number for a in job.history]


# -- the worker of a finished job -------------------------------------------------------------
def test_a_succeeded_job_names_the_worker_that_finished_it(cluster: MemoryCluster) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1")
    job = client.submit(JobSpec("t"))
    Leader(cluster).rounds()
    cluster.finish(worker, "w1")
    done = client.get(job.id)
    assert done.state == JobState.SUCCEEDED and done.worker == "w1"
    assert Job.from_bytes(done.to_bytes()).worker == "w1"


def test_failed_and_dead_jobs_keep_their_last_worker() -> None:
    job = Job(id=new_job_id(), type="t", max_attempts=1)
    assigned = lifecycle.assign(L, job, 0, "w1", 1.0).job
    running = lifecycle.start(L, assigned, 1, "w1", 2.0).job
    failed = lifecycle.fail(L, running, 2, "w1", ERROR, 3.0).job
    assert failed.state == JobState.FAILED and failed.worker == "w1"
    lost = lifecycle.requeue(L, running, 2, AttemptOutcome.LOST, "gone", 3.0, False, True).job
    assert lost.state == JobState.DEAD and lost.worker == "w1"
    # a retry goes back to the queue: no worker holds it then
    retried = lifecycle.fail(L, running.replace(max_attempts=2), 2, "w1", ERROR, 3.0).job
    assert retried.state == JobState.PENDING and retried.worker is None


# -- requeues in the history, numbers never repeated ------------------------------------------
def test_an_operator_requeue_is_an_entry_and_the_next_attempt_has_a_new_number(
    cluster: MemoryCluster,
) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1")
    leader = Leader(cluster)
    job = client.submit(JobSpec("t", max_attempts=1))
    started(cluster, leader, worker, job.id)
    taken = Controls(client).requeue(job.id)
    assert taken.state == JobState.PENDING and taken.attempts == 0  # the attempt given back
    first, entry = taken.history
    assert (first.number, first.outcome) == (1, AttemptOutcome.REQUEUED)
    assert (entry.kind, entry.by, entry.number, entry.worker) == ("requeue", "operator", None, "w1")
    assert entry.outcome == "requeued" and entry.error == "requeued by an operator"
    assert entry.started_at == entry.ended_at and entry.started_at >= first.started_at
    again = started(cluster, leader, worker, job.id)
    assert numbers(again) == [1, None, 2] and again.attempts == 1


def test_a_revived_job_numbers_its_attempts_on(cluster: MemoryCluster) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1")
    leader = Leader(cluster)
    job = client.submit(JobSpec("t", max_attempts=2))
    for _ in range(2):
        running = started(cluster, leader, worker, job.id)
        version = client.get_versioned(job.id)[1]
        FencedWriter(worker).fail(running, version, "w1", ERROR)
    assert client.get(job.id).state == JobState.DEAD and numbers(client.get(job.id)) == [1, 2]
    revived = Controls(client).requeue(job.id)
    assert revived.attempts == 0 and revived.history[-1].by == "operator"
    running = started(cluster, leader, worker, job.id)
    assert numbers(running) == [1, 2, None, 3]
    attempt_numbers = [a.number for a in running.tries()]
    assert len(set(attempt_numbers)) == len(attempt_numbers)


def test_the_leader_records_its_requeue_of_a_lost_workers_job(cluster: MemoryCluster) -> None:
    client = cluster.store("client")
    gone_session = cluster.session("gone")
    gone = JobStore(gone_session, cluster.config.limits)
    cluster.register(gone_session, "w1")
    leader = Leader(cluster)
    job = client.submit(JobSpec("t", max_attempts=3))
    started(cluster, leader, gone, job.id)
    cluster.zk.expire(gone_session, reconnect=False)
    leader.rounds()
    back = client.get(job.id)
    assert back.state == JobState.PENDING
    assert [(a.kind, a.outcome, a.by) for a in back.history] == [
        ("attempt", AttemptOutcome.LOST, None),
        ("requeue", AttemptOutcome.REQUEUED, "leader"),
    ]
    assert back.history[1].worker == "w1" and "w1" in (back.history[1].error or "")


def test_the_history_bound_keeps_the_latest_attempt_so_numbering_goes_on() -> None:
    attempt = Attempt(7, "w1", 1.0, 2.0, AttemptOutcome.ERROR)
    requeues = tuple(Attempt.requeue("w1", "operator", "again", float(n)) for n in range(150))
    kept = bounded_history((attempt, *requeues))
    assert len(kept) == MAX_ATTEMPTS_LIMIT and kept[0] == attempt
    job = Job(id=new_job_id(), type="t", state=JobState.ASSIGNED, worker="w1", history=kept)
    assert lifecycle.start(L, job, 1, "w1", 3.0).job.history[-1].number == 8


def test_a_record_written_before_requeue_entries_still_reads() -> None:
    old = {
        "id": new_job_id(),
        "type": "t",
        "state": "succeeded",
        "attempts": 1,
        "worker": None,
        "history": [
            {
                "number": 1,
                "worker": "w1",
                "started_at": 1.0,
                "ended_at": 2.0,
                "outcome": "succeeded",
                "error": None,
            }
        ],
        "schema": 1,
    }
    job = Job.from_bytes(json.dumps(old).encode())
    assert job.history[0].kind == "attempt" and job.history[0].by is None
    assert job.attempt_number == 1 and job.tries() == job.history


# -- the tenant of jobs submitted without an API key ------------------------------------------
def test_client_jobs_carry_the_configured_tenant(cluster: MemoryCluster) -> None:
    default = Client(cluster.config, session=cluster.session("c1"))
    assert default.submit("t").tenant == "default"
    shop = Client(cluster.config, session=cluster.session("c2"), tenant="shop")
    assert shop.submit("t").tenant == "shop"
    batch = shop.submit_many([JobSpec("t"), JobSpec("t", tenant="other")])
    assert [j.tenant for j in batch] == ["shop", "other"]
    assert shop.get(batch[0].id).tenant == "shop"


def test_spawned_children_inherit_their_parents_tenant(cluster: MemoryCluster) -> None:
    client = Client(cluster.config, session=cluster.session("c"), tenant="shop")
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1")
    parent = client.submit("t")
    running = started(cluster, Leader(cluster), worker, parent.id)
    version = worker.get_versioned(parent.id)[1]
    done = FencedWriter(worker).complete(running, version, "w1", None, [JobSpec("t")])
    (child,) = done.children
    assert client.get(child).tenant == "shop" and client.get(child).parent == parent.id


def test_the_tenant_setting_comes_from_flag_environment_file_or_default(tmp_path: Path) -> None:
    assert ClusterConfig.load(environ={}).tenant == "default"
    assert ClusterConfig.load(environ={"ZKQ_TENANT": "env"}).tenant == "env"
    config = tmp_path / "zkq.toml"
    config.write_text('[client]\ntenant = "file"\n')
    from_file = {"ZKQ_CONFIG": str(config)}
    assert ClusterConfig.load(environ=from_file).tenant == "file"
    assert ClusterConfig.load(environ={**from_file, "ZKQ_TENANT": "env"}).tenant == "env"
    assert ClusterConfig.load(environ={"ZKQ_TENANT": "env"}, tenant="flag").tenant == "flag"
    with pytest.raises(ConfigError, match="tenant must be 1 to 64 characters"):
        ClusterConfig.load(environ={"ZKQ_TENANT": "x" * 65})
