"""One function per lifecycle transition.  Each returns a :class:`Step`: the job's next
record and the ops (:mod:`zkq.coordinator.zk.ops`) of the single ZooKeeper transaction that makes
the change; :mod:`zkq.coordinator.store` runs them, alone or many steps to one multi
(:class:`Batch`, which knows which ops are whose).

Every transaction that changes a record carries the version the actor read (a ``SetData``
with ``version``), so two actors can never both win: the job record's version is the
fencing token.  A worker keeps the version its *start* produced; once the leader requeues
the job (a dead session, an overdue attempt) or a client cancels it, the version moves on
and the worker's late completion is rolled back whole.

These functions do no I/O, so every rule here is unit-tested without ZooKeeper.

=========  =====================  =============================================================
step       actor                  ops (one multi)
=========  =====================  =============================================================
submit     frontend / client      create record (pending) + create pending entry; or, due
                                  later, create record (scheduled) + create scheduled entry
assign     coordinator leader     delete pending entry + set record assigned (v) + create inbox
start      worker                 create claim EPHEMERAL + set record running (v)
complete   worker                 set record succeeded (v) + delete claim + delete inbox entry
                                  [+ create each spawned child's record and pending entry]
fail       worker                 as complete, to pending + new pending entry, or failed/dead
requeue    coordinator leader     set record pending (v) + create pending entry + delete inbox
                                  entry [+ delete the claim of an overdue, still-live attempt];
                                  with a backoff delay: scheduled + scheduled entry instead
promote    coordinator leader     delete scheduled entry + set record pending (v) + create
                                  pending entry (in the bucket of the job's creation)
cancel     client                 set record cancelled (v) + delete pending or scheduled entry
                                  / inbox entry / claim, whichever exist
revive     operator               set a failed/dead/cancelled record pending (v) + pending entry,
                                  or scheduled (v) + scheduled entry when given a later run_at
prune      coordinator leader     delete a finished record (v), once it is in the archive
=========  =====================  =============================================================

The leader's steps (assign, requeue, promote) also go after a check of its election node, which the
store adds as the batch's head (:class:`Batch`): nothing a leader that lost its session
sends applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.errors import InvalidTransition
from zkq.coordinator.job import (
    Attempt,
    AttemptOutcome,
    Job,
    JobState,
    bounded_history,
    check_transition,
    short,
)
from zkq.coordinator.lease import Lease
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk.ops import Create, Delete, Op, SetData, data_bytes
from zkq.coordinator.zk.session import OpResult, Stat


@dataclass(frozen=True)
class Step:
    """The outcome of a transition: the record to write, and the transaction to write it."""

    job: Job
    ops: tuple[Op, ...]

    @property
    def data_bytes(self) -> int:
        """What its ops carry in data."""
        return sum(data_bytes(op) for op in self.ops)


@dataclass(frozen=True)
class Batch:
    """Steps that share one multi, after ``head`` ops that belong to no job (the leader's
    fence).  It maps each op back to its step, so no caller counts ops."""

    steps: tuple[Step, ...]
    head: tuple[Op, ...] = ()

    @property
    def ops(self) -> list[Op]:
        return [*self.head, *(op for step in self.steps for op in step.ops)]

    def culprit(self, index: int) -> int | None:
        """The position in :attr:`steps` of the step whose op ``index`` is (the index a
        :class:`~zkq.coordinator.zk.errors.TransactionFailed` names), or None for a head op."""
        end = len(self.head)
        if index < end:
            return None
        for position, step in enumerate(self.steps):
            end += len(step.ops)
            if index < end:
                return position
        raise IndexError(f"op {index} is past the batch's {end} ops")

    def without(self, position: int) -> Batch:
        """The same batch with one step set aside (a refused step; the rest go again)."""
        return Batch(self.steps[:position] + self.steps[position + 1 :], self.head)

    def results_of(self, results: Sequence[OpResult]) -> list[list[OpResult]]:
        """What a committed multi answered, split per step."""
        out: list[list[OpResult]] = []
        at = len(self.head)
        for step in self.steps:
            out.append(list(results[at : at + len(step.ops)]))
            at += len(step.ops)
        return out


def written_version(results: Sequence[OpResult], read: int) -> int:
    """The record's version after a step committed: its ``SetData`` answers the new stat
    (a set in a committed multi moves the version by exactly one, should none say)."""
    for result in results:
        if isinstance(result, Stat):
            return result.version
    return read + 1


def _pending_entry(layout: Layout, job: Job) -> str:
    return layout.pending_entry(job.type, job.priority, job.id)


def _scheduled_entry(layout: Layout, job: Job) -> str:
    if job.run_at is None:
        raise InvalidTransition(f"job {job.id} is scheduled without a run_at")
    return layout.scheduled_entry(job.run_at, job.id)


def _queue_entry(layout: Layout, job: Job) -> str:
    """The index entry a waiting job (pending or scheduled) is found by."""
    if job.state == JobState.SCHEDULED:
        return _scheduled_entry(layout, job)
    return _pending_entry(layout, job)


def submit(layout: Layout, job: Job) -> Step:
    if job.state not in (JobState.PENDING, JobState.SCHEDULED):
        raise InvalidTransition(f"a new job must be pending or scheduled, not {job.state}")
    return Step(
        job, (Create(layout.job(job.id), job.to_bytes()), Create(_queue_entry(layout, job)))
    )


def assign(layout: Layout, job: Job, version: int, worker_id: str, now: float) -> Step:
    check_transition(job, JobState.ASSIGNED)
    nxt = job.replace(state=JobState.ASSIGNED, worker=worker_id, updated_at=now)
    return Step(
        nxt,
        (
            Delete(_pending_entry(layout, job)),
            SetData(layout.job(job.id), nxt.to_bytes(), version),
            Create(layout.inbox_entry(worker_id, job.id)),
        ),
    )


def start(layout: Layout, job: Job, version: int, worker_id: str, now: float) -> Step:
    check_transition(job, JobState.RUNNING)
    if job.worker != worker_id:
        raise InvalidTransition(f"job {job.id} is assigned to {job.worker}, not {worker_id}")
    # numbered after the history's latest, not after ``attempts``: a requeue gives an
    # attempt back and a revival starts the count afresh, and a number must never repeat
    attempt = Attempt(number=job.attempt_number + 1, worker=worker_id, started_at=now)
    lease = Lease(worker_id, attempt.number, float(job.timeout))
    nxt = job.replace(
        state=JobState.RUNNING,
        attempts=job.attempts + 1,
        started_at=now,
        updated_at=now,
        history=bounded_history((*job.history, attempt)),
    )
    return Step(
        nxt,
        (
            # the claim is the attempt's lease (coordinator/lease.py): its worker renews it
            Create(layout.claim(job.id), lease.to_bytes(), ephemeral=True),
            SetData(layout.job(job.id), nxt.to_bytes(), version),
        ),
    )


def _close_attempt(job: Job, now: float, outcome: AttemptOutcome, error: str | None = None) -> Job:
    """Mark the last attempt ended; a record always has one while it runs."""
    if not job.history:
        return job
    last = job.history[-1]
    if not last.is_attempt:
        return job
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
    return [Delete(layout.claim(job.id)), Delete(layout.inbox_entry(worker_id, job.id))]


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
    nxt = _close_attempt(job, now, AttemptOutcome.SUCCEEDED).replace(
        state=JobState.SUCCEEDED,
        result=result,
        error=None,
        worker=worker_id,  # who finished it, for operators (its attempt says so too)
        finished_at=now,
        updated_at=now,
        children=tuple(c.id for c in children),
    )
    ops = [SetData(layout.job(job.id), nxt.to_bytes(), version), *_release(layout, job, worker_id)]
    for child in children:
        # spawned children exist if and only if their parent succeeded
        ops.extend(submit(layout, child).ops)
    return Step(nxt, tuple(ops))


def fail(
    layout: Layout,
    job: Job,
    version: int,
    worker_id: str,
    error: dict[str, str],
    now: float,
    delay: float = 0.0,
) -> Step:
    """The handler raised: retry while attempts remain, else ``failed`` or ``dead``.

    A retry with ``delay`` > 0 (its backoff, :mod:`~zkq.coordinator.backoff`) waits
    ``scheduled`` until ``now + delay``, found by its scheduled entry; the leader alone
    decides when that has come.  ``now`` is the worker's clock: it is the writer here."""
    closed = _close_attempt(job, now, AttemptOutcome.ERROR, error.get("message"))
    ops = [*_release(layout, job, worker_id)]
    if job.attempts < job.max_attempts and delay > 0:
        check_transition(job, JobState.SCHEDULED)
        nxt = closed.replace(
            state=JobState.SCHEDULED,
            worker=None,
            error=error,
            updated_at=now,
            run_at=now + delay,
            scheduled_for="retry",
        )
        ops.append(Create(_scheduled_entry(layout, nxt)))
    elif job.attempts < job.max_attempts:
        check_transition(job, JobState.PENDING)
        nxt = closed.replace(state=JobState.PENDING, worker=None, error=error, updated_at=now)
        ops.append(Create(_pending_entry(layout, job)))
    else:
        final = JobState.FAILED if job.max_attempts == 1 else JobState.DEAD
        check_transition(job, final)
        nxt = closed.replace(
            state=final, worker=worker_id, error=error, finished_at=now, updated_at=now
        )
    return Step(nxt, (SetData(layout.job(job.id), nxt.to_bytes(), version), *ops))


def requeue(
    layout: Layout,
    job: Job,
    version: int,
    outcome: AttemptOutcome,
    reason: str,
    now: float,
    claim_exists: bool,
    inbox_exists: bool,
    spend_attempt: bool = True,
    by: str = "leader",
    delay: float = 0.0,
    claim_version: int | None = None,
) -> Step:
    """Take a job back from its worker: ``outcome`` is ``lost`` (its session is gone),
    ``timeout`` (the attempt ran past the job's timeout) or ``requeued`` (an operator asked,
    with ``spend_attempt=False``: the interrupted attempt does not count); ``reason`` says
    it for people, ``by`` who asked (``leader``, ``operator``, or ``worker`` giving back an
    attempt it stopped while cut off).

    An assigned job that never started costs no attempt.  A running one already counted
    its attempt at start, so when that was the last one the job is ``dead`` (and keeps
    the worker it died on).  A job that goes back to pending gets a requeue entry in its
    history, after the attempt it interrupted.

    ``delay`` (seconds, the leader's backoff for a ``timeout``): the job waits
    ``scheduled`` until ``now + delay`` (a scheduled entry in place of the pending one).
    ``claim_version``: delete the claim only at this version (the lease the leader judged
    overdue), so a heartbeat that lands meanwhile rolls the take-back back: it wins.
    """
    if job.state not in (JobState.ASSIGNED, JobState.RUNNING) or job.worker is None:
        raise InvalidTransition(
            f"job {job.id} is {job.state}; only assigned or running jobs requeue"
        )
    ops: list[Op] = []
    if inbox_exists:
        ops.append(Delete(layout.inbox_entry(job.worker, job.id)))
    if claim_exists:
        # an overdue attempt of a live worker: free the claim so another worker can take it
        version_seen = -1 if claim_version is None else claim_version
        ops.append(Delete(layout.claim(job.id), version_seen))
    error = {"type": "requeued", "message": reason}
    if job.state == JobState.RUNNING:
        job = _close_attempt(job, now, AttemptOutcome(outcome), reason)
        if not spend_attempt:
            job = job.replace(attempts=job.attempts - 1)
    if job.state == JobState.RUNNING and job.attempts >= job.max_attempts:
        nxt = job.replace(state=JobState.DEAD, error=error, finished_at=now, updated_at=now)
    else:
        entry = Attempt.requeue(job.worker, by, reason, now)
        nxt = job.replace(
            state=JobState.PENDING,
            worker=None,
            error=error,
            updated_at=now,
            history=bounded_history((*job.history, entry)),
        )
        if delay > 0:
            nxt = nxt.replace(state=JobState.SCHEDULED, run_at=now + delay, scheduled_for="retry")
        ops.append(Create(_queue_entry(layout, nxt)))
    return Step(nxt, (SetData(layout.job(job.id), nxt.to_bytes(), version), *ops))


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
    if job.state in (JobState.PENDING, JobState.SCHEDULED):
        ops.append(Delete(_queue_entry(layout, job)))
    if inbox_exists and job.worker:
        ops.append(Delete(layout.inbox_entry(job.worker, job.id)))
    if claim_exists:
        ops.append(Delete(layout.claim(job.id)))
    if job.state == JobState.RUNNING:
        job = _close_attempt(job, now, AttemptOutcome.CANCELLED)
    # no worker finished it: its history names the worker it ran on, if any
    nxt = job.replace(state=JobState.CANCELLED, worker=None, finished_at=now, updated_at=now)
    return Step(nxt, (SetData(layout.job(job.id), nxt.to_bytes(), version), *ops))


def revive(
    layout: Layout,
    job: Job,
    version: int,
    now: float,
    by: str = "operator",
    reason: str = "requeued by an operator",
    run_at: float | None = None,
) -> Step:
    """An operator sends a failed, dead or cancelled job back, with fresh attempts:
    ``pending`` at once, or ``scheduled`` until ``run_at`` when that is later than ``now``.

    Its history is kept (the last entries, within the record's bound) so the earlier
    failures stay visible, with a requeue entry after them; the attempts to come are
    numbered on from the earlier ones."""
    if job.state == JobState.SUCCEEDED:
        raise InvalidTransition(f"job {job.id} succeeded; submit a new job to run it again")
    later = run_at is not None and run_at > now
    check_transition(job, JobState.SCHEDULED if later else JobState.PENDING)
    if job.state not in (JobState.FAILED, JobState.DEAD, JobState.CANCELLED):
        raise InvalidTransition(f"job {job.id} is {job.state}; only a finished job is revived")
    nxt = job.replace(
        state=JobState.SCHEDULED if later else JobState.PENDING,
        attempts=0,
        worker=None,
        finished_at=None,
        updated_at=now,
        history=bounded_history((*job.history, Attempt.requeue(job.worker, by, reason, now))),
    )
    if later:
        nxt = nxt.replace(run_at=run_at, scheduled_for="delay")
    return Step(
        nxt,
        (SetData(layout.job(job.id), nxt.to_bytes(), version), Create(_queue_entry(layout, nxt))),
    )


def promote(layout: Layout, job: Job, version: int, now: float) -> Step:
    """The leader moves a scheduled job whose ``run_at`` has come (on its clock) to
    ``pending``: its entry leaves the due-time index for the pending bucket of the job's
    creation, as a retry's does.  ``run_at`` stays on the record, for lateness figures."""
    check_transition(job, JobState.PENDING)
    if job.state != JobState.SCHEDULED:
        raise InvalidTransition(f"job {job.id} is {job.state}; only a scheduled job is promoted")
    nxt = job.replace(state=JobState.PENDING, updated_at=now)
    return Step(
        nxt,
        (
            Delete(_scheduled_entry(layout, job)),
            SetData(layout.job(job.id), nxt.to_bytes(), version),
            Create(_pending_entry(layout, job)),
        ),
    )


def prune(layout: Layout, job: Job, version: int) -> Step:
    """A finished job leaves ZooKeeper (the leader archived it first); only at the version
    that was archived, so a job changed since stays for the next round."""
    if not job.terminal:
        raise InvalidTransition(f"job {job.id} is {job.state}; only a finished job is pruned")
    return Step(job, (Delete(layout.job(job.id), version),))


def tick(
    layout: Layout, job: Job | None, state_path: str, state: bytes, version: int | None
) -> Step:
    """A schedule's tick: its job (record + pending entry), then the schedule's state
    advanced at the version read (``None``: the state node is new, so it is created).  The
    job's ops come first so that a tick another ticker already made fails ``NodeExists``
    on its record (a duplicate) rather than hiding behind the version check.  ``job``
    None: only the state moves (a skipped or duplicate tick).  The ticker puts its fence
    ahead of the step (:class:`Batch`)."""
    advance: Op = (
        Create(state_path, state) if version is None else SetData(state_path, state, version)
    )
    if job is None:
        return Step(Job(id="", type=""), (advance,))  # no record: the step carries none
    if job.state != JobState.PENDING:
        raise InvalidTransition(f"a tick's job must be pending, not {job.state}")
    return Step(
        job,
        (Create(layout.job(job.id), job.to_bytes()), Create(_pending_entry(layout, job)), advance),
    )
