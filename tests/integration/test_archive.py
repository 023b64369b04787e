"""The job archive against a real MariaDB."""

from __future__ import annotations

import time

import pytest

from tests.mysql_support import fresh_database, pool_of, query
from zkq.coordinator.archive import JobArchive
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Attempt, Job, JobState
from zkq.dev.mariadb import MariaDBServer

pytestmark = pytest.mark.integration


def _job(
    state: JobState, tenant: str | None = "acme", job_type: str = "resize", **kw: object
) -> Job:
    now = time.time()
    return Job(
        id=new_job_id(),
        type=job_type,
        payload={"image": "a.png", "text": "ünïcødé ✓"},
        state=state,
        tenant=tenant,
        created_at=now - 10,
        updated_at=now,
        finished_at=now,
        attempts=1,
        result={"ok": True},
        history=(Attempt(1, "w1", now - 5, now, "succeeded"),),
        **kw,  # type: ignore[arg-type]
    )


def test_records_round_trip_exactly(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb)
    with pool_of(settings) as pool:
        archive = JobArchive(pool)
        jobs = [_job(JobState.SUCCEEDED), _job(JobState.DEAD, tenant=None, max_attempts=3)]
        assert archive.put_many(jobs) == []
        for job in jobs:
            assert archive.get(job.id) == job
        assert archive.get(new_job_id()) is None

        # idempotent: the same jobs again, then a changed one, leave one row each
        archive.put_many(jobs)
        changed = jobs[0].replace(result={"ok": "again"})
        archive.put_many([changed])
        assert archive.get(changed.id) == changed
        rows = query(mariadb, settings.database, "SELECT job_id, state FROM job_archive")
        assert sorted(rows) == sorted((j.id, str(j.state)) for j in jobs)


def test_listing_filters_and_pages_in_id_order(mariadb: MariaDBServer) -> None:
    with pool_of(fresh_database(mariadb)) as pool:
        archive = JobArchive(pool)
        jobs = [
            _job(JobState.SUCCEEDED, tenant="a"),
            _job(JobState.FAILED, tenant="a", job_type="mail"),
            _job(JobState.SUCCEEDED, tenant="b"),
            _job(JobState.CANCELLED, tenant="a"),
            _job(JobState.SUCCEEDED, tenant="A"),  # tenants are case-sensitive
        ]
        archive.put_many(list(reversed(jobs)))

        assert [j.id for j in archive.list()] == [j.id for j in jobs]
        assert [j.id for j in archive.list(tenant="a")] == [jobs[0].id, jobs[1].id, jobs[3].id]
        assert [j.id for j in archive.list(tenant="a", state="succeeded")] == [jobs[0].id]
        assert [j.id for j in archive.list(type="mail")] == [jobs[1].id]
        first = archive.list(tenant="a", limit=2)
        rest = archive.list(tenant="a", after_id=first[-1].id, limit=2)
        assert [j.id for j in first + rest] == [jobs[0].id, jobs[1].id, jobs[3].id]
        # newest first, paged the other way, and within a window of ids
        newest = archive.list(tenant="a", limit=2, newest=True)
        older = archive.list(tenant="a", after_id=newest[-1].id, limit=2, newest=True)
        assert [j.id for j in newest + older] == [jobs[3].id, jobs[1].id, jobs[0].id]
        window = (jobs[1].id, jobs[4].id)  # from jobs[1] (inclusive) to jobs[4] (exclusive)
        assert [j.id for j in archive.list(window=window)] == [j.id for j in jobs[1:4]]
        assert [j.id for j in archive.list(window=window, newest=True)] == [
            jobs[3].id,
            jobs[2].id,
            jobs[1].id,
        ]


def test_a_large_batch_is_split_under_the_packet_limit(mariadb: MariaDBServer) -> None:
    # 300 jobs of ~60 KiB: 18 MB, over MariaDB's default max_allowed_packet of 16 MB
    with pool_of(fresh_database(mariadb)) as pool:
        archive = JobArchive(pool)
        jobs = [_job(JobState.SUCCEEDED).replace(payload="x" * 60_000) for _ in range(300)]
        assert archive.put_many(jobs) == []
        assert len(archive.list(limit=1000)) == 300
        assert archive.get(jobs[-1].id) == jobs[-1]
