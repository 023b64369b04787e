"""Scheduled jobs on the in-memory ZooKeeper: the leader's promoter moves a job to pending
once the leader's clock passes its run_at, and not before; cancel, revive to a time, a
retry's backoff, stray entries, a new leader after the old one's lost reply, and the cost
of a round with a large backlog."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator import lifecycle
from zkq.coordinator.attempts import look_gap
from zkq.coordinator.job import AttemptOutcome, JobState
from zkq.coordinator.scheduled import OPEN_PER_ROUND, PROMOTE_PER_ROUND
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.sweep import FIRST_PASS_DELAY, PASS_INTERVAL


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


@pytest.fixture
def worker(cluster: MemoryCluster) -> JobStore:
    store = cluster.store("worker")
    cluster.register(store.session, "w1", slots=64)
    return store


def entries(store: JobStore, root: str) -> list[str]:
    """Every entry under the scheduled index (a test may walk it all)."""
    out: list[str] = []

    def walk(path: str, depth: int) -> None:
        for name in store.session.get_children(path):
            if depth == 3:
                out.append(name)
            else:
                walk(f"{path}/{name}", depth + 1)

    walk(root, 0)
    return out


def test_a_delayed_job_waits_for_the_leaders_clock_then_runs(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t", run_at=cluster.clock() + 30))
    assert job.state == JobState.SCHEDULED
    assert entries(client, cluster.layout.scheduled) == [
        cluster.layout.scheduled_entry(job.run_at or 0, job.id).rsplit("/", 1)[1]
    ]
    leader = Leader(cluster)
    assert leader.rounds() == 0
    cluster.clock.advance(29)
    leader.rounds(6)
    assert client.get(job.id).state == JobState.SCHEDULED
    assert leader.promoter.next_at(cluster.clock(), cluster.clock()) == pytest.approx(1, abs=0.01)
    cluster.clock.advance(1.01)
    leader.rounds(6)
    got = client.get(job.id)
    assert got.state == JobState.ASSIGNED and got.run_at == job.run_at
    assert entries(client, cluster.layout.scheduled) == []
    assert cluster.finish(worker, "w1") == [job.id]
    assert leader.dispatcher.stats.promoted == 1


def test_cancel_of_a_scheduled_job_removes_its_entry(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t", delay=10))
    assert client.cancel(job.id).state == JobState.CANCELLED
    assert entries(client, cluster.layout.scheduled) == []
    leader = Leader(cluster)
    cluster.clock.advance(20)
    assert leader.rounds() == 0
    assert client.get(job.id).state == JobState.CANCELLED


def test_revive_to_a_time_waits_scheduled(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t"))
    client.cancel(job.id)
    revived = client.revive(job.id, run_at=cluster.clock() + 60)
    assert (revived.state, revived.scheduled_for) == (JobState.SCHEDULED, "delay")
    leader = Leader(cluster)
    leader.rounds(6)
    assert client.get(job.id).state == JobState.SCHEDULED
    cluster.clock.advance(61)
    leader.rounds(6)
    assert cluster.finish(worker, "w1") == [job.id]
    # and with no time (or one past), at once
    client.cancel(client.submit(JobSpec("t")).id)


def test_a_timed_out_attempt_with_a_retry_policy_waits_its_backoff(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(
        JobSpec("t", timeout=5, max_attempts=3, retry={"backoff": "fixed", "delay": 30})
    )
    leader = Leader(cluster)
    leader.rounds(6)
    cluster.start(worker, "w1", job.id)
    cluster.clock.advance(look_gap(job, 2.0))
    leader.rounds(6)  # the leader looks, and sees it running: the timeout counts from here
    cluster.clock.advance(10)  # past its timeout: the leader takes it back
    leader.rounds(6)
    waiting = client.get(job.id)
    assert (waiting.state, waiting.scheduled_for) == (JobState.SCHEDULED, "retry")
    leader.rounds(6)
    assert client.get(job.id).state == JobState.SCHEDULED  # waiting out its 30 s
    cluster.clock.advance(31)
    leader.rounds(6)
    assert client.get(job.id).state == JobState.ASSIGNED


def test_requeue_step_with_a_delay_goes_scheduled_and_without_pending(
    cluster: MemoryCluster,
) -> None:
    from zkq.coordinator.job import JobSpec as Spec

    job = Spec("t", max_attempts=3).to_job(1_000.0, cluster.config.limits)
    running = job.replace(state=JobState.RUNNING, worker="w1", attempts=1)
    layout = cluster.layout
    later = lifecycle.requeue(
        layout, running, 3, AttemptOutcome.TIMEOUT, "t", 2_000.0, True, True, delay=5
    )
    now = lifecycle.requeue(layout, running, 3, AttemptOutcome.TIMEOUT, "t", 2_000.0, True, True)
    assert (later.job.state, later.job.run_at) == (JobState.SCHEDULED, 2_005.0)
    assert later.ops[-1].path == layout.scheduled_entry(2_005.0, job.id)
    assert now.job.state == JobState.PENDING
    assert now.ops[-1].path == layout.pending_entry("t", 0, job.id)


def test_a_stray_entry_is_deleted_and_an_unreadable_record_keeps_its_entry(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    done = client.submit(JobSpec("t"))
    leader = Leader(cluster)
    leader.rounds(6)
    cluster.finish(worker, "w1")
    stray = cluster.layout.scheduled_entry(cluster.clock() - 5, done.id)
    client.session.ensure_path(stray)  # an entry whose job has long finished
    odd = client.submit(JobSpec("t", delay=1))
    path = cluster.layout.job(odd.id)
    raw = client.session.get(path)[0].replace(b'"schema": 2', b'"schema": 99')
    client.session.set(path, raw.replace(b'"schema":2', b'"schema":99'))
    cluster.clock.advance(5)
    leader.dispatcher._connections_seen = -1  # reconcile: lists the past eras again
    leader.rounds(6)
    left = entries(client, cluster.layout.scheduled)
    assert [name.endswith(odd.id) for name in left] == [True]
    assert client.get(done.id).state == JobState.SUCCEEDED


def test_a_new_leader_promotes_what_the_old_one_left_none_twice(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    jobs = client.submit_many([JobSpec("t", delay=5) for _ in range(40)])
    old = Leader(cluster, fence=cluster.layout.election + "/leader-0000000000")
    old.session.create(old.dispatcher.fence or "", ephemeral=True)
    old.rounds(6)
    cluster.clock.advance(6)
    cluster.zk.lose_next_reply(old.session)  # the promote multi applies, its reply is lost
    old.rounds(1)
    cluster.zk.expire(old.session)
    new = Leader(cluster, fence=cluster.layout.election + "/leader-0000000001")
    new.session.create(new.dispatcher.fence or "", ephemeral=True)
    new.rounds(6)
    states = [client.get(j.id).state for j in jobs]
    assert states.count(JobState.ASSIGNED) == 40
    assert entries(client, cluster.layout.scheduled) == []
    assert sorted(cluster.finish(worker, "w1")) == sorted(j.id for j in jobs)


def test_a_scheduled_job_whose_entry_is_gone_gets_it_back(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    job = client.submit(JobSpec("t", delay=3600))
    client.session.delete(cluster.layout.scheduled_entry(job.run_at or 0, job.id))  # by hand
    leader = Leader(cluster)
    cluster.clock.advance(max(FIRST_PASS_DELAY, PASS_INTERVAL))
    for _ in range(20):
        leader.rounds(1)
        cluster.clock.advance(1)
    assert len(entries(client, cluster.layout.scheduled)) == 1
    assert leader.dispatcher.stats.swept == 1


class Reads:
    """Counts the names and nodes a session's reads return."""

    def __init__(self, session: Any) -> None:
        self.names = 0
        self.calls = 0
        for method in ("get_children", "get_children_many", "get_many", "get"):
            setattr(session, method, self._counted(getattr(session, method)))

    def _counted(self, read: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            found = read(*args, **kwargs)
            if isinstance(found, list):
                self.names += len(found)
            elif isinstance(found, dict):
                self.names += sum(len(v) if isinstance(v, list) else 1 for v in found.values())
            return found

        return counted


def round_cost(cluster: MemoryCluster, client: JobStore, backlog: int) -> tuple[int, int]:
    """Names read by a leader's rounds with ``backlog`` jobs due in hours, while ten fall
    due now, once it has settled."""
    specs = [JobSpec("t", run_at=cluster.clock() + 3_600 + i % 7_200) for i in range(backlog)]
    for start in range(0, backlog, 2_000):
        client.submit_many(specs[start : start + 2_000])
    # on the submitter's clock (the backlog took a while to write): due in half a minute
    due = time.time() + 30
    client.submit_many([JobSpec("t", run_at=due) for _ in range(10)])
    leader = Leader(cluster)
    # the sweep's paced pass over every record is a cost of its own, not the rounds'
    leader.dispatcher.sweep.step = lambda now: None  # type: ignore[method-assign]
    leader.rounds(6)
    reads = Reads(leader.session)
    cluster.clock.advance(due + 1 - cluster.clock())
    leader.rounds(6)
    assert leader.dispatcher.stats.promoted == 10
    return reads.names, reads.calls


@pytest.fixture
def clusters() -> Iterator[list[MemoryCluster]]:
    made: list[MemoryCluster] = []
    yield made
    for c in made:
        c.close()


def test_a_rounds_cost_does_not_grow_with_the_backlog(clusters: list[MemoryCluster]) -> None:
    costs = []
    for backlog in (1_000, 20_000):
        cluster = MemoryCluster()
        clusters.append(cluster)
        costs.append(round_cost(cluster, cluster.store("client"), backlog))
    assert costs[0] == costs[1]


def test_recovery_after_an_outage_opens_a_bounded_number_of_buckets_per_round(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    # 300 jobs due over six hours, one a minute or so: hundreds of past ticks after the outage
    jobs = client.submit_many(
        [JobSpec("t", run_at=cluster.clock() + 60 + i * 72) for i in range(300)]
    )
    cluster.clock.advance(6 * 3600 + 120)
    leader = Leader(cluster)
    reads = Reads(leader.session)
    listed: list[int] = []
    original = leader.session.get_children_many

    def counted(paths: Any, *args: Any, **kwargs: Any) -> Any:
        listed.append(sum(1 for p in paths if p.startswith(cluster.layout.scheduled)))
        return original(paths, *args, **kwargs)

    leader.session.get_children_many = counted  # type: ignore[method-assign]
    for _ in range(40):
        leader.rounds(1)
        cluster.finish(worker, "w1")
    assert reads.calls > 0
    # the first rounds list the root (once) and open at most OPEN_PER_ROUND past buckets;
    # later ones add the relisting of buckets that promotion emptied, bounded the same way
    opening = [n for n in listed if n]
    assert opening[0] <= OPEN_PER_ROUND and max(listed) <= 4 * OPEN_PER_ROUND
    assert len(opening) > 3  # it took several rounds, not one
    assert {client.get(j.id).state for j in jobs} == {JobState.SUCCEEDED}
    assert leader.promoter.root_listings == 1
    assert PROMOTE_PER_ROUND >= 64


def test_bulk_cancel_takes_scheduled_jobs_and_their_entries(
    cluster: MemoryCluster, client: JobStore
) -> None:
    from zkq.coordinator.bulk import BulkAction, Tally, select_all
    from zkq.coordinator.selection import JobFilter

    jobs = client.submit_many([JobSpec("t", delay=600) for _ in range(5)])
    cancel = BulkAction(client, "cancel", JobFilter.of(job_type="t", since="1h"))
    selected = select_all(cancel)
    assert sorted(selected) == sorted(j.id for j in jobs)
    tally = Tally()
    cancel.apply(selected, tally)
    assert tally.done == 5
    assert {client.get(j.id).state for j in jobs} == {JobState.CANCELLED}
    assert entries(client, cluster.layout.scheduled) == []


def test_status_counts_scheduled_jobs_and_those_due(
    cluster: MemoryCluster, client: JobStore
) -> None:
    from zkq.coordinator import census

    now = time.time()
    client.submit_many([JobSpec("t", run_at=now + 600) for _ in range(3)])
    client.submit_many([JobSpec("t", run_at=now + 30) for _ in range(2)])
    counts = census.scheduled(client.session, time.monotonic() + 10, now=now + 60)
    assert counts == {"scheduled": 5, "due": 2}


@pytest.mark.timeout(60)
def test_a_job_due_later_in_the_same_millisecond_waits_for_the_next_round(
    cluster: MemoryCluster, client: JobStore, worker: JobStore
) -> None:
    run_at = (int((time.time() + 30) * 1000) + 0.5) / 1000  # half-way through a millisecond
    job = client.submit(JobSpec("t", run_at=run_at))
    leader = Leader(cluster)
    cluster.clock.advance(run_at - 0.0002 - cluster.clock())  # its millisecond, not its time
    leader.rounds(6)  # (a round that looped on it would never return)
    assert client.get(job.id).state == JobState.SCHEDULED
    cluster.clock.advance(0.001)
    leader.rounds(6)
    assert client.get(job.id).state == JobState.ASSIGNED
