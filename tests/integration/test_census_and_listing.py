"""The read-only views the frontend serves (``coordinator.census``, ``coordinator.listing``)
against a real ensemble, each test under a root of its own."""

from __future__ import annotations

import time

import pytest

from zkq.coordinator import census
from zkq.coordinator.job import JobSpec
from zkq.coordinator.listing import scan_jobs
from zkq.coordinator.store import JobStore

pytestmark = pytest.mark.integration


def deadline(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def test_scan_pages_resume_where_the_budget_ran_out(store: JobStore) -> None:
    specs = [JobSpec("a", i, tenant="acme" if i % 3 else "other") for i in range(30)]
    jobs = store.submit_many(specs)
    mine = [j.id for j in jobs if j.tenant == "acme"]
    seen: list[str] = []
    after = None
    rounds = 0
    while True:
        scan = scan_jobs(
            store.session, after, 4, lambda j: j.tenant == "acme", deadline(), budget=5
        )
        assert len(scan.jobs) <= 4
        seen += [j.id for j in scan.jobs]
        rounds += 1
        assert rounds < 30
        if scan.exhausted:
            break
        after = scan.last
    assert seen == mine  # every match once, in id order, however the pages were cut
    full = scan_jobs(store.session, None, 100, lambda j: True, deadline())
    assert full.exhausted and [j.id for j in full.jobs] == [j.id for j in jobs]


def test_queue_counts(store: JobStore) -> None:
    layout = store.layout
    store.submit_many([JobSpec("resize") for _ in range(5)] + [JobSpec("mail")])
    running = store.submit(JobSpec("mail"))
    # a claim is what counts as running (its pending entry stays: nobody assigned it)
    store.session.create(layout.claim(running.id), b"w", ephemeral=True)
    store.session.create(layout.paused_type("resize"), b"")
    stats = {q.type: q for q in census.queues(store.session, deadline())}
    assert stats["resize"].depth == 5 and stats["resize"].paused
    assert stats["resize"].oldest_age is not None and 0 <= stats["resize"].oldest_age < 60
    assert stats["mail"].depth == 2 and stats["mail"].running == 1
    assert not stats["mail"].paused
    assert census.workers(store.session, deadline()) == []
