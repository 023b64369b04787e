"""Scheduled jobs across a failover of the leader, on a real ensemble: kill -9 of the
leader while a thousand jobs come due loses none and runs none twice."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support import client_of, leader_name, member_by_pid, running_cluster
from zkq.coordinator.job import JobSpec, JobState
from zkq.dev.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

JOBS = 1_000


def test_kill_9_of_the_leader_while_jobs_come_due_loses_none_and_runs_none_twice(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs.txt"
    with (
        running_cluster(tmp_path / "cluster", worker_concurrency=16) as cluster,
        client_of(cluster) as client,
    ):
        # due over two seconds, starting a few seconds from now: the kill lands while
        # the leader is promoting them
        start = time.time() + 8
        specs = [JobSpec("append", str(runs), run_at=start + 2 * i / JOBS) for i in range(JOBS)]
        jobs = client.submit_many(specs)
        assert {j.state for j in jobs} == {JobState.SCHEDULED}
        name = leader_name(client)
        assert name
        wait_until(lambda: time.time() >= start + 0.5, 30, what="the first jobs to be due")
        cluster.kill_member(member_by_pid(cluster, int(name.rsplit("-", 1)[1])))

        ids = [j.id for j in jobs]

        def all_ended() -> bool:
            # a record pruned to the archive has ended too
            return all(job.terminal for job, _ in client.store.get_many(ids).values())

        wait_until(all_ended, 90, interval=0.5, what="every scheduled job to end")
        done = [client.get(job_id) for job_id in ids]
    assert Counter(job.state for job in done) == {JobState.SUCCEEDED: JOBS}
    assert all(len(job.tries()) == 1 for job in done)
    assert all((job.started_at or 0) >= (job.run_at or float("inf")) for job in done)
    counted = Counter(runs.read_text().split())
    assert set(counted) == {j.id for j in jobs}
    assert set(counted.values()) == {1}
