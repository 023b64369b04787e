"""The leader's in-memory pieces, without ZooKeeper."""

from __future__ import annotations

import time

from zkq.coordinator.attempts import LOOK_GAP_LIMIT, UNSTARTED_LIMIT, AttemptClock, look_gap
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.paths import Layout, bucket_of, pending_name
from zkq.coordinator.pending import PendingIndex

L = Layout("/zkq")


def tick_of(job_type: str, job_id: str) -> str:
    return L.pending_shard(job_type, job_id)


def test_pop_best_takes_priority_then_age_across_types_and_skips_paused() -> None:
    index = PendingIndex()
    old, mid, new = new_job_id(), new_job_id(), new_job_id()
    index.load_tick("a", tick_of("a", old), [pending_name(1, old), pending_name(5, new)])
    index.load_tick("b", tick_of("b", mid), [pending_name(5, mid)])
    assert index.pop_best(frozenset({"a", "b"}), set()) == (
        "b",
        pending_name(5, mid),
        tick_of("b", mid),
    )
    assert index.pop_best(frozenset({"a", "b"}), {"a"}) is None  # b is empty now, a paused
    assert index.pop_best(frozenset({"a"}), set())[1] == pending_name(5, new)  # type: ignore[index]
    assert index.pop_best(frozenset({"a"}), set())[1] == pending_name(1, old)  # type: ignore[index]
    assert not index.has_work(set())


def test_entries_gone_from_a_listing_are_skipped_not_returned() -> None:
    index = PendingIndex()
    a, b = new_job_id(), new_job_id()
    tick = tick_of("t", a)
    index.load_tick("t", tick, [pending_name(0, a), pending_name(0, b)])
    index.load_tick("t", tick, [pending_name(0, b)])  # a was cancelled meanwhile
    assert index.pop_best(frozenset({"t"}), set())[1] == pending_name(0, b)  # type: ignore[index]
    assert index.pop_best(frozenset({"t"}), set()) is None


def test_an_empty_listing_is_reported_and_a_forgotten_tick_is_unknown() -> None:
    index = PendingIndex()
    jid = new_job_id()
    tick = tick_of("t", jid)
    assert index.load_tick("t", tick, []) is True
    assert index.knows_tick(tick)
    era, tick_name = bucket_of(jid)
    index.era_ticks(L.pending_era("t", era)).add(tick_name)
    index.forget_tick(tick)
    assert not index.knows_tick(tick)
    assert tick_name not in index.era_ticks(L.pending_era("t", era))


def test_snapshot_counts_depth_oldest_and_running() -> None:
    index = PendingIndex()
    jid = new_job_id()
    index.load_tick("t", tick_of("t", jid), [pending_name(0, jid), pending_name(0, new_job_id())])
    snap = index.snapshot({"t": 3, "u": 1}, {"u"})
    assert snap["t"].depth == 2 and snap["t"].running == 3 and not snap["t"].paused
    assert snap["t"].oldest_created is not None and abs(snap["t"].oldest_created - time.time()) < 3
    assert snap["u"].paused and snap["u"].depth == 0 and snap["u"].oldest_created is None


def job(state: JobState, updated: float, started: float | None, timeout: float) -> Job:
    return Job(
        id=new_job_id(),
        type="t",
        state=state,
        updated_at=updated,
        started_at=started,
        timeout=timeout,
        worker="w1",
    )


def test_a_running_attempt_is_overdue_its_timeout_after_the_leader_saw_it_start() -> None:
    clock = AttemptClock(grace=2.0)
    running = job(JobState.RUNNING, 100.0, 100.0, 10.0)
    clock.track(running, "w1", now=500.0)  # first seen running on the leader's clock
    assert clock.observe(running, now=505.0) == 512.0
    assert clock.observe(running, now=512.5) is None


def test_a_worker_clock_far_behind_or_ahead_changes_nothing() -> None:
    clock = AttemptClock(grace=2.0)
    # what two workers wrote: one an hour behind the leader, one an hour ahead
    for written in (500.0 - 3600, 500.0 + 3600):
        running = job(JobState.RUNNING, written, written, 10.0)
        clock.track(running, "w1", now=500.0)
        assert clock.observe(running, now=511.0) == 512.0
        assert clock.observe(running, now=512.5) is None


def test_an_attempt_seen_start_is_timed_from_that_look_within_one_gap() -> None:
    clock = AttemptClock(grace=2.0)
    queued = job(JobState.ASSIGNED, 0.0, None, 40.0)
    clock.track(queued, "w1", now=100.0)
    gap = look_gap(queued, 2.0)
    assert gap == 10.0  # a quarter of the timeout
    assert clock.due(now=100.0 + gap - 0.1) == []
    assert clock.due(now=100.0 + gap) == [queued.id]
    # it started at some moment since the last look; counted from this one: never early,
    # late by at most one gap
    started = queued.replace(state=JobState.RUNNING, attempts=1, started_at=0.0)
    assert clock.observe(started, now=100.0 + gap) == 100.0 + gap + 40.0 + 2.0
    assert look_gap(job(JobState.ASSIGNED, 0, None, 7 * 24 * 3600.0), 2.0) == LOOK_GAP_LIMIT
    assert look_gap(job(JobState.ASSIGNED, 0, None, 1.0), 2.0) == 2.0


def test_a_queued_assignment_is_looked_at_again_until_its_unstarted_limit() -> None:
    clock = AttemptClock(grace=2.0)
    queued = job(JobState.ASSIGNED, 100.0, None, 1.0)
    clock.track(queued, "w1", now=100.0)
    assert clock.observe(queued, now=110.0) == 112.0  # again after one gap
    assert clock.observe(queued, now=100.0 + UNSTARTED_LIMIT + 3) is None
    assert queued.id in clock and clock.due(now=102.5) == [queued.id]
    clock.forget(queued.id, "someone-else")
    assert queued.id in clock
    clock.forget(queued.id, "w1")
    assert queued.id not in clock and clock.soonest() is None
