"""The leader's sweep: a slow walk over every job record, for jobs that nothing would move.

Every non-terminal state has an actor that moves the job on, and each actor learns of the
job from a node that transactions keep in step with the record (the table in
``docs/architecture.md``, *Who moves a job*):

- ``pending``: the leader assigns it, having seen its *pending entry*;
- ``assigned`` to worker W: W starts it, having seen its *inbox entry*; if W is gone the
  leader requeues it (it lists W's inbox); if W never starts it, the leader's looks at
  the attempts it follows through inboxes take it back;
- ``running`` on W: W ends it (its completion deletes W's *claim* and *inbox entry*); if W
  is gone, or the attempt overdue, the leader requeues it, again found through W's inbox.

So a job whose node is missing (removed by hand, or by a bug of some version) is found by
nobody.  The sweep reads records in pipelined batches, a bounded batch per dispatcher
round, a pass every :data:`PASS_INTERVAL`, and moves what slipped through:

- a pending record with no pending entry: the entry is made again;
- an assigned or running record with no inbox entry (its worker can neither see it nor
  record its end), or a running one whose claim and worker are both gone: requeued;
- an assigned or running record the leader follows no attempt of: followed from now.

Every write is conditional on the version the sweep read (and on the holder for a
requeue) and carries the leader's fence, so a job moved meanwhile is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkq.coordinator import lifecycle
from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.job import AttemptOutcome, Job, JobState
from zkq.coordinator.lifecycle import Batch, _queue_entry
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import Check, Create, NodeExists, TransactionFailed

log = logging.getLogger(__name__)

#: seconds from the end of one pass over the records to the start of the next
PASS_INTERVAL = 60.0
#: a new leader's first pass waits this long: taking over is busy enough
FIRST_PASS_DELAY = 10.0
#: records read per step (one pipelined round), and seconds between steps of a pass: a
#: step holds up the dispatcher's thread (measured on a loaded 2-core machine: ~2 ms per
#: record, reading it and what shows it to its actor), so each is kept small, and steps are
#: spaced so that the sweep takes at most about a tenth of the thread: it is a safety net
#: for what slipped through, not a path any job should need
BATCH = 64
PACE = 1.0
#: tick buckets listed per pipelined round
TICKS_PER_ROUND = 16
#: states whose job waits on an index entry (pending, or scheduled by due time)
WAITING = (JobState.PENDING, JobState.SCHEDULED)


class Sweep:
    def __init__(
        self,
        store: JobStore,
        attempts: AttemptClock,
        stats: DispatchStats,
        fence: Callable[[], str | None],
        interval: float = PASS_INTERVAL,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.session = store.session
        self.layout = store.layout
        self.attempts = attempts
        self.stats = stats
        self.fence = fence
        self.interval = interval
        self.batch = batch
        self.next_at: float | None = None  # on the leader's clock
        self._ticks: list[str] = []  # job ticks still to list in this pass
        self._ids: list[str] = []  # job ids listed, still to read
        self._in_pass = False

    def step(self, now: float) -> None:
        """Do the next bounded piece of the sweep, if it is due at ``now``."""
        if self.next_at is None:
            self.next_at = now + min(FIRST_PASS_DELAY, self.interval)
        if now < self.next_at:
            return
        if not self._in_pass:
            self._start_pass()
        while len(self._ids) < self.batch and self._ticks:
            chunk, self._ticks = self._ticks[:TICKS_PER_ROUND], self._ticks[TICKS_PER_ROUND:]
            for _, names in sorted(self.session.get_children_many(chunk).items()):
                self._ids.extend(sorted(names or []))
        take = self._ids[: self.batch]
        if take:
            self._examine(take, now)
        # only once examined: a step cut short (the connection lost) takes them again
        self._ids = self._ids[self.batch :]
        if self._ids or self._ticks:
            self.next_at = now + PACE
        else:
            self._in_pass = False
            self.next_at = now + self.interval

    def run_pass(self, now: float) -> None:
        """A whole pass at once (for tests and operators)."""
        self.next_at = now
        self.step(now)
        while self._in_pass:
            self.next_at = now
            self.step(now)

    def _start_pass(self) -> None:
        self._in_pass = True
        jobs = self.layout.jobs
        eras = sorted(self.session.get_children_many([jobs]).get(jobs) or [])
        listed = self.session.get_children_many([self.layout.job_era(e) for e in eras])
        self._ticks = [
            f"{era_path}/{tick}"
            for era_path, ticks in sorted(listed.items())
            for tick in sorted(ticks or [])
        ]
        self._ids = []

    # -- one batch -------------------------------------------------------------------------
    def _examine(self, job_ids: list[str], now: float) -> None:
        records = self.store.get_many(job_ids)  # an unreadable record is left alone
        live = {jid: found for jid, found in records.items() if not found[0].terminal}
        if not live:
            return
        layout = self.layout
        # what would show each job to its next actor, read in one pipelined round
        paths: list[str] = []
        for job, _ in live.values():
            if job.state in WAITING:
                paths.append(_queue_entry(layout, job))
            elif job.worker:
                paths += [layout.inbox_entry(job.worker, job.id), layout.claim(job.id)]
                paths.append(layout.worker(job.worker))
        present = {p for p, found in self.session.get_many(paths).items() if found is not None}
        for job, version in live.values():
            if job.state in WAITING:
                if _queue_entry(layout, job) not in present:
                    self._restore_entry(job, version)
            elif job.worker:
                self._check_attempt(job, version, present, now)

    def _restore_entry(self, job: Job, version: int) -> None:
        entry = _queue_entry(self.layout, job)
        head = (Check(fence),) if (fence := self.fence()) else ()
        step = lifecycle.Step(job, (Check(self.layout.job(job.id), version), Create(entry)))
        try:
            self.store.commit_fenced(Batch((step,), head))
        except TransactionFailed as failed:
            if not isinstance(failed.error, NodeExists):
                log.info("stranded pending job moved meanwhile", extra={"job_id": job.id})
            return
        self.stats.swept += 1
        log.warning(
            "%s job had no index entry: made it again",
            job.state,
            extra={"job_id": job.id, "type": job.type},
        )

    def _check_attempt(self, job: Job, version: int, present: set[str], now: float) -> None:
        worker = job.worker or ""
        inbox = self.layout.inbox_entry(worker, job.id) in present
        claim = self.layout.claim(job.id) in present
        alive = self.layout.worker(worker) in present
        if not inbox:
            why = f"its assignment to worker {worker} is gone"
        elif job.state == JobState.RUNNING and not claim and not alive:
            why = f"worker {worker} and its claim are gone"
        else:
            if job.id not in self.attempts:
                self.attempts.track(job, worker, now)  # followed by nobody: time it
            return
        taken = self.store.requeue(
            job.id,
            AttemptOutcome.LOST,
            why,
            expected_version=version,
            holder=worker,
            fence=self.fence(),
        )
        if taken is None:
            return  # it moved on meanwhile
        self.attempts.forget(job.id, worker)
        self.stats.swept += 1
        self.stats.requeued += 1
        log.warning(
            "stranded job taken back (%s), now %s",
            why,
            taken.state,
            extra={"job_id": job.id, "worker_id": worker, "type": job.type},
        )
