"""The leader's dispatcher on the in-memory ZooKeeper: who gets which job, what happens to
the jobs of a worker that is gone or of an attempt past its timeout, and the fence that stops
a leader that no longer leads.  Each round runs on the test's thread (``Leader.rounds``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator import lifecycle, overdue
from zkq.coordinator.attempts import UNSTARTED_LIMIT, look_gap
from zkq.coordinator.errors import LeadershipLost
from zkq.coordinator.job import AttemptOutcome, JobState
from zkq.coordinator.store import JobSpec, JobStore
from zkq.dev.waiting import wait_until


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


def state(store: JobStore, job_id: str) -> JobState:
    return store.get(job_id).state


# -- assignment ------------------------------------------------------------------------------
def test_jobs_go_by_priority_then_oldest_first(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    low_old = client.submit(JobSpec("t", priority=0))
    first, second = client.submit_many([JobSpec("t", priority=5), JobSpec("t", priority=5)])
    urgent = client.submit(JobSpec("t", priority=9))
    low_new = client.submit(JobSpec("t", priority=0))
    leader = Leader(cluster)
    order = []
    for _ in range(5):
        leader.rounds()
        order += cluster.finish(worker, "w1")
    assert order == [urgent.id, first.id, second.id, low_old.id, low_new.id]


def test_round_robin_spreads_jobs_over_workers(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("workers")
    for worker_id in ("w1", "w2", "w3"):
        cluster.register(worker.session, worker_id, slots=2, prefetch=5)
    client.submit_many([JobSpec("t") for _ in range(6)])
    assert Leader(cluster).rounds() == 6
    assert [len(cluster.inbox(worker, w)) for w in ("w1", "w2", "w3")] == [2, 2, 2]


def test_idle_slots_are_filled_before_prefetch_room(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("workers")
    cluster.register(worker.session, "busy", slots=1, prefetch=10)
    leader = Leader(cluster)
    client.submit(JobSpec("t"))
    assert leader.rounds() == 1
    cluster.register(worker.session, "idle", slots=4, prefetch=0)
    client.submit_many([JobSpec("t") for _ in range(4)])
    assert leader.rounds() == 4
    # the busy worker has room for ten more, but a job should run now on an idle slot
    # rather than queue behind the busy one's
    assert [len(cluster.inbox(worker, w)) for w in ("busy", "idle")] == [1, 4]


def test_a_worker_takes_its_slots_plus_its_prefetch_and_no_more(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=2, prefetch=1)
    jobs = client.submit_many([JobSpec("t") for _ in range(5)])
    leader = Leader(cluster)
    assert leader.rounds() == 3
    assert [state(client, j.id) for j in jobs].count(JobState.PENDING) == 2
    cluster.finish(worker, "w1")  # its inbox empties: room for the other two
    assert leader.rounds() == 2
    assert all(state(client, j.id) != JobState.PENDING for j in jobs)


def test_a_worker_gets_only_the_types_it_serves(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "images", types=frozenset({"resize"}), slots=4)
    cluster.register(worker.session, "mail", types=frozenset({"send"}), slots=4)
    resize, send = client.submit_many([JobSpec("resize"), JobSpec("send")])
    Leader(cluster).rounds()
    assert cluster.inbox(worker, "images") == [resize.id]
    assert cluster.inbox(worker, "mail") == [send.id]


def test_a_paused_type_waits_until_resumed(cluster: MemoryCluster, client: JobStore) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", types=frozenset({"a", "b"}), slots=4)
    client.session.create(cluster.layout.paused_type("a"))
    held, other = client.submit_many([JobSpec("a"), JobSpec("b")])
    leader = Leader(cluster)
    assert leader.rounds() == 1
    assert state(client, held.id) == JobState.PENDING
    assert state(client, other.id) == JobState.ASSIGNED
    client.session.delete(cluster.layout.paused_type("a"))
    assert leader.rounds() == 1  # the watch on paused brought it back
    assert state(client, held.id) == JobState.ASSIGNED


def test_a_job_submitted_later_is_seen_through_the_watch(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=4)
    leader = Leader(cluster)
    assert leader.rounds() == 0
    job = client.submit(JobSpec("t"))
    assert leader.rounds() == 1
    assert cluster.inbox(worker, "w1") == [job.id]


def test_a_job_cancelled_while_being_assigned_is_set_aside_and_the_rest_go(
    cluster: MemoryCluster,
    client: JobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=4)
    first, doomed, last = client.submit_many([JobSpec("t") for _ in range(3)])
    leader = Leader(cluster)
    read = leader.store.read_many

    def read_then_cancel(job_ids: list[str]) -> tuple[dict[str, object], set[str]]:
        found = read(job_ids)  # the leader has read it pending...
        if doomed.id in job_ids and state(client, doomed.id) == JobState.PENDING:
            client.cancel(doomed.id)  # ...and a client cancels it before the multi
        return found  # type: ignore[return-value]

    monkeypatch.setattr(leader.store, "read_many", read_then_cancel)
    assert leader.rounds() == 2
    assert cluster.inbox(worker, "w1") == sorted([first.id, last.id])
    assert state(client, doomed.id) == JobState.CANCELLED
    assert leader.dispatcher.stats.assigned == 2
    assert leader.dispatcher.stats.transactions == 2  # the multi went again once, without it


# -- a worker is gone ---------------------------------------------------------------------------
def test_the_jobs_of_an_expired_worker_go_to_another(
    cluster: MemoryCluster, client: JobStore
) -> None:
    lost, other = cluster.store("lost"), cluster.store("other")
    cluster.register(lost.session, "lost", slots=2)
    started, queued = client.submit_many([JobSpec("t", max_attempts=3) for _ in range(2)])
    leader = Leader(cluster)
    assert leader.rounds() == 2
    cluster.start(lost, "lost", started.id)
    cluster.register(other.session, "other", slots=2)
    cluster.zk.expire(lost.session)  # its registration and its claim go with the session
    leader.rounds()
    assert cluster.inbox(other, "other") == sorted([started.id, queued.id])
    assert not client.session.exists(cluster.layout.inbox("lost"))
    ran = client.get(started.id)
    assert ran.state == JobState.ASSIGNED and ran.worker == "other"
    # the lost attempt, then the requeue that sent the job back, as an entry of its own
    assert [a.outcome for a in ran.history] == ["lost", "requeued"]
    assert (ran.history[1].kind, ran.history[1].by, ran.history[1].number) == (
        "requeue",
        "leader",
        None,
    )
    assert ran.attempts == 1  # the attempt that started counts
    unstarted = client.get(queued.id)
    assert unstarted.tries() == () and unstarted.attempts == 0


def test_an_inbox_whose_worker_died_without_a_leader_is_emptied(
    cluster: MemoryCluster, client: JobStore
) -> None:
    gone = cluster.store("gone")
    cluster.register(gone.session, "gone", slots=1)
    job = client.submit(JobSpec("t"))
    Leader(cluster).rounds()
    assert cluster.inbox(gone, "gone") == [job.id]
    cluster.zk.expire(gone.session)  # while no leader watches
    Leader(cluster).rounds(1)  # a new leader reconciles
    assert state(client, job.id) == JobState.PENDING


# -- overdue attempts -----------------------------------------------------------------------------
def test_an_attempt_past_its_timeout_is_taken_back(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    job = client.submit(JobSpec("t", timeout=30, max_attempts=2))
    leader = Leader(cluster)
    leader.rounds()
    cluster.start(worker, "w1", job.id)
    cluster.clock.advance(look_gap(job, 2.0))
    leader.rounds()  # the leader looks, and sees it running: the timeout counts from here
    cluster.clock.advance(20)
    leader.rounds()
    assert state(client, job.id) == JobState.RUNNING  # within its timeout
    cluster.clock.advance(15)  # past 30 s and the 2 s grace
    leader.rounds(1)
    taken = client.get(job.id)
    assert [a.outcome for a in taken.tries()] == ["timeout"]
    assert not client.session.exists(cluster.layout.claim(job.id))
    # the worker is still there with a free slot: it gets the job again, a second attempt
    leader.rounds()
    assert state(client, job.id) == JobState.ASSIGNED


def test_an_unstarted_assignment_waits_behind_running_jobs_before_it_is_taken_back(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1, prefetch=1)
    running, queued = client.submit_many([JobSpec("t", timeout=1000), JobSpec("t", timeout=10)])
    leader = Leader(cluster)
    leader.rounds()
    cluster.start(worker, "w1", running.id)
    cluster.clock.advance(60)  # the queued one is past its timeout, but it never started
    leader.rounds()
    assert state(client, queued.id) == JobState.ASSIGNED
    cluster.clock.advance(UNSTARTED_LIMIT)  # now it should have started long ago
    leader.rounds(1)
    taken = client.get(queued.id)
    assert taken.state == JobState.PENDING and "timeout" in (taken.error or {})["message"]
    assert taken.attempts == 0 and taken.tries() == ()  # it never started: no attempt spent
    assert state(client, running.id) == JobState.RUNNING


def test_an_attempt_that_starts_as_the_leader_takes_it_back_is_still_timed(
    cluster: MemoryCluster, client: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    job = client.submit(JobSpec("t", timeout=10, max_attempts=2))
    leader = Leader(cluster)
    leader.rounds()
    cluster.clock.advance(UNSTARTED_LIMIT + 10)  # it should have started long ago...
    read = overdue.read_attempts
    racing = [True]

    def read_then_start(store: JobStore, job_ids: list[str]) -> Any:
        found = read(store, job_ids)
        if racing and job.id in job_ids:
            racing.clear()
            cluster.start(worker, "w1", job.id)  # ...and starts just after the leader looked
        return found

    monkeypatch.setattr(overdue, "read_attempts", read_then_start)
    leader.rounds(1)
    assert state(client, job.id) == JobState.RUNNING  # left alone: it started meanwhile
    cluster.clock.advance(2)  # looked at again soon, not forgotten: seen running
    leader.rounds(1)
    cluster.clock.advance(13)  # and then it runs past its own timeout
    leader.rounds(1)
    assert [a.outcome for a in client.get(job.id).tries()] == ["timeout"]


def start_with_clock_off(cluster: MemoryCluster, worker: JobStore, job_id: str, off: float) -> None:
    """Claim an assigned job as a worker whose clock is ``off`` seconds from the leader's
    does: its ``started_at`` (and ``updated_at``) are written by that clock."""
    job, version = worker.get_versioned(job_id)
    step = lifecycle.start(cluster.layout, job, version, "w1", cluster.clock() + off)
    worker.commit(step.ops)


def test_an_attempt_of_a_worker_whose_clock_lags_is_not_taken_back_by_a_new_leader(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    job = client.submit(JobSpec("t", timeout=30, max_attempts=2))
    Leader(cluster).rounds()
    start_with_clock_off(cluster, worker, job.id, -3600)  # an hour behind
    successor = Leader(cluster)  # a failover: the new leader meets the attempt running
    successor.rounds()
    assert state(client, job.id) == JobState.RUNNING
    cluster.clock.advance(25)
    successor.rounds()
    assert state(client, job.id) == JobState.RUNNING  # within its timeout, by any clock
    cluster.clock.advance(8)  # 33 s since the new leader saw it running: past 30 + 2
    successor.rounds(1)
    assert [a.outcome for a in client.get(job.id).tries()] == ["timeout"]


def test_a_queued_attempt_that_starts_late_on_a_lagging_clock_gets_its_whole_timeout(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1, prefetch=1)
    long, queued = client.submit_many([JobSpec("t", timeout=1000), JobSpec("t", timeout=30)])
    leader = Leader(cluster)
    leader.rounds()
    start_with_clock_off(cluster, worker, long.id, -3600)
    gap = look_gap(queued, 2.0)
    for _ in range(5):  # the queued one waits behind the long one, looked at once a gap
        cluster.clock.advance(gap)
        leader.rounds()
    start_with_clock_off(cluster, worker, queued.id, -3600)  # its turn comes, at last
    cluster.clock.advance(gap)
    leader.rounds()  # seen running
    cluster.clock.advance(29)
    leader.rounds()
    assert state(client, queued.id) == JobState.RUNNING
    assert state(client, long.id) == JobState.RUNNING
    cluster.clock.advance(4)
    leader.rounds(1)
    assert [a.outcome for a in client.get(queued.id).tries()] == ["timeout"]


# -- the leader's fence ----------------------------------------------------------------------------
def test_a_leader_whose_fence_is_gone_assigns_nothing(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=4)
    fence = cluster.layout.election + "/leader-0000000000"
    leader = Leader(cluster, fence=fence)
    leader.session.create(fence, ephemeral=True)
    first = client.submit(JobSpec("t"))
    assert leader.rounds() == 1
    leader.session.delete(fence)  # as when the leader's session expires
    later = client.submit(JobSpec("t"))
    with pytest.raises(LeadershipLost):
        leader.rounds()
    assert state(client, first.id) == JobState.ASSIGNED
    assert state(client, later.id) == JobState.PENDING
    assert cluster.inbox(worker, "w1") == [first.id]


def test_an_expired_leader_steps_down_and_its_late_round_is_fenced(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=4)
    leader = Leader(cluster)
    election = leader.session.election(cluster.layout.election, "old")
    leading, step_down = threading.Event(), threading.Event()

    def lead() -> None:
        leader.dispatcher.fence = election.node
        leading.set()
        step_down.wait(10)

    contender = threading.Thread(target=election.run, args=(lead,), daemon=True)
    contender.start()
    assert leading.wait(10)
    runner = threading.Thread(target=leader.dispatcher.run, daemon=True)
    runner.start()
    first = client.submit(JobSpec("t"))
    wait_until(lambda: state(client, first.id) == JobState.ASSIGNED, 10, what="an assignment")
    cluster.zk.expire(leader.session)  # the election node goes with the old session
    runner.join(10)
    assert not runner.is_alive(), "the dispatcher kept leading after its session ended"
    # a round already under way when the session ended (the generation check passed) fails
    # at the fence, whatever it was about to assign
    later = client.submit(JobSpec("t"))
    with pytest.raises(LeadershipLost):
        leader.rounds()
    assert state(client, later.id) == JobState.PENDING
    step_down.set()
    contender.join(10)


def test_a_leader_that_lost_its_session_mid_requeue_cannot_take_back_a_reassigned_job(
    cluster: MemoryCluster, client: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost, live = cluster.store("lost"), cluster.store("live")
    cluster.register(lost.session, "lost", slots=1)
    job = client.submit(JobSpec("t", max_attempts=3))
    old = Leader(cluster, fence=cluster.layout.election + "/leader-0000000000")
    old.session.create(old.dispatcher.fence or "", ephemeral=True)
    assert old.rounds() == 1
    cluster.register(live.session, "live", slots=1)
    requeue = old.store.requeue
    took_over = []

    def lose_leadership_then_requeue(*args: object, **kwargs: object) -> object:
        if not took_over:
            took_over.append(True)
            # the old leader has listed the lost worker's inbox and is about to take the
            # job back when its own session expires; a new leader takes over, requeues the
            # job itself and gives it to a live worker, which starts it
            cluster.zk.expire(old.session)
            new = Leader(cluster, fence=cluster.layout.election + "/leader-0000000001")
            new.session.create(new.dispatcher.fence or "", ephemeral=True)
            new.rounds()
            assert cluster.inbox(live, "live") == [job.id]
            cluster.start(live, "live", job.id)
        return requeue(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(old.store, "requeue", lose_leadership_then_requeue)
    cluster.zk.expire(lost.session)
    with pytest.raises(LeadershipLost):  # the old leader carries on with its round...
        old.rounds()
    assert took_over
    # ...and the job stays with the live worker that runs it: it does not run twice
    running = client.get(job.id)
    assert running.state == JobState.RUNNING and running.worker == "live"
    assert client.session.exists(cluster.layout.claim(job.id))
    assert cluster.inbox(live, "live") == [job.id]
    assert not client.session.get_children(cluster.layout.pending_shard("t", job.id))


def test_every_write_of_a_leader_whose_fence_is_gone_is_refused(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=2)
    fence = cluster.layout.election + "/leader-0000000000"
    leader = Leader(cluster, fence=fence)
    leader.session.create(fence, ephemeral=True)
    job = client.submit(JobSpec("t", timeout=10))
    assert leader.rounds() == 1
    cluster.start(worker, "w1", job.id)
    cluster.clock.advance(look_gap(job, 2.0))
    leader.rounds()  # seen running
    leader.session.delete(fence)  # it no longer leads, and has not noticed yet
    cluster.clock.advance(60)  # the attempt is overdue
    with pytest.raises(LeadershipLost):
        leader.rounds()
    cluster.zk.expire(worker.session)  # and the worker is gone
    with pytest.raises(LeadershipLost):
        leader.rounds()
    with pytest.raises(LeadershipLost):
        leader.store.requeue(job.id, AttemptOutcome.LOST, "gone", holder="w1", fence=fence)
    # what to do about the job is the next leader's business
    assert state(client, job.id) == JobState.RUNNING
    assert cluster.inbox(client, "w1") == [job.id]


# -- what this leader cannot read --------------------------------------------------------------
def test_a_pending_job_whose_record_is_newer_than_this_zkq_is_left_for_a_newer_leader(
    cluster: MemoryCluster, client: JobStore
) -> None:
    worker = cluster.store("worker")
    cluster.register(worker.session, "w1", slots=4)
    plain, newer = client.submit_many([JobSpec("t"), JobSpec("t")])
    path = cluster.layout.job(newer.id)
    readable = client.session.get(path)[0]
    # as a newer zkq might write it during a rolling upgrade
    client.session.set(path, readable.replace(b'"schema":1', b'"schema":99'))
    entry = cluster.layout.pending_entry("t", 0, newer.id)
    leader = Leader(cluster)
    assert leader.rounds() == 1
    assert cluster.inbox(worker, "w1") == [plain.id]
    assert client.session.exists(entry), "an entry whose record it cannot read was deleted"
    assert leader.rounds() == 0  # nor offered round after round
    leader.dispatcher._publish(every=0)
    assert leader.dispatcher.stats.unreadable == 1
    # a leader that understands the record (here: the record made readable) moves it
    client.session.set(path, readable)
    assert Leader(cluster).rounds() == 1
    assert state(client, newer.id) == JobState.ASSIGNED
