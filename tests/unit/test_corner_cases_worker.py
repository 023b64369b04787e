"""Corners of a worker service on the in-memory ZooKeeper, with a real :class:`Coordinator`
leading: here, that a worker never runs more handlers at once than its slots, even with
prefetched assignments waiting in its inbox."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.memory_support import MemoryCluster
from zkq.coordinator.client import Client
from zkq.coordinator.job import JobState
from zkq.coordinator.service import Coordinator
from zkq.coordinator.store import JobSpec
from zkq.dev.waiting import wait_until
from zkq.worker.registry import JobContext, Registry
from zkq.worker.service import Worker

SLOTS = 2
JOBS = 12


class Stamps:
    """(start, end) of every handler call, by job id, on one monotonic clock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = {}
        #: set once two handlers have started: the first waits for it, so the check below
        #: sees the slots really shared, whatever the machine's load
        self.second_started = threading.Event()

    def handle(self, _payload: Any, ctx: JobContext) -> str:
        start = time.monotonic()
        with self.lock:
            self.spans.setdefault(ctx.job_id, [])
            first = len(self.spans) == 1
            if len(self.spans) >= 2:
                self.second_started.set()
        if first:
            self.second_started.wait(10)
        time.sleep(0.01)  # long enough for the next claims to land while this one runs
        with self.lock:
            self.spans[ctx.job_id].append((start, time.monotonic()))
        return "ok"

    def most_at_once(self) -> int:
        """The largest number of calls running at one instant, from the stamps: an end at
        the same instant as a start frees its slot first."""
        events = sorted(
            (t, delta)
            for spans in self.spans.values()
            for start, end in spans
            for t, delta in ((start, 1), (end, -1))
        )
        running = peak = 0
        for _, delta in events:
            running += delta
            peak = max(peak, running)
        return peak


def test_a_worker_never_runs_more_handlers_at_once_than_its_slots(cluster: MemoryCluster) -> None:
    """One worker with two slots and room to prefetch as many again: the leader fills its
    inbox beyond its slots, and the worker must still run at most two handlers at a time,
    each job once, every job to success."""
    stamps = Stamps()
    registry = Registry()
    registry.add("t", stamps.handle)

    def session(name: str) -> Any:
        s = cluster.zk.session(cluster.config.zk, name)
        cluster.sessions.append(s)
        return s

    coordinator = Coordinator(cluster.config, "leader", session=session("c"))
    worker = Worker(
        cluster.config, registry, concurrency=SLOTS, prefetch=SLOTS, session=session("w")
    )
    threads = [threading.Thread(target=s.run, daemon=True) for s in (coordinator, worker)]
    client = Client(cluster.config, session=session("client"))
    for thread in threads:
        thread.start()
    client.start()
    try:
        wait_until(coordinator.leading.is_set, 10, what="a leader")
        jobs = client.submit_many([JobSpec("t", n) for n in range(JOBS)])
        wait_until(
            lambda: all(client.get(j.id).state == JobState.SUCCEEDED for j in jobs),
            30,
            what="every job to succeed",
        )
        done = [client.get(j.id) for j in jobs]
    finally:
        worker.drain()
        coordinator.stop()
        for thread in threads:
            thread.join(10)
        client.close()
    assert not any(thread.is_alive() for thread in threads), "a service kept running"
    assert sorted(stamps.spans) == sorted(j.id for j in jobs)
    assert all(len(spans) == 1 for spans in stamps.spans.values()), "a job ran twice"
    assert all(job.attempts == 1 and len(job.history) == 1 for job in done)
    assert stamps.most_at_once() == SLOTS
