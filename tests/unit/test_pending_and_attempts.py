"""The leader's in-memory pieces, without ZooKeeper."""

from __future__ import annotations

import time

from zkq.coordinator.attempts import UNSTARTED_LIMIT, AttemptClock
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


def test_a_running_attempt_is_overdue_its_timeout_after_it_started() -> None:
    clock = AttemptClock(grace=2.0)
    running = job(JobState.RUNNING, 100.0, 100.0, 10.0)
    assert clock.next_look(running, now=105.0) == 112.0
    assert clock.next_look(running, now=112.5) is None


def test_a_queued_assignment_is_looked_at_again_until_its_unstarted_limit() -> None:
    clock = AttemptClock(grace=2.0)
    queued = job(JobState.ASSIGNED, 100.0, None, 1.0)
    assert clock.next_look(queued, now=110.0) == 113.0  # again after one timeout
    assert clock.next_look(queued, now=100.0 + UNSTARTED_LIMIT + 3) is None
    clock.track(queued, "w1")
    assert queued.id in clock and clock.due(now=103.5) == [queued.id]
    clock.forget(queued.id, "someone-else")
    assert queued.id in clock
    clock.forget(queued.id, "w1")
    assert queued.id not in clock and clock.soonest() is None
