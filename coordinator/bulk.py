"""Cancel or requeue every job a filter selects (``zkq cancel --type T --state pending``,
``POST /v1/jobs/bulk/cancel``), each job by its own fenced transition.

A job is judged on the record as read and written against that record's version, like
every other actor's write (:mod:`zkq.coordinator.lifecycle`): a job that moved on between
the selection and the write (a worker finished it, the leader assigned it) fails the
version check, is read again and judged again.  Still selected, it is acted on; no longer
(it ended, it left the state asked for), it is *skipped*.  So nothing is acted on twice,
and nothing the filter no longer selects is touched.  After a lost reply the record is
compared with the bytes written: our own write is *done*, not skipped.

Two ways to drive it: :func:`select_all` then :meth:`BulkAction.apply` over exactly the
ids counted (the CLI, which asks before it acts), and :func:`step`, one bounded slice of
work ending with where to continue (the HTTP API, whose requests must not run unbounded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import JobNotFound, Unavailable, ZkqError
from zkq.coordinator.job import AttemptOutcome, Job, JobState
from zkq.coordinator.listing import scan_jobs
from zkq.coordinator.lookup import Bound, within
from zkq.coordinator.selection import JobFilter
from zkq.coordinator.store import MAX_DECISIONS, JobStore
from zkq.coordinator.zk import TransactionFailed, zk_errors

ACTIONS = ("cancel", "requeue")
#: states each action applies to; a selected job in any other state is not counted
APPLIES = {
    "cancel": frozenset(
        {JobState.SCHEDULED, JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING}
    ),
    "requeue": frozenset(
        {JobState.ASSIGNED, JobState.RUNNING, JobState.FAILED, JobState.DEAD, JobState.CANCELLED}
    ),
}
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
#: jobs read in one pipelined round before acting on them one by one
CHUNK = 100
REASON = "requeued by an operator"


@dataclass
class Tally:
    """What a bulk action did: ``done`` acted on, ``skipped`` ended or changed meanwhile,
    ``failed`` refused (with the first few reasons)."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed

    def add(self, outcome: str, error: str | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if error and len(self.errors) < 5:
            self.errors.append(error)


class BulkAction:
    """``action`` (cancel or requeue) on jobs of ``store`` that ``selected`` holds for."""

    def __init__(self, store: JobStore, action: str, selected: JobFilter) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown bulk action {action!r}")
        self.store = store
        self.action = action
        self.selected = selected

    def wanted(self, job: Job) -> bool:
        """Selected by the filter, and in a state the action applies to."""
        return job.state in APPLIES[self.action] and self.selected.matches(job)

    def apply(
        self,
        job_ids: Sequence[str],
        tally: Tally,
        bound: Bound | None = None,
        progress: Callable[[Tally], None] | None = None,
        stop_at: float | None = None,
        chunk_size: int = CHUNK,
    ) -> int:
        """Act on ``job_ids`` in chunks, each read in one round; returns how many were
        handled (all, unless ``stop_at``, a ``time.monotonic()``, passed first: then the
        rest are the caller's to continue with).  ``bound``: each chunk's deadline."""
        bound = bound or within(30.0)
        handled = 0
        for start in range(0, len(job_ids), chunk_size):
            if stop_at is not None and handled and time.monotonic() > stop_at:
                break
            chunk = job_ids[start : start + chunk_size]
            with bound() as deadline:
                with zk_errors():
                    seen = self.store.get_many(chunk, deadline)
                for job_id in chunk:
                    outcome, error = self._one(job_id, seen.get(job_id), deadline)
                    tally.add(outcome, error)
            handled += len(chunk)
            if progress is not None:
                progress(tally)
        return handled

    def _one(
        self, job_id: str, seen: tuple[Job, int] | None, deadline: float
    ) -> tuple[str, str | None]:
        if seen is None:
            return SKIPPED, None  # gone (pruned) since it was selected
        written: bytes | None = None

        def attempt() -> str:
            nonlocal written, seen
            for _ in range(MAX_DECISIONS):
                if seen is not None:
                    (job, version), seen = seen, None
                else:
                    try:
                        job, version, raw = self.store.read(job_id)
                    except JobNotFound:
                        return SKIPPED
                    if written is not None and raw == written:
                        return DONE  # our write, whose reply was lost
                if not self.wanted(job):
                    return SKIPPED
                if self.action == "requeue" and job.state in (JobState.ASSIGNED, JobState.RUNNING):
                    # the store's own requeue, only at the version judged
                    taken = self.store.requeue(
                        job_id,
                        AttemptOutcome.REQUEUED,
                        REASON,
                        spend_attempt=False,
                        expected_version=version,
                        by="operator",
                        deadline=deadline,
                    )
                    if taken is not None:
                        return DONE
                    continue
                step = self._step(job, version)
                written = step.job.to_bytes()
                try:
                    self.store.commit(step.ops)
                    return DONE
                except TransactionFailed:
                    continue  # it moved meanwhile: judge it again
            return FAILED

        try:
            with zk_errors():
                outcome = self.store.session.retry(attempt, deadline, self.action)
        except Unavailable:
            raise  # the cluster, not this job: the caller stops
        except ZkqError as exc:
            return FAILED, f"{job_id}: {exc}"
        return outcome, (f"{job_id}: kept changing" if outcome == FAILED else None)

    def _step(self, job: Job, version: int) -> lifecycle.Step:
        layout = self.store.layout
        now = time.time()
        if self.action == "requeue":
            return lifecycle.revive(layout, job, version, now)
        exists = self.store.session.exists
        claim = job.state == JobState.RUNNING and exists(layout.claim(job.id)) is not None
        inbox = bool(job.worker) and (
            exists(layout.inbox_entry(job.worker or "", job.id)) is not None
        )
        return lifecycle.cancel(layout, job, version, now, claim, inbox)


def select_all(action: BulkAction, per_scan: int = 10_000, scan_seconds: float = 60.0) -> list[str]:
    """Ids of every job the action would act on now, oldest first (reading all records in
    the filter's time window, ``per_scan`` at a time)."""
    found: list[str] = []
    after: str | None = None
    while True:
        scan = scan_jobs(
            action.store.session,
            after,
            per_scan,
            action.wanted,
            time.monotonic() + scan_seconds,
            budget=per_scan,
            window=action.selected.id_range(),
        )
        found.extend(job.id for job in scan.jobs)
        if scan.exhausted or scan.last is None:
            return found
        after = scan.last


@dataclass(frozen=True)
class Slice:
    """One bounded step of a bulk action: ``matched`` jobs found in it, what was done, and
    where the next step starts (None: finished)."""

    matched: int
    tally: Tally
    next: str | None


def step(
    action: BulkAction,
    after: str | None,
    limit: int,
    budget: int,
    bound: Bound,
    work_seconds: float,
    dry_run: bool = False,
    chunk_size: int = CHUNK,
) -> Slice:
    """Select up to ``limit`` jobs past ``after``, newest first, reading at most ``budget``
    records, and act on them for at most about ``work_seconds``.  Newest first, so the
    steps after the first walk only towards older jobs: a job submitted while the steps
    run is never selected, and the work has an end.  ``dry_run``: count, act on none."""
    started = time.monotonic()
    with bound() as deadline:
        enough_at = started + (deadline - started) / 2
        scan = scan_jobs(
            action.store.session,
            after,
            budget if dry_run else limit,
            action.wanted,
            deadline,
            budget=budget,
            enough_at=enough_at,
            newest=True,
            window=action.selected.id_range(),
        )
    after_scan = None if scan.exhausted else scan.last
    tally = Tally()
    if dry_run:
        return Slice(len(scan.jobs), tally, after_scan)
    ids = [job.id for job in scan.jobs]
    handled = action.apply(ids, tally, bound, stop_at=started + work_seconds, chunk_size=chunk_size)
    if handled < len(ids):
        return Slice(handled, tally, ids[handled - 1])
    return Slice(len(ids), tally, after_scan)


__all__ = ["ACTIONS", "APPLIES", "BulkAction", "Slice", "Tally", "select_all", "step"]
