"""The leader takes back attempts that ran past their timeout (or never started).

Part of the dispatcher (:mod:`zkq.coordinator.dispatcher`), on its one thread.  When each
attempt is looked at, and what counts as overdue, is :mod:`zkq.coordinator.attempts`; this
module reads the records that are due, with their claims (the leases), and requeues the
overdue ones, each only at the version that was judged overdue, only from the worker that
held it then, and only at the claim version judged (a heartbeat racing the take-back wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.backoff import retry_delay
from zkq.coordinator.errors import InvalidInput, ZkqError
from zkq.coordinator.job import AttemptOutcome, Job, JobState
from zkq.coordinator.lease import Lease, parse_lease
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
        found, claims = read_attempts(self.store, due)
        for jid in due:
            if jid not in found:
                self.attempts.forget(jid)  # pruned or removed: nothing to look at
        for jid, (job, version) in found.items():
            if job.terminal or job.state in (JobState.PENDING, JobState.SCHEDULED):
                self.attempts.forget(jid)
                continue
            look = self.attempts.observe(job, now, claims.get(jid))
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
                claim_version=self.attempts.lease_version(jid),  # a renewal since wins
                delay=backoff_of(job),
            )
            if result is None:
                # the record moved after we read it: it ended, or an overdue assignment
                # started just then, or the worker renewed its lease meanwhile.  Look again
                # soon rather than forget it: the next look sees the start or the renewal.
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


def backoff_of(job: Job) -> float:
    """How long a job taken back at its timeout waits, on the leader's clock: its retry
    policy's backoff for a started attempt (an assignment never started costs nothing, and
    goes back to pending now).  A policy this zkq cannot read (a newer one's) retries at
    once, as the worker does: a record must never stop the leader's rounds."""
    if job.state != JobState.RUNNING or not job.retry:
        return 0.0
    try:
        return retry_delay(job.retry, job.attempt_number)
    except InvalidInput:
        return 0.0


def read_attempts(
    store: JobStore, job_ids: list[str]
) -> tuple[dict[str, tuple[Job, int]], dict[str, tuple[Lease, int]]]:
    """Records and claims of ``job_ids`` in one pipelined round: per job its record and
    version (unreadable or missing ones left out), and its lease and claim version."""
    layout = store.layout
    read = store.session.get_many(
        [layout.job(j) for j in job_ids] + [layout.claim(j) for j in job_ids]
    )
    found: dict[str, tuple[Job, int]] = {}
    claims: dict[str, tuple[Lease, int]] = {}
    for jid in job_ids:
        record = read.get(layout.job(jid))
        if record is not None:
            try:
                found[jid] = (Job.from_bytes(record[0]), record[1].version)
            except (ZkqError, ValueError, TypeError, KeyError) as exc:
                log.error("job record %s is unreadable, left alone: %s", jid, exc)
        claim = read.get(layout.claim(jid))
        if claim is not None:
            claims[jid] = (parse_lease(claim[0]), claim[1].version)
    return found, claims
