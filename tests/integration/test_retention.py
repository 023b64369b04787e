"""Pruning finished jobs into the archive, against the real ensemble and MariaDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import pytest
from click.testing import CliRunner

from tests.mysql_support import pool_of, query
from zkq.cli import main
from zkq.coordinator import zk
from zkq.coordinator.archive import JobArchive, Refused
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig, ZkSettings
from zkq.coordinator.errors import DatabaseUnavailable, JobNotFound
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.coordinator.paths import bucket_of
from zkq.coordinator.retention import Pruner
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.validation import MAX_DEPTH
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.ports import free_port
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

WORKER = "w1"
#: an hour ahead: every job here is long finished, every bucket long over
LATER = 3600.0


@pytest.fixture
def store(store: JobStore) -> JobStore:
    """The integration tests' store, with the inbox of our worker."""
    store.session.ensure_path(store.layout.inbox(WORKER))
    return store


@pytest.fixture
def archive(database: MySQLSettings) -> Iterator[JobArchive]:
    with pool_of(database) as pool:
        yield JobArchive(pool)


def _running(store: JobStore, n: int) -> Job:
    """A job taken through assign and start by a worker of ours."""
    job, version = store.get_versioned(store.submit(JobSpec("t", n)).id)
    (assigned,), refused = store.assign_many([(job, version, WORKER)])
    assert not refused
    job, version = store.get_versioned(assigned.id)
    return FencedWriter(store).start(job, version, WORKER)[0]


def _succeeded(store: JobStore, n: int) -> Job:
    job, version = store.get_versioned(_running(store, n).id)
    return FencedWriter(store).complete(job, version, WORKER, {"n": n})


def _cancelled(store: JobStore, n: int) -> Job:
    return store.cancel(store.submit(JobSpec("t", n)).id)


def _in_zookeeper(store: JobStore, jobs: Sequence[Job]) -> list[bool]:
    found = store.get_many([j.id for j in jobs])
    return [j.id in found for j in jobs]


def _later() -> float:
    return time.time() + LATER


def test_expired_jobs_move_to_the_archive_and_live_ones_stay(
    store: JobStore, archive: JobArchive, database: MySQLSettings, ensemble: ZooKeeperEnsemble
) -> None:
    finished = [_succeeded(store, 0), *(_cancelled(store, n) for n in range(1, 4))]
    pending = store.submit(JobSpec("t", 10))
    running = _running(store, 11)
    live = [pending, running]
    live_versions = {j.id: store.get_versioned(j.id)[1] for j in live}

    # inside the retention window nothing moves
    assert Pruner(store, archive, retention_seconds=3600).run_once() == 0
    assert _in_zookeeper(store, finished) == [True] * 4

    pruner = Pruner(store, archive, retention_seconds=60, clock=_later)
    assert pruner.run_once() == 4
    assert _in_zookeeper(store, finished) == [False] * 4
    for job in finished:
        assert archive.get(job.id) == job  # archived exactly as ZooKeeper had it
    for job in live:
        assert store.get_versioned(job.id)[1] == live_versions[job.id]  # untouched
        assert archive.get(job.id) is None
    assert pruner.run_once() == 0

    # readers still find pruned jobs, through the archive
    config = ClusterConfig.load(
        {}, hosts=ensemble.connect_string, root=store.layout.root, mysql_url=database.url
    )
    with Client(config) as client:
        client.start()
        assert client.get(finished[0].id) == finished[0]
        assert client.get(pending.id).state == JobState.PENDING
    without_mysql = ClusterConfig.load({}, hosts=ensemble.connect_string, root=store.layout.root)
    with Client(without_mysql) as no_mysql:
        no_mysql.start()
        with pytest.raises(JobNotFound):
            no_mysql.get(finished[0].id)
    shown = CliRunner().invoke(
        main,
        [
            *("job", finished[0].id, "--json", "--zk", ensemble.connect_string),
            *("--root", store.layout.root, "--mysql", database.url),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["result"] == {"n": 0}

    # once the last jobs of the bucket end and go, the bucket goes too
    era, tick = bucket_of(pending.id)
    assert store.session.exists(store.layout.job_tick(era, tick))
    for job in live:
        store.cancel(job.id)
    assert pruner.run_once() == 2
    assert store.session.get_children(store.layout.jobs) == []


def test_a_job_changed_after_it_was_read_is_left_for_the_next_round(
    store: JobStore, archive: JobArchive
) -> None:
    jobs = [_cancelled(store, n) for n in range(3)]
    path = store.layout.job(jobs[1].id)

    class ChangesOneJob(JobArchive):
        """Archives, then lets an operator touch a job before the pruner deletes."""

        def put_many(self, jobs: Sequence[Job]) -> list[Refused]:
            refused = super().put_many(jobs)
            raw, _ = store.session.get(path)
            store.session.set(path, raw)  # same record, new version
            return refused

    assert Pruner(store, ChangesOneJob(archive.pool), 60, clock=_later).run_once() == 2
    assert _in_zookeeper(store, jobs) == [False, True, False]
    assert Pruner(store, archive, 60, clock=_later).run_once() == 1
    assert _in_zookeeper(store, jobs) == [False, False, False]


def test_nothing_is_pruned_while_mysql_is_down(store: JobStore) -> None:
    jobs = [_cancelled(store, n) for n in range(3)]
    away = MySQLSettings(port=free_port(), password="x")
    pruner = Pruner(store, JobArchive(ConnectionPool(away)), 60, clock=_later)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        pruner.run_once()
    # nothing listens there: refused at once, at worst within MySQL's own timeouts (a
    # generous multiple of them); it does not wait for MySQL to come
    assert time.monotonic() - started < (away.connect_timeout + away.read_timeout) * 2
    assert _in_zookeeper(store, jobs) == [True] * 3


def _nested(levels: int) -> object:
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_record_the_archive_refuses_is_quarantined_and_the_rest_go_on(
    store: JobStore,
    archive: JobArchive,
    database: MySQLSettings,
    mariadb: MariaDBServer,
    ensemble: ZooKeeperEnsemble,
) -> None:
    # jobs at the edge of what validation lets through archive as they are ...
    good = [_cancelled(store, n) for n in range(5)]
    good.append(store.cancel(store.submit(JobSpec("t", _nested(MAX_DEPTH))).id))
    # ... and records written before zkq validated payloads (or by hand) do not
    bad: list[Job] = []
    for change in (
        {"payload": float("nan")},
        {"payload": {"a": "\ud800"}},
        {"payload": _nested(MAX_DEPTH + 5)},
        {"type": "résumé"},
        {"result": float("inf")},
    ):
        job = _cancelled(store, 100 + len(bad)).replace(**change)
        store.session.set(store.layout.job(job.id), job.to_bytes())
        bad.append(job)

    stats = DispatchStats()
    # chunks of 4: bad records alone in a chunk, with good ones, and two in one chunk
    pruner = Pruner(store, archive, 60, batch=4, clock=_later, stats=stats)
    assert pruner.run_once() == 11
    assert _in_zookeeper(store, good + bad) == [False] * 11
    assert stats.quarantined == 5 and archive.quarantined() == 5
    for job in good:
        assert archive.get(job.id) == job
    for job in bad:
        found = archive.get(job.id)  # NaN != NaN: compare what was stored
        assert found is not None and found.to_bytes() == job.to_bytes()
    reasons = dict(query(mariadb, database.database, "SELECT job_id, reason FROM job_quarantine"))
    assert set(reasons) == {j.id for j in bad}
    assert all("MySQL refused a value" in r for r in reasons.values()), reasons
    assert pruner.run_once() == 0

    # nothing accepted is lost: a quarantined job is read like any other
    config = ClusterConfig.load(
        {}, hosts=ensemble.connect_string, root=store.layout.root, mysql_url=database.url
    )
    with Client(config) as client:
        client.start()
        assert client.get(bad[1].id).payload == {"a": "\ud800"}

    # and zkq status says so, in its problems and its JSON
    shown = CliRunner().invoke(
        main,
        [
            *("status", "--json", "--zk", ensemble.connect_string),
            *("--root", store.layout.root, "--mysql", database.url),
        ],
    )
    view = json.loads(shown.stdout)
    assert view["quarantined"] == 5
    assert any("5 finished job(s) quarantined" in p for p in view["problems"]), view


def _cancelled_together(store: JobStore, count: int) -> list[Job]:
    """``count`` jobs made in one batch (ids of one instant, so mostly one tick), then
    cancelled: finished, and prunable once the window has passed."""
    return [
        store.cancel(job.id) for job in store.submit_many([JobSpec("t", n) for n in range(count)])
    ]


def _archived(mariadb: MariaDBServer, database: MySQLSettings) -> dict[str, int]:
    """Rows of the archive per job id, as root sees them."""
    rows = query(mariadb, database.database, "SELECT job_id, COUNT(*) FROM job_archive GROUP BY 1")
    return {job_id: count for job_id, count in rows}


def test_a_tick_holding_more_jobs_than_a_batch_is_pruned_whole(
    store: JobStore, archive: JobArchive, database: MySQLSettings, mariadb: MariaDBServer
) -> None:
    """The pruner reads a tick in chunks of ``batch`` jobs: every chunk of a tick that holds
    several must be archived and deleted, not only the first, and the tick goes after."""
    jobs = _cancelled_together(store, 7)
    batch = 3
    per_tick: dict[tuple[str, str], int] = {}
    for job in jobs:
        per_tick[bucket_of(job.id)] = per_tick.get(bucket_of(job.id), 0) + 1
    assert max(per_tick.values()) > batch, per_tick  # seven jobs in at most two ticks
    pruner = Pruner(store, archive, 60, batch=batch, clock=_later)
    assert pruner.run_once() == 7
    assert _in_zookeeper(store, jobs) == [False] * 7
    assert _archived(mariadb, database) == {job.id: 1 for job in jobs}
    for job in jobs:
        assert archive.get(job.id) == job
    assert store.session.get_children(store.layout.jobs) == []  # ticks and era gone too
    assert pruner.run_once() == 0


def test_two_pruners_racing_archive_each_job_once_and_delete_it_once(
    store: JobStore,
    archive: JobArchive,
    database: MySQLSettings,
    mariadb: MariaDBServer,
    ensemble: ZooKeeperEnsemble,
) -> None:
    """Two leaders' pruners overlap (an old leader's round still running as the new one
    prunes).  The slow one has read a chunk when the other archives and deletes every job;
    the slow one then archives its chunk again (an upsert: still one row a job) and finds
    each record gone, which it must take as done elsewhere, not as an error that stops
    its round.  Every job is archived once, as ZooKeeper had it, and deleted once."""
    jobs = _cancelled_together(store, 5)
    other_session = zk.connect(ZkSettings(ensemble.connect_string, store.layout.root), name="b")
    assert other_session.start(wait=20)
    try:
        fast = Pruner(JobStore(other_session), archive, 60, batch=2, clock=_later)
        fast_pruned: list[int] = []

        class OvertakenArchive(JobArchive):
            """The slow pruner's archive: before its first write, the fast one runs."""

            def put_many(self, records: Sequence[Job]) -> list[Refused]:
                if not fast_pruned:
                    fast_pruned.append(fast.run_once())
                return super().put_many(records)

        slow = Pruner(store, OvertakenArchive(archive.pool), 60, batch=2, clock=_later)
        assert slow.run_once() == 0  # every record it read was gone when it deleted
        assert fast_pruned == [5]
    finally:
        other_session.stop()
    assert _in_zookeeper(store, jobs) == [False] * 5
    assert _archived(mariadb, database) == {job.id: 1 for job in jobs}
    for job in jobs:
        assert archive.get(job.id) == job
    assert archive.quarantined() == 0
