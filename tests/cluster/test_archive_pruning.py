"""The leader's pruner in a real cluster: finished jobs leave ZooKeeper for MariaDB, and
MariaDB going away delays pruning but never dispatching.

A cluster of its own (ZooKeeper x3, MariaDB, one coordinator with a one-second retention,
one worker), because the test stops MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import running_cluster
from zkq.coordinator.archive import JobArchive
from zkq.coordinator.client import Client
from zkq.coordinator.errors import DatabaseUnavailable, JobNotFound
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.cluster import DevCluster
from zkq.dev.processes import read_stat
from zkq.dev.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.faults]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    with running_cluster(
        tmp_path / "dev",
        workers=1,
        coordinators=1,
        worker_app="zkq.worker.builtin",
        coordinator_args=["--retention", "1"],
        mysql=True,
    ) as c:
        yield c


def _pruned(client: Client, archive: JobArchive, job_id: str) -> Job | None:
    """The archived record once the job is out of ZooKeeper."""
    try:
        client.store.get(job_id)
        return None
    except JobNotFound:
        return archive.get(job_id)


def test_finished_jobs_are_archived_and_pruned_by_the_leader(cluster: DevCluster) -> None:
    status = cluster.status()
    (mariadb,) = [m for m in status["members"] if m["role"] == "mariadb"]
    assert mariadb["healthy"] and status["ok"] and status["mysql"].endswith("/zkq")
    saved = json.loads((cluster.state_dir / "state.json").read_text())
    assert saved["mysql_url"] == cluster.mysql_url

    settings = MySQLSettings.from_url(cluster.mysql_url)
    config = cluster.config("frontend", mysql_url=cluster.mysql_url)
    pool = ConnectionPool(settings, max_size=2)
    archive = JobArchive(pool)
    with Client(config) as client:
        client.start()
        first = client.wait(client.submit("echo", {"n": 1}).id, 30)
        assert first.state == JobState.SUCCEEDED
        archived = wait_until(
            lambda: _pruned(client, archive, first.id), 30, what="the job to be pruned"
        )
        assert archived == first
        assert client.get(first.id) == first  # readers fall back to the archive

        # MariaDB away: jobs still run, and stay in ZooKeeper until it is back
        cluster.stop_mysql()
        assert not cluster.member("mariadb").healthy() and not cluster.status()["ok"]
        second = client.wait(client.submit("echo", {"n": 2}).id, 30)
        assert second.state == JobState.SUCCEEDED
        coordinator_log = cluster.coordinators[0].process.log_path
        wait_until(
            lambda: "pruning postponed" in coordinator_log.read_text(),
            30,
            what="the leader to notice MariaDB is away",
        )
        assert client.store.get(second.id) == second

        cluster.start_mysql()
        assert cluster.member("mariadb").healthy()
        # our pool's connection died with the server: its first use fails, the next reconnects
        resumed = wait_until(
            lambda: _pruned(client, archive, second.id),
            60,
            what="pruning to resume",
            ignore=(DatabaseUnavailable,),
        )
        assert resumed == second
    pool.close()

    pid = cluster.member("mariadb").process.pid
    cluster.down()
    stat = read_stat(pid)
    assert stat is None or stat.state == "Z"
