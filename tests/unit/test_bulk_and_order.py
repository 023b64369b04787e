"""Newest-first listing, time windows and bulk cancel/requeue (``coordinator.selection``,
``coordinator.listing``, ``coordinator.bulk``) on the in-memory ZooKeeper."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import pytest
from ulid import ULID

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.bulk import BulkAction, Tally, select_all, step
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.coordinator.listing import JobScan, scan_jobs
from zkq.coordinator.lookup import merge, within
from zkq.coordinator.selection import JobFilter, parse_when
from zkq.coordinator.store import JobStore

NOW = time.time()
HOUR = 3600.0


def id_at(seconds: float) -> str:
    """A job id of that time (a random one of its millisecond)."""
    return str(ULID.from_int((int(seconds * 1000) << 80) | random.getrandbits(80)))


def submit_at(store: JobStore, ages: list[float], job_type: str = "t") -> list[str]:
    """Jobs made ``age`` seconds ago each; their ids, oldest first."""
    specs = [JobSpec(job_type, None, job_id=id_at(NOW - a), id_recorded=True) for a in ages]
    return sorted(job.id for job in store.submit_many(specs))


def scan_all(store: JobStore, newest: bool, chosen: JobFilter, page: int) -> list[str]:
    out: list[str] = []
    after = None
    while True:
        scan = scan_jobs(
            store.session,
            after,
            page,
            chosen.matches,
            time.monotonic() + 10,
            newest=newest,
            window=chosen.id_range(),
        )
        out.extend(job.id for job in scan.jobs)
        if scan.exhausted:
            return out
        after = scan.last


def set_state(store: JobStore, job_id: str, state: JobState) -> None:
    """Make a job pending or ended (for requeue tests), as another actor would."""
    job = store.get(job_id)
    if job.state == JobState.PENDING:
        store.session.delete(store.layout.pending_entry(job.type, job.priority, job_id))
    store.session.set(store.layout.job(job_id), job.replace(state=state).to_bytes())


# -- times and windows ----------------------------------------------------------------------
def test_times_are_durations_ago_iso_or_unix_seconds() -> None:
    assert parse_when("10m", now=1000.0) == 400.0
    assert parse_when("2h", now=10_000.0) == 2800.0
    assert parse_when("1d", now=100_000.0) == 13_600.0
    assert parse_when("2026-12-03T14:00:00Z") == parse_when("2026-12-03T14:00:00")
    assert parse_when("2026-12-03T15:00:00+01:00") == parse_when("2026-12-03T14:00:00Z")
    assert parse_when("1700000000") == 1_700_000_000.0
    for bad in ("yesterday", "10x", "-5m", "", "1e400"):
        with pytest.raises(InvalidInput):
            parse_when(bad)
    with pytest.raises(InvalidInput, match="before"):
        JobFilter.of(since="1h", until="2h")


def test_newest_first_walks_every_bucket_backwards_and_pages_without_loss() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        # ages from milliseconds apart (one tick) to days: many ticks and several eras
        ages = [5, 5.001, 5.002, 5.003, 6, 7, 100, 2000, 2001, 3 * HOUR, 30 * HOUR, 50 * HOUR]
        made = submit_at(store, ages)
        everything = JobFilter()
        for page in (1, 2, 4, 100):
            assert scan_all(store, True, everything, page) == made[::-1]
            assert scan_all(store, False, everything, page) == made
    finally:
        cluster.close()


def test_a_time_window_selects_by_creation_and_never_reads_outside_it() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        old = submit_at(store, [10 * HOUR + i for i in range(30)])
        middle = submit_at(store, [2 * HOUR, 2 * HOUR + 1, 90 * 60])
        recent = submit_at(store, [i for i in range(1, 30)])
        window = JobFilter.of(since="3h", until="1h", now=NOW)
        assert scan_all(store, True, window, 2) == middle[::-1]
        assert scan_all(store, False, window, 2) == middle
        # the budget counts records read: 3 suffice, since no bucket outside is listed
        scan = scan_jobs(
            store.session,
            None,
            10,
            window.matches,
            time.monotonic() + 10,
            budget=3,
            newest=True,
            window=window.id_range(),
        )
        assert [j.id for j in scan.jobs] == middle[::-1]
        since = JobFilter.of(since="1h", now=NOW)
        assert scan_all(store, True, since, 7) == recent[::-1]
        until = JobFilter.of(until="5h", now=NOW)
        assert scan_all(store, False, until, 7) == old
    finally:
        cluster.close()


def test_a_window_edge_inside_one_tick_reads_nothing_outside_it() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        # the middle of a tick (1024 ms) an hour ago: jobs either side of it share the tick
        edge = ((int((NOW - HOUR) * 1000) // 1024) * 1024 + 512) / 1000
        before = submit_at(store, [NOW - edge + d for d in (0.3, 0.2, 0.1)])
        after = submit_at(store, [NOW - edge - d for d in (0.1, 0.2)])
        window = JobFilter(since=edge)
        for newest in (True, False):
            scan = scan_jobs(
                store.session,
                None,
                10,
                window.matches,
                time.monotonic() + 10,
                budget=2,
                newest=newest,
                window=window.id_range(),
            )
            assert sorted(j.id for j in scan.jobs) == after, newest
        assert scan_all(store, False, JobFilter(until=edge), 1) == before
    finally:
        cluster.close()


def test_merge_newest_first_stops_at_the_nearer_source() -> None:
    a, b, c, d, e = (Job(id=id_at(NOW - age), type="t") for age in (40, 30, 20, 10, 5))
    # the scan read e, d, c (its budget ran out there) and found e; a full archive page
    # went further down: below c the scan has not looked, so the page ends at c
    page = merge(JobScan([e], c.id, exhausted=False), [d, b, a], limit=3, newest=True)
    assert [j.id for j in page.jobs] == [e.id, d.id] and page.next_cursor == c.id
    # newest first: the scan got down to c (budget) and found d; the archive holds b, a
    page = merge(JobScan([d], c.id, exhausted=False), [b, a], limit=10, newest=True)
    assert [j.id for j in page.jobs] == [d.id] and page.next_cursor == c.id
    page = merge(JobScan([d, b], a.id, exhausted=True), [c, a], limit=3, newest=True)
    assert [j.id for j in page.jobs] == [d.id, c.id, b.id] and page.next_cursor == b.id


# -- bulk -----------------------------------------------------------------------------------
def test_bulk_cancel_acts_on_what_the_filter_selects_only() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        mine = submit_at(store, [1, 2, 3, 4], "t")
        other = submit_at(store, [1, 2], "u")
        old = submit_at(store, [5 * HOUR], "t")
        set_state(store, mine[0], JobState.SUCCEEDED)  # ended: not selected
        cancel = BulkAction(store, "cancel", JobFilter.of(job_type="t", since="1h", now=NOW))
        selected = select_all(cancel)
        assert selected == mine[1:]
        tally = Tally()
        seen: list[int] = []
        cancel.apply(selected, tally, progress=lambda t: seen.append(t.total))
        assert (tally.done, tally.skipped, tally.failed) == (3, 0, 0) and seen == [3]
        states = {i: store.get(i).state for i in mine + other + old}
        assert [states[i] for i in mine[1:]] == [JobState.CANCELLED] * 3
        assert states[mine[0]] == JobState.SUCCEEDED
        assert {states[i] for i in other + old} == {JobState.PENDING}
        # nothing pending is left behind for the leader to assign
        assert not store.session.exists(store.layout.pending_entry("t", 0, mine[1]))
        # once more: nothing is selected, and nothing is done twice
        assert select_all(cancel) == []
        again = Tally()
        cancel.apply(selected, again)
        assert (again.done, again.skipped) == (0, 3)
    finally:
        cluster.close()


class Meddling(JobStore):
    """A store on which another actor moves a job right after each pipelined read: the
    bulk action then writes against a version that is gone."""

    def __init__(self, store: JobStore, meddle: dict[str, JobState]) -> None:
        super().__init__(store.session, store.limits)
        self.meddle = meddle

    def get_many(
        self, job_ids: Sequence[str], deadline: float | None = None
    ) -> dict[str, tuple[Job, int]]:
        found = super().get_many(job_ids, deadline)
        for job_id, state in list(self.meddle.items()):
            if job_id in found:
                set_state(self, job_id, state)
                del self.meddle[job_id]
        return found


def test_a_job_that_changed_meanwhile_is_skipped_not_overwritten() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        made = submit_at(store, [1, 2, 3, 4])
        for job_id in made:
            set_state(store, job_id, JobState.DEAD)
        # two move on meanwhile (revived and run by someone else): no longer dead
        meddling = Meddling(store, {made[0]: JobState.SUCCEEDED, made[1]: JobState.FAILED})
        requeue = BulkAction(meddling, "requeue", JobFilter.of(states=["dead"]))
        tally = Tally()
        requeue.apply(select_all(requeue), tally)
        assert (tally.done, tally.skipped, tally.failed) == (2, 2, 0)
        assert store.get(made[0]).state == JobState.SUCCEEDED  # fenced: left as it is
        assert store.get(made[1]).state == JobState.FAILED
        for job_id in made[2:]:
            job = store.get(job_id)
            assert job.state == JobState.PENDING and job.attempts == 0
    finally:
        cluster.close()


def test_a_changed_job_still_selected_is_acted_on() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        made = submit_at(store, [1, 2])
        set_state(store, made[0], JobState.DEAD)
        # moved from dead to failed meanwhile: still selected by dead-or-failed
        meddling = Meddling(store, {made[0]: JobState.FAILED})
        requeue = BulkAction(meddling, "requeue", JobFilter.of(states=["dead", "failed"]))
        tally = Tally()
        requeue.apply([made[0]], tally)
        assert (tally.done, tally.skipped) == (1, 0)
        assert store.get(made[0]).state == JobState.PENDING
    finally:
        cluster.close()


def test_requeue_takes_an_assigned_job_back_from_its_worker() -> None:
    cluster = MemoryCluster()
    try:
        leader = Leader(cluster)
        store = cluster.store("s")
        cluster.register(store.session, "w1", slots=2)
        made = submit_at(store, [1, 2])
        assert leader.rounds() == 2
        cluster.start(store, "w1", made[0])
        requeue = BulkAction(store, "requeue", JobFilter.of(states=["assigned", "running"]))
        tally = Tally()
        requeue.apply(select_all(requeue), tally)
        assert tally.done == 2
        assert cluster.inbox(store, "w1") == []
        assert {store.get(i).state for i in made} == {JobState.PENDING}
        # the record says who took it back: an operator, not the leader
        entries = [store.get(i).history[-1] for i in made]
        assert [(e.kind, e.by) for e in entries] == [("requeue", "operator")] * 2
    finally:
        cluster.close()


def test_steps_are_bounded_and_walk_towards_older_jobs_only() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        made = submit_at(store, [float(i) for i in range(1, 12)])
        cancel = BulkAction(store, "cancel", JobFilter.of(job_type="t"))
        counted = step(cancel, None, 3, 1000, within(10), 60, dry_run=True)
        assert counted.matched == 11 and counted.next is None and counted.tally.total == 0
        done, steps, after = 0, 0, None
        while True:
            sliced = step(cancel, after, 3, 1000, within(10), 60)
            steps += 1
            assert sliced.matched <= 3 and sliced.tally.total == sliced.matched
            done += sliced.tally.done
            if sliced.next is None:
                break
            if steps == 1:
                # submitted after the first step: newer than where the steps go on from
                submit_at(store, [0.5])
            after = sliced.next
        assert done == 11 and steps == 4
        assert {store.get(i).state for i in made} == {JobState.CANCELLED}
        # the budget bounds the records read, whatever matches
        short = step(cancel, None, 3, 1, within(10), 60, dry_run=True)
        assert short.next is not None
    finally:
        cluster.close()


def test_a_step_out_of_time_says_where_to_go_on() -> None:
    cluster = MemoryCluster()
    try:
        store = cluster.store("s")
        made = submit_at(store, [float(i) for i in range(1, 8)])
        cancel = BulkAction(store, "cancel", JobFilter.of(job_type="t"))
        # no time at all: one chunk is still done, then the step stops there
        sliced = step(cancel, None, 10, 1000, within(10), 0.0, chunk_size=2)
        assert sliced.tally.done == 2 and sliced.next == made[::-1][1]
        rest = step(cancel, sliced.next, 10, 1000, within(10), 60)
        assert rest.tally.done == 5 and rest.next is None
    finally:
        cluster.close()
