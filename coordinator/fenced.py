"""A worker's writes of job records: the *fenced* retry discipline of :mod:`zkq.coordinator.store`.

A worker holds the version it read (an assignment's, then its own start's) and never writes
on top of another.  After a transient error it re-reads: the record holding exactly the
bytes it wrote means the multi went through; the same version as before means try again;
anything else means another actor moved the job on (the leader requeued it, a client
cancelled it), and the write is refused with :class:`~zkq.coordinator.errors.Fenced`.  Rebasing
onto a newer version would undo that requeue or cancel.

Claims and ends of many attempts can share one multi (:meth:`FencedWriter.commit_many`, the
worker pipeline's group commit); each step keeps its own version check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import Fenced, JobNotFound, PayloadTooLarge, Unavailable
from zkq.coordinator.history import AttemptOutcome
from zkq.coordinator.job import Job, JobSpec, check_result
from zkq.coordinator.lifecycle import Batch, Step, written_version
from zkq.coordinator.store import MAX_MULTI_BYTES, JobStore, byte_groups
from zkq.coordinator.zk import TransactionFailed, zk_errors
from zkq.coordinator.zk.ops import CREATE_ACL_BYTES


class FencedWriter:
    """The fenced writes of one store's jobs, as one worker makes them."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def _fenced(
        self, job_id: str, version: int, step: Step, settle_first: bool = False
    ) -> tuple[Job, int]:
        """Commit ``step`` against ``version``; see the module doc for the retry rule.

        ``settle_first``: the step may already have been applied (a multi carrying it died
        with ConnectionLoss), so read before writing."""
        written = step.job.to_bytes()
        first = not settle_first

        def attempt() -> tuple[Job, int]:
            nonlocal first
            if not first:
                try:
                    _, current_version, raw = self.store.read(job_id)
                except JobNotFound:
                    raise Fenced(f"job {job_id} is gone") from None
                if raw == written:
                    return step.job, current_version
                if current_version != version:
                    raise Fenced(f"job {job_id} moved on (version {current_version})")
            first = False
            try:
                results = self.store.commit(step.ops)
            except TransactionFailed as failed:
                raise Fenced(
                    f"job {job_id}: {type(failed.error).__name__} at op {failed.index}; "
                    "another actor changed it"
                ) from None
            return step.job, written_version(results, version)

        with zk_errors():
            return self.store.session.retry(attempt, None, "fenced write")

    def commit_many(self, items: Sequence[tuple[Job, int, Step]]) -> list[tuple[Job, int] | Fenced]:
        """Group commit of several workers' fenced steps (claims, completions, failures):
        as few multis as keep each under :data:`MAX_MULTI_BYTES`.  A step whose op fails is
        set aside as :class:`Fenced` and the rest go again, as in :meth:`JobStore.assign_many`;
        after a lost reply each step is settled on its own.  Returns, per item, the job as
        written with its new version, or the Fenced refusal."""
        out: dict[int, tuple[Job, int] | Fenced] = {}
        for group in byte_groups(list(range(len(items))), lambda i: items[i][2].data_bytes):
            self._commit_group(items, group, out)
        return [out[i] for i in range(len(items))]

    def _commit_group(
        self,
        items: Sequence[tuple[Job, int, Step]],
        group: list[int],
        out: dict[int, tuple[Job, int] | Fenced],
    ) -> None:
        remaining = list(group)
        while remaining:
            batch = Batch(tuple(items[i][2] for i in remaining))
            try:
                with zk_errors():
                    results = self.store.commit(batch.ops)
            except TransactionFailed as failed:
                position = batch.culprit(failed.index)
                assert position is not None  # no head ops here
                i = remaining.pop(position)
                out[i] = Fenced(f"job {items[i][0].id}: {type(failed.error).__name__}")
                continue
            except Unavailable:
                for i in remaining:
                    job, version, step = items[i]
                    try:
                        out[i] = self._fenced(job.id, version, step, settle_first=True)
                    except Fenced as refused:
                        out[i] = refused
                return
            for i, answers in zip(remaining, batch.results_of(results), strict=True):
                _, version, step = items[i]
                out[i] = (step.job, written_version(answers, version))
            return

    def start_step(self, job: Job, version: int, worker_id: str) -> Step:
        return lifecycle.start(self.store.layout, job, version, worker_id, time.time())

    def start(self, job: Job, version: int, worker_id: str) -> tuple[Job, int]:
        return self._fenced(job.id, version, self.start_step(job, version, worker_id))

    def complete_step(
        self,
        job: Job,
        version: int,
        worker_id: str,
        result: Any,
        children: Sequence[JobSpec] = (),
    ) -> Step:
        """The completion of an attempt, ready to commit (alone or grouped).  Raises
        :class:`PayloadTooLarge` for a result over the limit."""
        check_result(result, self.store.limits)
        now = time.time()
        child_jobs = [
            JobSpec(
                type=c.type,
                payload=c.payload,
                priority=c.priority,
                max_attempts=c.max_attempts,
                timeout=c.timeout,
                tenant=job.tenant,
                parent=job.id,
                run_at=c.run_at,
                delay=c.delay,  # from the parent's success, when the child is made
                retry=c.retry,
            ).to_job(now, self.store.limits)
            for c in children
        ]
        # each child is two creates (record, pending entry), each carrying its ACL too
        spawned = sum(len(child.to_bytes()) + 2 * CREATE_ACL_BYTES for child in child_jobs)
        if spawned > MAX_MULTI_BYTES - self.store.limits.result_bytes - 64 * 1024:
            raise PayloadTooLarge(
                f"the {len(child_jobs)} children spawned take {spawned} bytes, more than one "
                "transaction may carry: spawn fewer, or pass references instead of data"
            )
        for child in child_jobs:
            with zk_errors():
                self.store.ensure_parents(child)
        return lifecycle.complete(
            self.store.layout, job, version, worker_id, result, now, child_jobs
        )

    def fail_step(
        self,
        job: Job,
        version: int,
        worker_id: str,
        error: dict[str, str],
        delay: float = 0.0,
    ) -> Step:
        """``delay`` > 0: the retry waits that long, ``scheduled`` (see lifecycle.fail)."""
        return lifecycle.fail(self.store.layout, job, version, worker_id, error, time.time(), delay)

    def give_back_step(self, job: Job, version: int, worker_id: str, reason: str) -> Step:
        """A running attempt that its worker stopped on its own and hands back to the queue
        (as the leader takes back a lost worker's: the attempt counts, ``lost``)."""
        return lifecycle.requeue(
            self.store.layout,
            job,
            version,
            AttemptOutcome.LOST,
            reason,
            time.time(),
            claim_exists=True,
            inbox_exists=True,
            by="worker",
        )

    def complete(
        self,
        job: Job,
        version: int,
        worker_id: str,
        result: Any,
        children: Sequence[JobSpec] = (),
    ) -> Job:
        step = self.complete_step(job, version, worker_id, result, children)
        return self._fenced(job.id, version, step)[0]

    def fail(self, job: Job, version: int, worker_id: str, error: dict[str, str]) -> Job:
        return self._fenced(job.id, version, self.fail_step(job, version, worker_id, error))[0]
