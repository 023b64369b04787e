"""Pages of job records in id (creation time) order, either way, read from ZooKeeper with a
budget.

ZooKeeper has no index: filtering by tenant, state or type means reading records.  A page
therefore reads at most ``budget`` records and says how far it got (:attr:`JobScan.last`),
so a caller can hand out a cursor that resumes exactly there, and a request costs bounded
work however many jobs other tenants hold.  Job ids are ULIDs whose first characters are
the bucket names (:func:`zkq.coordinator.paths.bucket_of`), so a cursor skips whole buckets
without listing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zkq.coordinator.census import Reader
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import Job
from zkq.coordinator.zk import ZkSession, zk_errors

#: records fetched per pipelined round
CHUNK = 200


@dataclass(frozen=True)
class JobScan:
    jobs: list[Job]  # the records that matched, in scan order
    last: str | None  # the last id examined; resume after it (in scan order)
    exhausted: bool  # True when no record after ``last`` exists (as of the scan)


def _ids_from(
    reader: Reader,
    session: ZkSession,
    after: str | None,
    newest: bool = False,
    low: str | None = None,
    high: str | None = None,
) -> Iterator[list[str]]:
    """Job ids past ``after`` in scan order (ascending, or descending when ``newest``),
    within ``low`` (inclusive) and ``high`` (exclusive), one tick (bucket) at a time.  A
    bucket whose name lies outside the bounds is never listed: a bucket's name is the
    prefix of every id in it, so comparing it with the bounds' prefixes is exact."""
    layout = session.settings.layout
    floor = low  # ids >= floor (inclusive) ...
    ceiling = high  # ... and < ceiling (exclusive)
    if after is not None and not newest and (floor is None or after >= floor):
        floor = after  # exclusive from here on, checked per id below
    if after is not None and newest and (ceiling is None or after < ceiling):
        ceiling = after

    def keep(job_id: str) -> bool:
        if after is not None and (job_id <= after if not newest else job_id >= after):
            return False
        return (low is None or job_id >= low) and (high is None or job_id < high)

    def possible(prefix: str) -> bool:
        size = len(prefix)
        return (floor is None or prefix >= floor[:size]) and (
            ceiling is None or prefix <= ceiling[:size]
        )

    eras = sorted(reader.children([layout.jobs])[layout.jobs], reverse=newest)
    for era in eras:
        if not possible(era):
            continue
        era_path = layout.job_era(era)
        ticks = sorted(reader.children([era_path])[era_path], reverse=newest)
        for tick in ticks:
            if not possible(era + tick):
                continue
            tick_path = layout.job_tick(era, tick)
            ids = [i for i in sorted(reader.children([tick_path])[tick_path]) if keep(i)]
            if ids:
                yield ids[::-1] if newest else ids


def _parsed(raw: bytes) -> Job | None:
    """The record, or None (pruned between the listing and the read, or unreadable).  A
    record this zkq cannot read (a newer schema during a rolling upgrade, or damaged by
    hand) cannot be shown or even attributed to a tenant, but must not fail every page
    that reaches it: a tenant could never page past it."""
    try:
        return Job.from_bytes(raw)
    except (InvalidInput, ValueError, TypeError, KeyError):
        return None


def scan_jobs(
    session: ZkSession,
    after: str | None,
    limit: int,
    match: Callable[[Job], bool],
    deadline: float,
    budget: int = 2000,
    enough_at: float | None = None,
    newest: bool = False,
    window: tuple[str | None, str | None] = (None, None),
) -> JobScan:
    """Up to ``limit`` records after ``after`` for which ``match`` holds, reading at most
    ``budget`` records, all before ``deadline`` (``time.monotonic()``).

    ``enough_at`` (``time.monotonic()``): once past it, read no further chunk and answer
    with what was read, as when the budget runs out.  A slow ensemble then gives a short
    page with a cursor instead of a request that fails at ``deadline``.

    ``newest``: newest first (ids descending; ``after`` then means "older than").
    ``window``: the ids (low inclusive, high exclusive) of a time window
    (:meth:`zkq.coordinator.selection.JobFilter.id_range`); buckets outside it are skipped
    unread."""
    if limit < 1 or budget < 1:
        raise ValueError("limit and budget must be positive")
    layout = session.settings.layout
    found: list[Job] = []
    examined = 0
    last = after
    with zk_errors():
        reader = Reader(session, deadline)
        for ids in _ids_from(reader, session, after, newest, *window):
            for start in range(0, len(ids), CHUNK):
                if examined and enough_at is not None and time.monotonic() > enough_at:
                    return JobScan(found, last, exhausted=False)
                chunk = ids[start : start + CHUNK]
                records = reader.data([layout.job(i) for i in chunk])
                for job_id in chunk:
                    examined += 1
                    last = job_id
                    entry = records.get(layout.job(job_id))
                    job = None if entry is None else _parsed(entry[0])
                    if job is not None and match(job):
                        found.append(job)
                    if len(found) >= limit or examined >= budget:
                        return JobScan(found, last, exhausted=False)
    return JobScan(found, last, exhausted=True)


__all__ = ["JobScan", "scan_jobs"]
