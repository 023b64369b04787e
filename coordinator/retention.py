"""Pruning: finished jobs leave ZooKeeper for the MySQL archive after a retention window.

Only the coordinator leader prunes (:mod:`zkq.coordinator.service`).  One round walks the job
buckets (``jobs/<era>/<tick>``) oldest first and, per chunk of ``batch`` jobs:

1. reads the records, keeping terminal jobs whose ``finished_at`` is older than the window
   (pending, assigned and running jobs are never touched, however old);
2. writes them to the archive *first*: if MySQL is down nothing is deleted, and a crash
   after this step only archives the same jobs again next round (the write is an upsert).
   A record the archive refuses is quarantined with MySQL's reason instead
   (:meth:`JobArchive.put_many`), counted in :attr:`DispatchStats.quarantined`, and leaves
   ZooKeeper like the rest: one bad record must not stop pruning (which would then retry
   the same chunk for ever while ZooKeeper grows);
3. deletes them in multis, each delete carrying the version that was read and archived.
   A job changed since (by an operator, say) fails its op; it is set aside for the next
   round and the rest of the multi goes again.

Then it deletes tick and era nodes it emptied once their time has been over for
``bucket_grace`` seconds: a submitter whose clock runs behind may still be about to write
into a recent one (and if it loses that race, :meth:`JobStore.submit` recreates the bucket).

The walk stops at the first bucket that began after the cutoff: a job cannot have finished
before the time its id was made.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence

from zkq.coordinator import lifecycle
from zkq.coordinator.archive import JobArchive
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.ids import id_time
from zkq.coordinator.job import Job
from zkq.coordinator.lifecycle import Batch
from zkq.coordinator.paths import ERA_CHARS, TICK_CHARS
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import NoNode, NotEmpty, TransactionFailed, zk_errors

log = logging.getLogger(__name__)

#: an emptied bucket is kept this long after its time ended
BUCKET_GRACE = 300.0
ULID_CHARS = 26


def bucket_span(prefix: str) -> tuple[float, float]:
    """(first, last) Unix time of the ids that start with ``prefix`` (an era, or era+tick).

    Raises :class:`ValueError` for a name that is not a bucket of ours.
    """
    if len(prefix) not in (ERA_CHARS, ERA_CHARS + TICK_CHARS):
        raise ValueError(f"not a bucket name: {prefix!r}")
    return id_time(prefix.ljust(ULID_CHARS, "0")), id_time(prefix.ljust(ULID_CHARS, "Z"))


class Pruner:
    """Archives and deletes expired jobs of one cluster; see the module doc."""

    def __init__(
        self,
        store: JobStore,
        archive: JobArchive,
        retention_seconds: float = 3600.0,
        batch: int = 200,
        bucket_grace: float = BUCKET_GRACE,
        clock: Callable[[], float] = time.time,
        should_stop: Callable[[], bool] = lambda: False,
        stats: DispatchStats | None = None,
    ) -> None:
        if retention_seconds < 0:
            raise ValueError("retention must not be negative")
        if not 1 <= batch <= 1000:
            raise ValueError("batch must be between 1 and 1000 jobs")
        self.store = store
        self.archive = archive
        self.layout = store.layout
        self.retention_seconds = retention_seconds
        self.batch = batch
        self.bucket_grace = bucket_grace
        self.clock = clock
        self.should_stop = should_stop
        #: where quarantined records are counted (the coordinator's, for /metrics)
        self.stats = stats or DispatchStats()

    # -- one round --------------------------------------------------------------------------
    def run_once(self) -> int:
        """One walk over the buckets; returns how many jobs it archived and deleted.

        Raises :class:`~zkq.coordinator.errors.DatabaseUnavailable` when MySQL is away (then
        nothing of the current chunk was deleted) and ZooKeeper's errors as zkq's.
        """
        now = self.clock()
        cutoff = now - self.retention_seconds
        pruned = 0
        for era in sorted(self._children(self.layout.jobs)):
            if self.should_stop():
                break
            try:
                era_start, era_end = bucket_span(era)
            except ValueError:
                continue  # not ours: leave it alone
            if era_start > cutoff:
                break
            ticks = sorted(self._children(self.layout.job_era(era)))
            emptied = 0
            for tick in ticks:
                if self.should_stop():
                    return pruned
                try:
                    tick_start, tick_end = bucket_span(era + tick)
                except ValueError:
                    continue  # not ours: leave it alone (and the era with it)
                if tick_start > cutoff:
                    break
                done, left = self._prune_tick(era, tick, cutoff)
                pruned += done
                if left == 0 and now - tick_end > self.bucket_grace:
                    emptied += self._delete_empty(self.layout.job_tick(era, tick))
            if emptied == len(ticks) and now - era_end > self.bucket_grace:
                self._delete_empty(self.layout.job_era(era))
        return pruned

    def _prune_tick(self, era: str, tick: str, cutoff: float) -> tuple[int, int]:
        """Prune one tick: (jobs pruned, jobs left in it)."""
        ids = sorted(self._children(self.layout.job_tick(era, tick)))
        pruned = 0
        for n in range(0, len(ids), self.batch):
            if self.should_stop():
                break
            found = self.store.get_many(ids[n : n + self.batch])
            expired = [
                (job, version)
                for job, version in found.values()
                if job.terminal and _finished(job) <= cutoff
            ]
            if expired:
                # archive first: only what is safely in MySQL (archived or quarantined)
                # leaves ZooKeeper
                refused = self.archive.put_many([job for job, _ in expired])
                self.stats.quarantined += len(refused)
                pruned += self._delete_jobs(expired)
        return pruned, len(ids) - pruned

    def _delete_jobs(self, expired: Sequence[tuple[Job, int]]) -> int:
        """Delete records at the versions read; returns how many this call deleted."""
        batch = Batch(tuple(lifecycle.prune(self.layout, job, version) for job, version in expired))
        while batch.steps:
            try:
                with zk_errors():
                    self.store.session.retry(functools.partial(self.store.session.multi, batch.ops))
                return len(batch.steps)
            except TransactionFailed as failed:
                position = batch.culprit(failed.index)
                assert position is not None  # no head ops here
                job = batch.steps[position].job
                batch = batch.without(position)
                # BadVersion: changed since read, archived again next round.  NoNode: gone
                # already (another leader's pruner, or our retried multi that went in).
                log.debug("not pruning %s this round: %s", job.id, type(failed.error).__name__)
        return 0

    def _delete_empty(self, path: str) -> int:
        """Delete a bucket node if it is empty; 1 when it is gone."""
        with zk_errors():
            try:
                self.store.session.retry(lambda: self.store.session.delete(path))
            except NotEmpty:
                return 0  # a job arrived (or stayed) after we listed it
            except NoNode:
                pass
        return 1

    def _children(self, path: str) -> list[str]:
        with zk_errors():
            try:
                return self.store.session.retry(lambda: self.store.session.get_children(path))
            except NoNode:
                return []

    # -- the loop the leader runs ---------------------------------------------------------
    def run(self, stop: threading.Event, interval: float) -> None:
        """Prune every ``interval`` seconds until ``stop`` is set.  Errors (MySQL or
        ZooKeeper away) are logged and the round is tried again later: pruning can always
        wait, dispatching must not."""
        while not stop.is_set():
            try:
                count = self.run_once()
                if count:
                    log.info("pruned %d finished job(s) into the archive", count)
            except ZkqError as exc:
                log.warning("pruning postponed: %s", exc)
            except Exception:
                log.exception("pruning failed; trying again later")
            stop.wait(interval)


def _finished(job: Job) -> float:
    return job.finished_at if job.finished_at is not None else job.updated_at


def prune_interval(retention_seconds: float) -> float:
    """How often the leader prunes: a fraction of the window, between 1 s and a minute."""
    return min(60.0, max(1.0, retention_seconds / 10))
