"""What an operator can steer in a running cluster (``zkq pause|resume|drain|requeue|limits``).

Each control is a change in ZooKeeper that the services already watch, so it takes effect
without talking to any process directly:

- pause / resume: ``paused/<type>`` exists or not; the leader watches ``paused`` and
  assigns no job of a paused type (pending jobs wait, running ones finish).
- drain: ``draining: true`` in the worker's registration; the worker watches its own
  registration (claims nothing more, finishes what runs, exits), and the leader, which
  watches it too, stops assigning to it at once.
- limits: ``limits/<type>`` holds a type's cluster and per-worker caps; the leader
  watches them and assigns no job that would pass one (it waits pending).
- requeue: an assigned or running job is taken back like a dead worker's (its worker's
  completion is fenced); a failed, dead or cancelled job goes back to pending with fresh
  attempts.
"""

from __future__ import annotations

import time

from zkq.coordinator import census
from zkq.coordinator.errors import InvalidInput, InvalidTransition, WorkerNotFound, ZkqError
from zkq.coordinator.job import AttemptOutcome, Job, JobState, due_time
from zkq.coordinator.limits import BadLimit, TypeLimit
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.store import JobStore
from zkq.coordinator.validation import check_job_type
from zkq.coordinator.zk import BadVersion, NodeExists, NoNode, zk_errors


class Controls:
    def __init__(self, store: JobStore, deadline_seconds: float = 10.0) -> None:
        self.store = store
        self.session = store.session
        self.layout = store.layout
        self.deadline_seconds = deadline_seconds

    def _deadline(self) -> float:
        return time.monotonic() + self.deadline_seconds

    # -- types --------------------------------------------------------------------------
    def paused(self) -> list[str]:
        with zk_errors():
            try:
                return sorted(
                    self.session.retry(
                        lambda: self.session.get_children(self.layout.paused), self._deadline()
                    )
                )
            except NoNode:
                return []

    def pause(self, job_type: str) -> bool:
        """True if the type was running and is now paused."""
        check_job_type(job_type)

        def attempt() -> bool:
            try:
                self.session.create(self.layout.paused_type(job_type), makepath=True)
                return True
            except NodeExists:
                return False

        with zk_errors():
            return self.session.retry(attempt, self._deadline())

    def known_type(self, job_type: str) -> bool:
        """Whether anyone has used ``job_type``: a job of it was submitted (its pending
        node, kept for good once made), it is paused, or a live worker serves it.  Cheapest
        first: two existence checks, then the registrations."""
        check_job_type(job_type)
        paths = [self.layout.pending_type(job_type), self.layout.paused_type(job_type)]
        deadline = self._deadline()

        def seen() -> bool:
            return any(self.session.exists(path) is not None for path in paths)

        with zk_errors():
            if self.session.retry(seen, deadline):
                return True
            workers = census.workers(self.session, deadline)
        return any(job_type in w.registration.types for w in workers)

    def resume(self, job_type: str) -> bool:
        """True if the type was paused and now runs again."""
        check_job_type(job_type)

        def attempt() -> bool:
            try:
                self.session.delete(self.layout.paused_type(job_type))
                return True
            except NoNode:
                return False

        with zk_errors():
            return self.session.retry(attempt, self._deadline())

    # -- type limits (zkq.coordinator.limits) -------------------------------------------
    def limits(self) -> dict[str, TypeLimit | None]:
        """Every type's limit (None: its node cannot be read; the leader ignores it)."""
        deadline = self._deadline()

        def read() -> dict[str, TypeLimit | None]:
            try:
                names = self.session.get_children(self.layout.limits)
            except NoNode:
                return {}
            out: dict[str, TypeLimit | None] = {}
            for job_type in sorted(names):
                try:
                    out[job_type] = TypeLimit.from_bytes(
                        self.session.get(self.layout.limit(job_type))[0]
                    )
                except NoNode:
                    continue
                except BadLimit:
                    out[job_type] = None
            return out

        with zk_errors():
            return self.session.retry(read, deadline)

    def set_limit(self, job_type: str, limit: TypeLimit) -> None:
        """Cap ``job_type``'s assigned plus running attempts; the leader applies it at once
        to new assignments (what already runs finishes)."""
        check_job_type(job_type)
        path, data = self.layout.limit(job_type), limit.to_bytes()

        def attempt() -> None:
            try:
                self.session.create(path, data, makepath=True)
            except NodeExists:
                self.session.set(path, data)

        with zk_errors():
            self.session.retry(attempt, self._deadline())

    def clear_limit(self, job_type: str) -> bool:
        """True if ``job_type`` had a limit and now has none."""
        check_job_type(job_type)

        def attempt() -> bool:
            try:
                self.session.delete(self.layout.limit(job_type))
                return True
            except NoNode:
                return False

        with zk_errors():
            return self.session.retry(attempt, self._deadline())

    # -- workers ------------------------------------------------------------------------
    def drain(self, worker_id: str) -> dict[str, object]:
        """Mark a worker draining; returns its registration as it now stands."""
        if not worker_id or "/" in worker_id:
            raise InvalidInput(f"{worker_id!r} is not a worker id: see `zkq workers`")
        path = self.layout.worker(worker_id)

        def attempt() -> dict[str, object] | None:
            try:
                raw, stat = self.session.get(path)
            except NoNode:
                raise WorkerNotFound(
                    f"no live worker {worker_id!r}: see `zkq workers` for the ids"
                ) from None
            info = WorkerInfo.from_bytes(worker_id, raw)
            if info.draining:
                return info.to_dict()
            info = info.drained()
            try:
                self.session.set(path, info.to_bytes(), version=stat.version)
            except BadVersion:
                return None  # it changed while we looked: read again
            return info.to_dict()

        def bounded() -> dict[str, object]:
            for _ in range(10):
                found = attempt()
                if found is not None:
                    return found
            raise ZkqError(f"the registration of {worker_id} kept changing; try again")

        with zk_errors():
            return self.session.retry(bounded, self._deadline())

    # -- jobs ---------------------------------------------------------------------------
    def requeue(self, job_id: str, run_at: float | None = None) -> Job:
        """Send a job back to the queue; see the module doc for what that means per state.
        ``run_at``: a finished job waits ``scheduled`` until then."""
        if run_at is not None:
            due_time(run_at, None, time.time())  # within a year, as a submission's
        job = self.store.get(job_id, self._deadline())
        if run_at is not None and not job.terminal:
            raise InvalidTransition(
                f"job {job_id} is {job.state}; --at sends back a failed, dead or cancelled "
                "job: requeue this one without it"
            )
        if job.state in (JobState.ASSIGNED, JobState.RUNNING):
            taken = self.store.requeue(
                job_id,
                AttemptOutcome.REQUEUED,
                "requeued by an operator",
                spend_attempt=False,
                by="operator",
            )
            return taken if taken is not None else self.store.get(job_id, self._deadline())
        return self.store.revive(job_id, self._deadline(), run_at=run_at)
