"""Jobs wherever they are: in ZooKeeper while they live, in the MySQL archive once pruned.

The leader's pruner writes a finished job to the archive *before* it deletes the record
from ZooKeeper (:mod:`zkq.coordinator.retention`), so a job is always in one of the two,
and reading ZooKeeper first, the archive second, never misses one that moves between
them.  The Python client (and so ``zkq job``) and the frontend read jobs through here.

Who may see a job is the caller's rule, not this module's: the frontend hides another
tenant's job after :meth:`JobLookup.get`; a listing takes the tenant as a filter, like
the state and the type.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from zkq.coordinator.errors import JobNotFound
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.listing import JobScan, scan_jobs
from zkq.coordinator.store import JobStore

#: entered around each round of ZooKeeper reads, yielding its deadline (``time.monotonic()``)
Bound = Callable[[], AbstractContextManager[float]]


def within(seconds: float) -> Bound:
    """Each round of ZooKeeper reads gets ``seconds`` from when it starts."""
    return lambda: contextlib.nullcontext(time.monotonic() + seconds)


class Archive(Protocol):
    """What the lookup reads of the archive (:class:`~zkq.coordinator.archive.JobArchive`)."""

    def get(self, job_id: str) -> Job | None: ...

    def list(
        self,
        tenant: str | None = None,
        state: JobState | str | None = None,
        type: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
        newest: bool = False,
        window: tuple[str | None, str | None] = (None, None),
    ) -> builtins.list[Job]: ...


@dataclass(frozen=True)
class Page:
    """A page of jobs in id order, and where the next one starts (None: nothing more)."""

    jobs: list[Job]
    next_cursor: str | None


def merge(live: JobScan, archived: Sequence[Job], limit: int, newest: bool = False) -> Page:
    """One page from a scan of ZooKeeper and a page of the archive, both after the same
    cursor and in the same order (``newest``: ids descending), the live record winning
    where both hold a job.

    Each source read a bounded amount and says how far it got: the scan up to
    :attr:`JobScan.last` unless it was exhausted, the archive up to its last job if it
    filled ``limit``.  Past the nearer of those points one source has not looked, so the
    page stops there and the cursor (the last id handed out, or that point) skips no job
    of either.
    """
    bounds = [] if live.exhausted or live.last is None else [live.last]
    if len(archived) >= limit:
        bounds.append(archived[-1].id)
    # the nearer of the two points in the scan's direction
    bound = (max(bounds) if newest else min(bounds)) if bounds else None
    merged = {job.id: job for job in archived}
    merged.update({job.id: job for job in live.jobs})  # the live record is the newer one
    ids = sorted(
        (i for i in merged if bound is None or (i >= bound if newest else i <= bound)),
        reverse=newest,
    )
    page = ids[:limit]
    cursor = page[-1] if len(ids) > limit else bound
    return Page([merged[i] for i in page], cursor)


class JobLookup:
    """The jobs of one store, and of its archive when there is one (no MySQL: none).

    ``bound``: how each round of ZooKeeper reads is limited; by default 10 s from its
    start.  The frontend passes its gate's ``call``, which also fails at once while
    disconnected.  The archive is read outside it, under MySQL's own timeouts.
    """

    def __init__(
        self, store: JobStore, archive: Archive | None = None, bound: Bound | None = None
    ) -> None:
        self.store = store
        self.archive = archive
        self.bound = bound or within(10.0)

    def get(self, job_id: str) -> Job:
        """The job from ZooKeeper or, once pruned from there, from the archive."""
        try:
            with self.bound() as deadline:
                return self.store.get(job_id, deadline)
        except JobNotFound:
            archived = self.archive.get(job_id) if self.archive is not None else None
            if archived is None:
                raise
            return archived

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """Those of ``job_ids`` that exist, live or archived: one pipelined round in
        ZooKeeper, then the archive for the rest."""
        with self.bound() as deadline:
            live = self.store.get_many(job_ids, deadline)
        found: dict[str, Job] = {}
        for job_id in job_ids:
            if job_id in live:
                found[job_id] = live[job_id][0]
            elif self.archive is not None:
                archived = self.archive.get(job_id)
                if archived is not None:
                    found[job_id] = archived
        return found

    def page(
        self,
        after: str | None,
        limit: int,
        *,
        tenant: str | None = None,
        state: JobState | str | None = None,
        job_type: str | None = None,
        budget: int = 2000,
        newest: bool = False,
        window: tuple[str | None, str | None] = (None, None),
    ) -> Page:
        """Up to ``limit`` jobs after the cursor ``after``, oldest first (``newest``: newest
        first), live and archived merged (:func:`merge`), filtered by whichever of tenant,
        state, type and id ``window`` (a time window's ids) are given.  ZooKeeper is
        scanned reading at most ``budget`` records."""
        low, high = window

        def match(job: Job) -> bool:
            return (
                (tenant is None or job.tenant == tenant)
                and (state is None or job.state == state)
                and (job_type is None or job.type == job_type)
                and (low is None or job.id >= low)
                and (high is None or job.id < high)
            )

        # ZooKeeper first: a job pruned while we read is in the archive by then.  Half the
        # time allowed is for reading: past it the page ends where the scan got to, so a
        # loaded ensemble shortens pages (the cursor goes on from there) rather than
        # failing them at the deadline.
        with self.bound() as deadline:
            enough_at = time.monotonic() + (deadline - time.monotonic()) / 2
            live = scan_jobs(
                self.store.session,
                after,
                limit,
                match,
                deadline,
                budget=budget,
                enough_at=enough_at,
                newest=newest,
                window=window,
            )
        archived: list[Job] = []
        if self.archive is not None:
            archived = self.archive.list(
                tenant=tenant,
                state=state,
                type=job_type,
                after_id=after,
                limit=limit,
                newest=newest,
                window=window,
            )
        return merge(live, archived, limit, newest)


__all__ = ["Archive", "JobLookup", "Page", "merge", "within"]
