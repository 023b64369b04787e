"""Reading jobs across ZooKeeper and the archive (``coordinator.lookup``), without servers:
the merge of a page is a pure function, and the lookup is given a store and an archive
that keep their jobs in dicts."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from zkq.coordinator.errors import JobNotFound
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.listing import JobScan
from zkq.coordinator.lookup import JobLookup, merge


def jobs(n: int, state: JobState = JobState.SUCCEEDED) -> list[Job]:
    return [Job(id=new_job_id(), type="t", state=state) for _ in range(n)]


def ids(found: list[Job]) -> list[str]:
    return [job.id for job in found]


# -- merge --------------------------------------------------------------------------------
def test_both_sources_read_to_the_end_give_everything_and_no_cursor() -> None:
    a, b, c = jobs(3)
    page = merge(JobScan([a, c], c.id, exhausted=True), [b], limit=10)
    assert ids(page.jobs) == [a.id, b.id, c.id] and page.next_cursor is None


def test_the_live_record_wins_over_the_archived_one() -> None:
    [archived] = jobs(1)
    live = archived.replace(state=JobState.PENDING)  # revived after it was archived
    page = merge(JobScan([live], live.id, exhausted=True), [archived], limit=10)
    assert page.jobs == [live]


def test_a_scan_stopped_by_its_budget_bounds_the_page() -> None:
    a, b, c, d = jobs(4)
    # the scan read up to b (its budget ran out) and found a; the archive holds c and d,
    # which may have live neighbours the scan has not reached
    page = merge(JobScan([a], b.id, exhausted=False), [c, d], limit=10)
    assert ids(page.jobs) == [a.id] and page.next_cursor == b.id


def test_a_full_archive_page_bounds_the_page() -> None:
    a, b, c, d = jobs(4)
    page = merge(JobScan([b, d], d.id, exhausted=True), [a, c], limit=2)
    assert ids(page.jobs) == [a.id, b.id] and page.next_cursor == b.id
    page = merge(JobScan([d], d.id, exhausted=True), [a, c], limit=2)
    assert ids(page.jobs) == [a.id, c.id] and page.next_cursor == c.id


def test_more_than_a_page_stops_at_the_limit() -> None:
    a, b, c = jobs(3)
    page = merge(JobScan([a, b, c], c.id, exhausted=True), [], limit=2)
    assert ids(page.jobs) == [a.id, b.id] and page.next_cursor == b.id


def test_an_empty_scan_that_stopped_early_still_hands_out_its_cursor() -> None:
    a, b = jobs(2)
    page = merge(JobScan([], a.id, exhausted=False), [b], limit=5)
    assert page.jobs == [] and page.next_cursor == a.id


@pytest.mark.parametrize("seed", range(30))
def test_paging_to_the_end_hands_out_every_job_once_in_order(seed: int) -> None:
    rng = random.Random(seed)
    everything = jobs(120)
    share = rng.choice([0.05, 0.5, 0.95])  # of the jobs still live: few, half, most
    live = [j for j in everything if rng.random() < share]
    archived = [j for j in everything if j not in live or rng.random() < 0.2]
    hidden = {j.id for j in live if rng.random() < 0.3}  # other tenants' jobs: read, unmatched
    limit, budget = rng.randint(1, 15), rng.randint(1, 25)

    def scan(after: str | None) -> JobScan:
        found, examined, last = [], 0, after
        for job in live:
            if after is not None and job.id <= after:
                continue
            examined, last = examined + 1, job.id
            if job.id not in hidden:
                found.append(job)
            if len(found) >= limit or examined >= budget:
                return JobScan(found, last, exhausted=False)
        return JobScan(found, last, exhausted=True)

    def archive(after: str | None) -> list[Job]:
        later = [j for j in archived if j.id not in hidden and (after is None or j.id > after)]
        return later[:limit]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        page = merge(scan(cursor), archive(cursor), limit)
        assert len(page.jobs) <= limit
        seen += ids(page.jobs)
        if page.next_cursor is None:
            break
        assert cursor is None or page.next_cursor > cursor, "the cursor must move on"
        cursor = page.next_cursor
    assert seen == sorted({j.id for j in everything} - hidden)


# -- the lookup -----------------------------------------------------------------------------
class FakeStore:
    """The part of a JobStore the lookup reads, over a dict."""

    def __init__(self, live: list[Job]) -> None:
        self.jobs = {job.id: job for job in live}
        self.deadlines: list[float | None] = []

    def get(self, job_id: str, deadline: float | None = None) -> Job:
        self.deadlines.append(deadline)
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return self.jobs[job_id]

    def get_many(
        self, job_ids: list[str], deadline: float | None = None
    ) -> dict[str, tuple[Job, int]]:
        self.deadlines.append(deadline)
        return {i: (self.jobs[i], 0) for i in job_ids if i in self.jobs}


class FakeArchive:
    def __init__(self, archived: list[Job]) -> None:
        self.jobs = {job.id: job for job in archived}
        self.asked: list[str] = []

    def get(self, job_id: str) -> Job | None:
        self.asked.append(job_id)
        return self.jobs.get(job_id)

    def list(self, **_: Any) -> list[Job]:
        raise AssertionError("not used here")


def test_get_reads_zookeeper_first_then_the_archive() -> None:
    live, pruned, unknown = jobs(1, JobState.RUNNING)[0], jobs(1)[0], new_job_id()
    archive = FakeArchive([pruned, live.replace(state=JobState.SUCCEEDED)])
    lookup = JobLookup(FakeStore([live]), archive)  # type: ignore[arg-type]
    assert lookup.get(live.id) == live and archive.asked == []
    assert lookup.get(pruned.id) == pruned
    with pytest.raises(JobNotFound):
        lookup.get(unknown)
    with pytest.raises(JobNotFound):
        JobLookup(FakeStore([]), None).get(pruned.id)  # type: ignore[arg-type]


def test_each_zookeeper_read_runs_inside_the_callers_bound() -> None:
    entered: list[float] = []

    @contextlib.contextmanager
    def bound() -> Iterator[float]:
        entered.append(42.0)
        yield 42.0

    store = FakeStore(jobs(1))
    lookup = JobLookup(store, None, bound)  # type: ignore[arg-type]
    lookup.get(next(iter(store.jobs)))
    assert entered == [42.0] and store.deadlines == [42.0]


def test_get_many_finds_live_and_archived_jobs_and_leaves_out_the_rest() -> None:
    live, pruned = jobs(1, JobState.PENDING)[0], jobs(1)[0]
    unknown = new_job_id()
    archive = FakeArchive([pruned])
    lookup = JobLookup(FakeStore([live]), archive)  # type: ignore[arg-type]
    found = lookup.get_many([live.id, pruned.id, unknown])
    assert found == {live.id: live, pruned.id: pruned}
    assert archive.asked == [pruned.id, unknown]  # never for a job ZooKeeper holds


def test_a_scan_past_its_time_ends_the_page_where_it_got_to() -> None:
    from tests.memory_support import MemoryCluster
    from zkq.coordinator.listing import CHUNK, scan_jobs
    from zkq.coordinator.store import JobSpec, JobStore

    cluster = MemoryCluster()
    try:
        store = JobStore(cluster.session("s"))
        made = [j.id for j in store.submit_many([JobSpec("t", n) for n in range(CHUNK + 50)])]
        deadline = time.monotonic() + 10
        # nothing matches: without enough_at the scan reads every record
        full = scan_jobs(store.session, None, 10, lambda j: False, deadline)
        assert full.exhausted and full.last == made[-1]
        # past enough_at after the first chunk: a short page, and a cursor from there on
        short = scan_jobs(store.session, None, 10, lambda j: False, deadline, enough_at=0.0)
        assert not short.exhausted and short.last == made[CHUNK - 1]
        rest = scan_jobs(store.session, short.last, 10, lambda j: False, deadline)
        assert rest.exhausted and rest.last == made[-1]
    finally:
        cluster.close()


def test_a_record_this_zkq_cannot_read_does_not_stop_a_listing() -> None:
    from tests.memory_support import MemoryCluster
    from zkq.coordinator.listing import scan_jobs
    from zkq.coordinator.store import JobSpec, JobStore

    cluster = MemoryCluster()
    try:
        store = JobStore(cluster.session("s"))
        made = [j.id for j in store.submit_many([JobSpec("t", n) for n in range(4)])]
        newer = {**store.get(made[1]).to_dict(), "schema": 99}
        store.session.set(store.layout.job(made[1]), json.dumps(newer).encode())
        store.session.set(store.layout.job(made[2]), b"\xff not json")
        scan = scan_jobs(store.session, None, 10, lambda j: True, time.monotonic() + 10)
        assert [j.id for j in scan.jobs] == [made[0], made[3]] and scan.exhausted
    finally:
        cluster.close()
