"""The leader takes back attempts that ran past their timeout (or never started).

Part of the dispatcher (:mod:`zkq.coordinator.dispatcher`), on its one thread.  When each
attempt is looked at, and what counts as overdue, is :mod:`zkq.coordinator.attempts`; this
module reads the records that are due and requeues the overdue ones, each only at the
version that was judged overdue and only from the worker that held it then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.backoff import retry_delay
from zkq.coordinator.job import AttemptOutcome, JobState
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore

log = logging.getLogger(__name__)


class OverdueReaper:
    def __init__(
        self,
        store: JobStore,
        attempts: AttemptClock,
        stats: DispatchStats,
        fence: Callable[[], str | None],
    ) -> None:
        """``fence()``: the leader's election node, checked by each requeue."""
        self.store = store
        self.attempts = attempts
        self.stats = stats
        self.fence = fence

    def reap(self, now: float) -> None:
        """Look at every attempt due by ``now`` (the leader's clock)."""
        due = self.attempts.due(now)
        if not due:
            return
        found = self.store.get_many(due)
        for jid in due:
            if jid not in found:
                self.attempts.forget(jid)  # pruned or removed: nothing to look at
        for jid, (job, version) in found.items():
            if job.terminal or job.state in (JobState.PENDING, JobState.SCHEDULED):
                self.attempts.forget(jid)
                continue
            look = self.attempts.observe(job, now)
            if look is not None:
                self.attempts.reschedule(jid, look)  # not started yet, or within its time
                continue
            result = self.store.requeue(
                jid,
                AttemptOutcome.TIMEOUT,
                f"attempt exceeded its timeout of {job.timeout:g}s",
                expected_version=version,  # not one that started after we looked
                holder=job.worker,
                fence=self.fence(),
                # a retry policy's backoff, on the leader's clock (none: back to pending now)
                delay=retry_delay(job.retry, job.attempt_number),
            )
            if result is None:
                # the record moved after we read it: it ended, or an overdue assignment
                # started just then.  Look again soon rather than forget it: nothing else
                # would time an attempt that has just started.
                self.attempts.reschedule(jid, now + max(self.attempts.grace, 1.0))
                continue
            self.attempts.forget(jid)
            self.stats.requeued += 1
            self.stats.timeouts += 1
            log.warning(
                "attempt overdue: taken back, now %s",
                result.state,
                extra={"job_id": jid, "worker_id": job.worker or "", "type": job.type},
            )
