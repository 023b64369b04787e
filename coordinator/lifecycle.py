"""One function per lifecycle transition.  Each returns the job's next record and the ops of
the single ZooKeeper transaction that makes the change; :mod:`zkq.coordinator.store` runs them.

Every transaction that changes a record carries the version the actor read (a ``set_data``
with ``version=``), so two actors can never both win: the job record's version is the
fencing token.  A worker keeps the version its *start* produced; once the leader requeues
the job (a dead session, an overdue attempt) or a client cancels it, the version moves on
and the worker's late completion is rolled back whole.

These functions do no I/O, so every rule here is unit-tested without ZooKeeper.

=========  =====================  =============================================================
step       actor                  ops (one multi)
=========  =====================  =============================================================
submit     frontend / client      create record (pending) + create pending entry
assign     coordinator leader     delete pending entry + set record assigned (v) + create inbox
start      worker                 create claim EPHEMERAL + set record running (v)
complete   worker                 set record succeeded (v) + delete claim + delete inbox entry
                                  [+ create each spawned child's record and pending entry]
fail       worker                 as complete, to pending + new pending entry, or failed/dead
requeue    coordinator leader     set record pending (v) + create pending entry + delete inbox
                                  entry [+ delete the claim of an overdue, still-live attempt]
cancel     client                 set record cancelled (v) + delete pending entry / inbox entry
                                  / claim, whichever exist
revive     operator               set a failed/dead/cancelled record pending (v) + pending entry
=========  =====================  =============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.errors import InvalidTransition
from zkq.coordinator.job import MAX_ATTEMPTS_LIMIT, Attempt, Job, JobState, check_transition, short
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import Op, op_create, op_delete, op_set


@dataclass(frozen=True)
class Step:
    """The outcome of a transition: the record to write, and the transaction to write it."""

    job: Job
    ops: list[Op]


def _pending_entry(layout: Layout, job: Job) -> str:
    return layout.pending_entry(job.type, job.priority, job.id)


def submit(layout: Layout, job: Job) -> list[Op]:
    if job.state != JobState.PENDING:
        raise InvalidTransition(f"a new job must be pending, not {job.state}")
    return [
        op_create(layout.job(job.id), job.to_bytes()),
        op_create(_pending_entry(layout, job)),
    ]


def assign(layout: Layout, job: Job, version: int, worker_id: str, now: float) -> Step:
    check_transition(job, JobState.ASSIGNED)
    nxt = job.replace(state=JobState.ASSIGNED, worker=worker_id, updated_at=now)
    return Step(
        nxt,
        [
            op_delete(_pending_entry(layout, job)),
            op_set(layout.job(job.id), nxt.to_bytes(), version),
            op_create(layout.inbox_entry(worker_id, job.id)),
        ],
    )


def start(layout: Layout, job: Job, version: int, worker_id: str, now: float) -> Step:
    check_transition(job, JobState.RUNNING)
    if job.worker != worker_id:
        raise InvalidTransition(f"job {job.id} is assigned to {job.worker}, not {worker_id}")
    attempt = Attempt(number=job.attempts + 1, worker=worker_id, started_at=now)
    nxt = job.replace(
        state=JobState.RUNNING,
        attempts=job.attempts + 1,
        started_at=now,
        updated_at=now,
        # bounded: an operator may revive a job many times
        history=(*job.history, attempt)[-MAX_ATTEMPTS_LIMIT:],
    )
    return Step(
        nxt,
        [
            op_create(layout.claim(job.id), worker_id.encode(), ephemeral=True),
            op_set(layout.job(job.id), nxt.to_bytes(), version),
        ],
    )


def _close_attempt(job: Job, now: float, outcome: str, error: str | None = None) -> Job:
    """Mark the last attempt ended; a record always has one while it runs."""
    if not job.history:
        return job
    last = job.history[-1]
    closed = Attempt(
        number=last.number,
        worker=last.worker,
        started_at=last.started_at,
        ended_at=now,
        outcome=outcome,
        error=short(error),
    )
    return job.replace(history=(*job.history[:-1], closed))


def _release(layout: Layout, job: Job, worker_id: str) -> list[Op]:
    """Ops that end ``worker_id``'s hold on a running job: its claim and inbox entry."""
    return [op_delete(layout.claim(job.id)), op_delete(layout.inbox_entry(worker_id, job.id))]


def complete(
    layout: Layout,
    job: Job,
    version: int,
    worker_id: str,
    result: Any,
    now: float,
    children: Sequence[Job] = (),
) -> Step:
    check_transition(job, JobState.SUCCEEDED)
    nxt = _close_attempt(job, now, "succeeded").replace(
        state=JobState.SUCCEEDED,
        result=result,
        error=None,
        worker=None,
        finished_at=now,
        updated_at=now,
        children=tuple(c.id for c in children),
    )
    ops = [op_set(layout.job(job.id), nxt.to_bytes(), version), *_release(layout, job, worker_id)]
    for child in children:
        # spawned children exist if and only if their parent succeeded
        ops.extend(submit(layout, child))
    return Step(nxt, ops)


def fail(
    layout: Layout, job: Job, version: int, worker_id: str, error: dict[str, str], now: float
) -> Step:
    """The handler raised: retry while attempts remain, else ``failed`` or ``dead``."""
    closed = _close_attempt(job, now, "error", error.get("message"))
    ops = [*_release(layout, job, worker_id)]
    if job.attempts < job.max_attempts:
        check_transition(job, JobState.PENDING)
        nxt = closed.replace(state=JobState.PENDING, worker=None, error=error, updated_at=now)
        ops.append(op_create(_pending_entry(layout, job)))
    else:
        final = JobState.FAILED if job.max_attempts == 1 else JobState.DEAD
        check_transition(job, final)
        nxt = closed.replace(state=final, worker=None, error=error, finished_at=now, updated_at=now)
    return Step(nxt, [op_set(layout.job(job.id), nxt.to_bytes(), version), *ops])


def requeue(
    layout: Layout,
    job: Job,
    version: int,
    outcome: str,
    reason: str,
    now: float,
    claim_exists: bool,
    inbox_exists: bool,
    spend_attempt: bool = True,
) -> Step:
    """Take a job back from its worker: ``outcome`` is ``lost`` (its session is gone),
    ``timeout`` (the attempt ran past the job's timeout) or ``requeued`` (an operator asked,
    with ``spend_attempt=False``: the interrupted attempt does not count); ``reason`` says
    it for people.

    An assigned job that never started costs no attempt.  A running one already counted
    its attempt at start, so when that was the last one the job is ``dead``.
    """
    if job.state not in (JobState.ASSIGNED, JobState.RUNNING) or job.worker is None:
        raise InvalidTransition(
            f"job {job.id} is {job.state}; only assigned or running jobs requeue"
        )
    ops: list[Op] = []
    if inbox_exists:
        ops.append(op_delete(layout.inbox_entry(job.worker, job.id)))
    if claim_exists:
        # an overdue attempt of a live worker: free the claim so another worker can take it
        ops.append(op_delete(layout.claim(job.id)))
    error = {"type": "requeued", "message": reason}
    if job.state == JobState.RUNNING:
        job = _close_attempt(job, now, outcome, reason)
        if not spend_attempt:
            job = job.replace(attempts=job.attempts - 1)
    if job.state == JobState.RUNNING and job.attempts >= job.max_attempts:
        nxt = job.replace(
            state=JobState.DEAD, worker=None, error=error, finished_at=now, updated_at=now
        )
    else:
        nxt = job.replace(state=JobState.PENDING, worker=None, error=error, updated_at=now)
        ops.append(op_create(_pending_entry(layout, job)))
    return Step(nxt, [op_set(layout.job(job.id), nxt.to_bytes(), version), *ops])


def cancel(
    layout: Layout,
    job: Job,
    version: int,
    now: float,
    claim_exists: bool,
    inbox_exists: bool,
) -> Step:
    check_transition(job, JobState.CANCELLED)
    ops: list[Op] = []
    if job.state == JobState.PENDING:
        ops.append(op_delete(_pending_entry(layout, job)))
    if inbox_exists and job.worker:
        ops.append(op_delete(layout.inbox_entry(job.worker, job.id)))
    if claim_exists:
        ops.append(op_delete(layout.claim(job.id)))
    if job.state == JobState.RUNNING:
        job = _close_attempt(job, now, "cancelled")
    nxt = job.replace(state=JobState.CANCELLED, worker=None, finished_at=now, updated_at=now)
    return Step(nxt, [op_set(layout.job(job.id), nxt.to_bytes(), version), *ops])


def revive(layout: Layout, job: Job, version: int, now: float) -> Step:
    """An operator sends a failed, dead or cancelled job back, with fresh attempts.

    Its history is kept (the last attempts, within the record's bound) so the earlier
    failures stay visible."""
    if job.state == JobState.SUCCEEDED:
        raise InvalidTransition(f"job {job.id} succeeded; submit a new job to run it again")
    check_transition(job, JobState.PENDING)
    if job.state not in (JobState.FAILED, JobState.DEAD, JobState.CANCELLED):
        raise InvalidTransition(f"job {job.id} is {job.state}; only a finished job is revived")
    nxt = job.replace(
        state=JobState.PENDING,
        attempts=0,
        worker=None,
        finished_at=None,
        updated_at=now,
        history=job.history[-MAX_ATTEMPTS_LIMIT:],
    )
    return Step(
        nxt,
        [
            op_set(layout.job(job.id), nxt.to_bytes(), version),
            op_create(_pending_entry(layout, job)),
        ],
    )
