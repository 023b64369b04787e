"""Finished jobs in MySQL (``job_archive``), where the pruner moves them from ZooKeeper.

Writing is an idempotent upsert: the pruner archives *before* it deletes from ZooKeeper,
so a crash between the two only means the same jobs are archived again next round.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from typing import Any

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

    def put_many(self, jobs: Sequence[Job]) -> int:
        """Insert or overwrite these records; returns how many were given."""
        if not jobs:
            return 0
        # pymysql turns this into multi-row INSERTs of at most ~1 MB each, well under the
        # server's max_allowed_packet however large the payloads are
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(_UPSERT, [_row(job) for job in jobs])
        return len(jobs)

    def get(self, job_id: str) -> Job | None:
        validate_job_id(job_id)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT record FROM job_archive WHERE job_id = %s", (job_id,))
            row = cur.fetchone()
        return None if row is None else Job.from_dict(json.loads(row[0]))

    def list(
        self,
        tenant: str | None = None,
        state: JobState | str | None = None,
        type: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Job]:
        """Archived jobs in id (creation) order, filtered by whichever of ``tenant``,
        ``state`` and ``type`` are given; page on with ``after_id`` = the last id seen."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        for column, value in (("tenant", tenant), ("state", state), ("type", type)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(str(value))
        if after_id is not None:
            where.append("job_id > %s")
            args.append(validate_job_id(after_id))
        sql = "SELECT record FROM job_archive"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY job_id LIMIT %s"
        args.append(max(1, min(int(limit), LIST_LIMIT_MAX)))
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        return [Job.from_dict(json.loads(raw)) for (raw,) in rows]
