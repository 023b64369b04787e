"""The transitions as data: which ops each builds, and what each refuses."""

import pytest

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import InvalidTransition
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import AttemptOutcome, Job, JobState
from zkq.coordinator.lease import Lease, parse_lease
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import Check, Create, Delete, Op, SetData, Stat

L = Layout("/zkq")
NAMES = {Create: "create", Delete: "delete", SetData: "set_data", Check: "check"}


def ops_of(step: lifecycle.Step) -> list[tuple[str, str]]:
    return [(NAMES[type(op)], op.path) for op in step.ops]


def new_job(**kw: object) -> Job:
    return Job(id=new_job_id(), type="t", **kw)  # type: ignore[arg-type]


def test_submit_creates_the_record_and_its_pending_entry() -> None:
    job = new_job(priority=7)
    step = lifecycle.submit(L, job)
    assert step.job == job
    assert ops_of(step) == [
        ("create", L.job(job.id)),
        ("create", L.pending_entry("t", 7, job.id)),
    ]


def test_assign_start_complete_chain_with_version_checks() -> None:
    job = new_job()
    a = lifecycle.assign(L, job, 0, "w1", 1.0)
    assert a.job.state == JobState.ASSIGNED and a.job.worker == "w1"
    assert ops_of(a) == [
        ("delete", L.pending_entry("t", 0, job.id)),
        ("set_data", L.job(job.id)),
        ("create", L.inbox_entry("w1", job.id)),
    ]
    assert a.ops[1] == SetData(L.job(job.id), a.job.to_bytes(), 0)
    s = lifecycle.start(L, a.job, 1, "w1", 2.0)
    assert s.job.state == JobState.RUNNING and s.job.attempts == 1
    # the claim is the lease: who holds it, which attempt, for how long (the job's timeout)
    lease = Lease("w1", 1, float(job.timeout)).to_bytes()
    assert s.ops[0] == Create(L.claim(job.id), lease, ephemeral=True)
    assert parse_lease(lease) == Lease("w1", 1, float(job.timeout), 0)
    assert parse_lease(b"w1") == Lease("w1")  # an older zkq's claim: no lease
    assert s.ops[1] == SetData(L.job(job.id), s.job.to_bytes(), 1)
    child = new_job()
    c = lifecycle.complete(L, s.job, 2, "w1", {"ok": 1}, 3.0, [child])
    assert c.job.state == JobState.SUCCEEDED and c.job.children == (child.id,)
    assert c.job.history[-1].outcome == "succeeded" and c.job.history[-1].ended_at == 3.0
    assert ops_of(c)[:3] == [
        ("set_data", L.job(job.id)),
        ("delete", L.claim(job.id)),
        ("delete", L.inbox_entry("w1", job.id)),
    ]
    assert ("create", L.job(child.id)) in ops_of(c)  # children only with the parent's success


def test_start_refuses_a_job_assigned_to_someone_else() -> None:
    job = new_job(state=JobState.ASSIGNED, worker="w2")
    with pytest.raises(InvalidTransition):
        lifecycle.start(L, job, 1, "w1", 1.0)


def running(attempts: int, max_attempts: int) -> Job:
    job = new_job(
        state=JobState.ASSIGNED, worker="w1", attempts=attempts - 1, max_attempts=max_attempts
    )
    return lifecycle.start(L, job, 1, "w1", 1.0).job


def test_fail_retries_while_attempts_remain_then_dead() -> None:
    err = {"type": "RuntimeError", "message": "boom"}
    retry = lifecycle.fail(L, running(1, 3), 2, "w1", err, 2.0)
    assert retry.job.state == JobState.PENDING and retry.job.error == err
    assert ("create", L.pending_entry("t", 0, retry.job.id)) in ops_of(retry)
    dead = lifecycle.fail(L, running(3, 3), 2, "w1", err, 2.0)
    assert dead.job.state == JobState.DEAD
    once = lifecycle.fail(L, running(1, 1), 2, "w1", err, 2.0)
    assert once.job.state == JobState.FAILED


def test_requeue_of_an_unstarted_job_costs_no_attempt() -> None:
    job = new_job(state=JobState.ASSIGNED, worker="w1", max_attempts=1)
    step = lifecycle.requeue(
        L, job, 1, "lost", "worker gone", 2.0, claim_exists=False, inbox_exists=True
    )
    assert step.job.state == JobState.PENDING and step.job.attempts == 0
    assert ("delete", L.inbox_entry("w1", job.id)) in ops_of(step)


def test_requeue_of_a_running_job_on_its_last_attempt_is_dead() -> None:
    step = lifecycle.requeue(
        L, running(1, 1), 2, "lost", "gone", 2.0, claim_exists=False, inbox_exists=True
    )
    assert step.job.state == JobState.DEAD and step.job.history[-1].outcome == "lost"
    assert not any(p.startswith(L.pending) for _, p in ops_of(step))


def test_requeue_of_an_overdue_attempt_frees_its_claim() -> None:
    step = lifecycle.requeue(
        L, running(1, 2), 2, "timeout", "late", 9.0, claim_exists=True, inbox_exists=True
    )
    assert ("delete", L.claim(step.job.id)) in ops_of(step)
    assert step.job.state == JobState.PENDING and step.job.tries()[-1].outcome == "timeout"


def test_cancel_removes_whatever_holds_the_job() -> None:
    pending = new_job()
    assert ("delete", L.pending_entry("t", 0, pending.id)) in ops_of(
        lifecycle.cancel(L, pending, 0, 1.0, claim_exists=False, inbox_exists=False)
    )
    run = running(1, 1)
    step = lifecycle.cancel(L, run, 2, 1.0, claim_exists=True, inbox_exists=True)
    assert {("delete", L.claim(run.id)), ("delete", L.inbox_entry("w1", run.id))} <= set(
        ops_of(step)
    )
    with pytest.raises(InvalidTransition):
        lifecycle.cancel(L, step.job, 3, 2.0, claim_exists=False, inbox_exists=False)


def test_revive_sends_a_dead_job_back_with_fresh_attempts() -> None:
    err = {"type": "RuntimeError", "message": "boom"}
    dead = lifecycle.fail(L, running(2, 2), 2, "w1", err, 2.0).job
    step = lifecycle.revive(L, dead, 3, 4.0)
    assert step.job.state == JobState.PENDING and step.job.attempts == 0
    assert step.job.history[:-1] == dead.history
    revived = step.job.history[-1]  # the revival, as an entry of its own
    assert (revived.kind, revived.by, revived.number, revived.started_at) == (
        "requeue",
        "operator",
        None,
        4.0,
    )
    assert ("create", L.pending_entry("t", 0, dead.id)) in ops_of(step)
    done = lifecycle.complete(L, running(1, 1), 2, "w1", None, 3.0)
    with pytest.raises(InvalidTransition, match="submit a new job"):
        lifecycle.revive(L, done.job, 3, 4.0)


def test_requeue_records_the_outcome_as_its_string() -> None:
    step = lifecycle.requeue(
        L, running(1, 2), 2, AttemptOutcome.LOST, "gone", 3.0, claim_exists=False, inbox_exists=True
    )
    assert step.job.to_dict()["history"][-2]["outcome"] == "lost"
    assert Job.from_bytes(step.job.to_bytes()).history[-2].outcome is AttemptOutcome.LOST


def test_prune_deletes_a_finished_record_at_the_version_read() -> None:
    done = lifecycle.complete(L, running(1, 1), 2, "w1", None, 3.0).job
    assert lifecycle.prune(L, done, 3).ops == (Delete(L.job(done.id), 3),)
    with pytest.raises(InvalidTransition):
        lifecycle.prune(L, running(1, 1), 2)


def batch_of(n: int, head: tuple[Op, ...] = ()) -> lifecycle.Batch:
    jobs = [new_job(state=JobState.PENDING) for _ in range(n)]
    assigned = [lifecycle.assign(L, job, 0, "w1", 1.0) for job in jobs[:-1]]
    return lifecycle.Batch((*assigned, lifecycle.submit(L, jobs[-1])), head)


def test_a_batch_maps_each_op_back_to_its_step() -> None:
    batch = batch_of(3, head=(Check(L.election + "/n-0000000001"),))
    # one head op, two assignments of three ops each, one submission of two
    assert len(batch.ops) == 1 + 3 + 3 + 2
    assert [batch.culprit(i) for i in range(len(batch.ops))] == [None, 0, 0, 0, 1, 1, 1, 2, 2]
    with pytest.raises(IndexError):
        batch.culprit(len(batch.ops))
    rest = batch.without(1)
    assert rest.steps == (batch.steps[0], batch.steps[2]) and rest.head == batch.head


def test_a_batch_splits_a_multis_answers_per_step() -> None:
    batch = batch_of(2)
    stat = Stat(version=1, ephemeral_owner=0, num_children=0, data_length=1, created=0, modified=0)
    answers = [None, stat, "/inbox", "/job", "/pending"]
    assert batch.results_of(answers) == [[None, stat, "/inbox"], ["/job", "/pending"]]
    assert lifecycle.written_version(batch.results_of(answers)[0], 0) == 1
    assert lifecycle.written_version([None], 4) == 5
