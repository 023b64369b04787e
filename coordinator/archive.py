"""Finished jobs in MySQL (``job_archive``), where the pruner moves them from ZooKeeper.

Writing is an idempotent upsert: the pruner archives *before* it deletes from ZooKeeper,
so a crash between the two only means the same jobs are archived again next round.

A record the archive refuses (one written before zkq validated payloads as
:mod:`zkq.coordinator.validation` does: NaN, a lone surrogate, a type the ``ascii`` column
cannot hold, nesting past MariaDB's JSON depth) must not hold back the others, nor stay in
ZooKeeper for ever.  :meth:`JobArchive.put_many` writes a chunk in multi-row INSERTs and,
when the server refuses it, halves it until it has the refused records alone (a bad record
costs about log2(chunk) extra statements, a clean chunk nothing).  Each refused record goes
to ``job_quarantine`` (migration 0006) with MySQL's reason, as bytes in a binary column that
takes anything, so that the job is still read (:meth:`get`) and nothing is lost; a table
rather than a part of ZooKeeper, because ZooKeeper is what pruning must empty.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.mysql import ConnectionPool, to_datetime

LIST_LIMIT_MAX = 1000

_UPSERT = (
    "INSERT INTO job_archive (job_id, tenant, type, state, created_at, finished_at, record) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE tenant = VALUES(tenant), type = VALUES(type), "
    "state = VALUES(state), created_at = VALUES(created_at), "
    "finished_at = VALUES(finished_at), record = VALUES(record), "
    "archived_at = CURRENT_TIMESTAMP(6)"
)


_QUARANTINE = (
    "INSERT INTO job_quarantine (job_id, tenant, record, reason) VALUES (%s, %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE tenant = VALUES(tenant), record = VALUES(record), "
    "reason = VALUES(reason), quarantined_at = CURRENT_TIMESTAMP(6)"
)
REASON_LIMIT = 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refused:
    """A job the archive refused, and MySQL's reason; it is in ``job_quarantine``."""

    job: Job
    reason: str


def _text(value: str) -> bytes:
    # surrogatepass: a tenant written before validation may hold one; binary columns keep it
    return value.encode("utf-8", "surrogatepass")


def _row(job: Job) -> tuple[Any, ...]:
    return (
        job.id,
        job.tenant,
        job.type,
        str(job.state),
        to_datetime(job.created_at),
        to_datetime(job.finished_at),
        json.dumps(job.to_dict(), separators=(",", ":")),
    )


class JobArchive:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def put_many(self, jobs: Sequence[Job]) -> list[Refused]:
        """Insert or overwrite these records; those the archive refuses are quarantined
        instead and returned.  Either way every job given is in MySQL afterwards.  Raises
        :class:`~zkq.coordinator.errors.DatabaseUnavailable` when MySQL is away."""
        if not jobs:
            return []
        try:
            self._upsert(jobs)
            return []
        except (InvalidInput, UnicodeError) as exc:
            if len(jobs) == 1:
                refused = Refused(jobs[0], _reason(exc))
                self._quarantine(refused)
                return [refused]
        half = len(jobs) // 2
        return self.put_many(jobs[:half]) + self.put_many(jobs[half:])

    def _upsert(self, jobs: Sequence[Job]) -> None:
        # pymysql turns this into multi-row INSERTs of at most ~1 MB each, well under the
        # server's max_allowed_packet however large the payloads are
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(_UPSERT, [_row(job) for job in jobs])

    def _quarantine(self, refused: Refused) -> None:
        job = refused.job
        log.warning("job %s quarantined: the archive refused it: %s", job.id, refused.reason)
        tenant = None if job.tenant is None else _text(str(job.tenant))
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_QUARANTINE, (job.id, tenant, job.to_bytes(), refused.reason))

    def get(self, job_id: str) -> Job | None:
        """The archived job, or the quarantined one; None if neither holds it."""
        validate_job_id(job_id)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT record FROM job_archive WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
            if row is None:
                cur.execute("SELECT record FROM job_quarantine WHERE job_id = %s", (job_id,))
                row = cur.fetchone()
        return None if row is None else Job.from_dict(json.loads(row[0]))

    def quarantined(self) -> int:
        """How many jobs ``job_quarantine`` holds (for ``zkq status``)."""
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM job_quarantine")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def list(
        self,
        tenant: str | None = None,
        state: JobState | str | None = None,
        type: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
        newest: bool = False,
        window: tuple[str | None, str | None] = (None, None),
    ) -> builtins.list[Job]:
        """Archived jobs in id (creation) order, filtered by whichever of ``tenant``,
        ``state`` and ``type`` are given; page on with ``after_id`` = the last id seen.
        ``newest``: descending (``after_id`` then means older than it); ``window``: ids from
        the first (inclusive) to the second (exclusive), as
        :meth:`~zkq.coordinator.selection.JobFilter.id_range` gives them."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        for column, value in (("tenant", tenant), ("state", state), ("type", type)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(str(value))
        if after_id is not None:
            where.append("job_id < %s" if newest else "job_id > %s")
            args.append(validate_job_id(after_id))
        low, high = window
        for condition, bound in (("job_id >= %s", low), ("job_id < %s", high)):
            if bound is not None:
                where.append(condition)
                args.append(bound)
        sql = "SELECT record FROM job_archive"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY job_id {'DESC' if newest else 'ASC'} LIMIT %s"
        args.append(max(1, min(int(limit), LIST_LIMIT_MAX)))
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        return [Job.from_dict(json.loads(raw)) for (raw,) in rows]


def _reason(exc: BaseException) -> str:
    """MySQL's reason, as text any utf8mb4 column takes, within the column's size."""
    text = str(exc).encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:REASON_LIMIT]
