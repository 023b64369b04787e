"""A worker's pipeline on the in-memory ZooKeeper: claims and ends of attempts grouped into
shared multis, a refused step set aside while the rest go, and a lost reply settled by
reading again.

Handlers wait on a gate per job, so the test decides when each attempt ends.  To make the
committer group several ends, the test holds the tree (``MemoryZooKeeper.locked``) while
the committer is inside a multi: the attempts that end meanwhile queue up for the next one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tests.memory_support import MemoryCluster
from zkq.coordinator.job import JobState
from zkq.coordinator.store import JobSpec
from zkq.coordinator.zk import Create, Op, OpResult, SetData
from zkq.dev.waiting import wait_until
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pipeline import Assignment, Pipeline
from zkq.worker.pools import ThreadPool
from zkq.worker.registry import JobContext, Registry

SLOTS = 3


class Metrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__(SLOTS, lambda: 0)
        self.outcomes: list[str] = []  # how each attempt ended, in order

    def ended(self, job_type: str, outcome: str, seconds: float | None = None) -> None:
        super().ended(job_type, outcome, seconds)
        self.outcomes.append(outcome)


class Harness:
    """One worker ``w1`` with a pipeline of :data:`SLOTS` slots, and its jobs by name."""

    def __init__(self, cluster: MemoryCluster, names: Sequence[str]) -> None:
        self.cluster = cluster
        self.client = cluster.store("client")
        self.worker = cluster.store("worker")
        self.session = self.worker.session
        cluster.register(self.session, "w1", slots=SLOTS)
        self.gates = {name: threading.Event() for name in names}
        self.returned: dict[str, threading.Event] = {name: threading.Event() for name in names}
        registry = Registry()
        registry.add("t", self._handle)
        self.multis: list[list[Op]] = []
        self.in_multi = threading.Event()
        #: lose the reply of the worker's multi with this number (1 for the first)
        self.lose_reply_of: int | None = None
        real_multi = self.session.multi

        def recording(ops: Sequence[Op]) -> list[OpResult]:
            self.multis.append(list(ops))
            if len(self.multis) == self.lose_reply_of:
                cluster.zk.lose_next_reply(self.session)
            self.in_multi.set()
            return real_multi(ops)

        self.session.multi = recording  # type: ignore[method-assign]
        self.released: list[tuple[str, bool]] = []
        self.finished = False
        self.metrics = Metrics()
        self.pipeline = Pipeline(
            self.worker,
            ThreadPool(registry),
            SLOTS,
            self.metrics,
            generation=lambda: 0,
            release=lambda job_id, relist: self.released.append((job_id, relist)),
        )
        jobs = self.client.submit_many([JobSpec("t", name, max_attempts=2) for name in names])
        self.ids = {name: job.id for name, job in zip(names, jobs, strict=True)}
        read = self.client.get_many(list(self.ids.values()))
        assigned, refused = self.client.assign_many([(j, v, "w1") for j, v in read.values()])
        assert len(assigned) == len(names) and not refused

    def _handle(self, name: str, _ctx: JobContext) -> str:
        assert self.gates[name].wait(10), f"the test never let {name} end"
        self.returned[name].set()
        return name

    def offer(self) -> None:
        """Hand the pipeline everything in the inbox, in the order of the names."""
        offered = []
        for job_id in self.ids.values():
            job, version = self.worker.get_versioned(job_id)
            offered.append(Assignment(job, version, "w1", generation=0))
        self.pipeline.offer(offered)

    def job(self, name: str) -> Any:
        return self.client.get(self.ids[name])

    def ended(self, count: int) -> list[str]:
        """How the first ``count`` attempts ended, once the committer has recorded them."""
        wait_until(
            lambda: len(self.metrics.outcomes) >= count,
            10,
            what=f"{count} attempts to be recorded",
        )
        return sorted(self.metrics.outcomes)

    def running(self, *names: str) -> None:
        wait_until(
            lambda: all(self.job(n).state == JobState.RUNNING for n in names),
            10,
            what=f"{', '.join(names)} to run",
        )

    def end_while_committing(self, first: str, then: Sequence[str]) -> None:
        """End ``first``; while the committer's multi that records it waits on the held
        tree, end ``then`` too, so their ends queue for the next multi together."""
        with self.cluster.zk.locked():
            self.in_multi.clear()
            self.gates[first].set()
            assert self.in_multi.wait(10), "the committer never began a multi"
            for name in then:
                self.gates[name].set()
            wait_until(
                lambda: self.pipeline._events.qsize() == len(then),
                10,
                what="the ended attempts to queue behind the multi in flight",
            )

    def move_on(self, name: str) -> None:
        """Write ``name``'s record cancelled but leave its claim, so the worker does not learn
        of it (a real cancel deletes the claim and the attempt is revoked at once): its end
        is refused by the record's version alone."""
        job, version, _ = self.client.read(self.ids[name])
        moved = job.replace(state=JobState.CANCELLED)
        self.client.session.set(self.cluster.layout.job(job.id), moved.to_bytes(), version)

    def ops_of(self, multi: list[Op]) -> tuple[list[str], list[str]]:
        """(claimed, ended) in one multi, by name, sorted."""
        names = {job_id: name for name, job_id in self.ids.items()}
        layout = self.cluster.layout
        claims = [op.path for op in multi if isinstance(op, Create) and op.ephemeral]
        sets = [op for op in multi if isinstance(op, SetData)]
        ended = [
            names[op.path.rsplit("/", 1)[1]]
            for op in sets
            if json.loads(op.value)["state"] != JobState.RUNNING
        ]
        claimed = [names[path[len(layout.claims) + 1 :]] for path in claims]
        return sorted(claimed), sorted(ended)

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for gate in self.gates.values():
            gate.set()
        wait_until(lambda: self.pipeline.outstanding == 0, 10, what="the pipeline to empty")
        self.pipeline.stop()


@pytest.fixture
def harness(cluster: MemoryCluster) -> Iterator[Harness]:
    h = Harness(cluster, ["a", "b", "c", "d", "e"])
    h.pipeline.start()
    try:
        yield h
    finally:
        h.finish()


def test_claims_and_ends_share_multis(harness: Harness) -> None:
    harness.offer()
    harness.running("a", "b", "c")
    assert [harness.ops_of(m) for m in harness.multis] == [(["a", "b", "c"], [])]
    harness.end_while_committing("a", then=["b", "c"])
    harness.running("d", "e")
    assert [harness.ops_of(m) for m in harness.multis[1:]] == [
        (["d"], ["a"]),  # a's end and a claim for the slot it freed
        (["e"], ["b", "c"]),  # two ends that came meanwhile, and a claim: one slot is free
    ]
    harness.finish()
    assert all(harness.job(n).state == JobState.SUCCEEDED for n in "abcde")
    assert all(harness.job(n).result == n for n in "abcde")
    assert len(harness.multis) < 10  # five jobs: under two transactions each
    assert harness.ended(5) == ["succeeded"] * 5


def test_a_step_refused_in_a_group_is_set_aside_and_the_rest_go(harness: Harness) -> None:
    harness.offer()
    harness.running("a", "b", "c")
    harness.move_on("b")  # while b runs: its end will be refused
    harness.end_while_committing("a", then=["b", "c"])
    harness.running("d", "e")
    refused, retried = harness.multis[2:4]
    assert harness.ops_of(refused) == (["e"], ["b", "c"])
    assert harness.ops_of(retried) == (["e"], ["c"])  # the same group, without b
    cancelled = harness.job("b")
    assert cancelled.state == JobState.CANCELLED and cancelled.result is None
    assert harness.job("c").state == JobState.SUCCEEDED
    assert harness.ended(3) == ["fenced", "succeeded", "succeeded"]
    assert (harness.ids["b"], True) in harness.released


def test_a_lost_reply_is_settled_by_reading_again(cluster: MemoryCluster, harness: Harness) -> None:
    harness.offer()
    harness.running("a", "b", "c")
    harness.lose_reply_of = 2  # the multi that records a's end and claims d
    zxid = cluster.zk.zxid
    harness.end_while_committing("a", then=[])
    assert harness.ended(1) == ["succeeded"]  # neither fenced nor failed
    assert cluster.zk.zxid == zxid + 1, "applied once, not again after the lost reply"
    done = harness.job("a")
    assert done.state == JobState.SUCCEEDED
    assert [attempt.outcome for attempt in done.history] == ["succeeded"]
    # d's claim was settled too, with the version its end must hold: the end goes through
    harness.gates["d"].set()
    wait_until(lambda: harness.job("d").state == JobState.SUCCEEDED, 10, what="d to succeed")


def test_a_lost_reply_of_a_refused_group_settles_each_step_on_its_own(
    cluster: MemoryCluster, harness: Harness
) -> None:
    harness.offer()
    harness.running("a", "b", "c")
    harness.move_on("b")
    harness.lose_reply_of = 3  # the group of b's end (refused), c's end and e's claim
    zxid = cluster.zk.zxid
    harness.end_while_committing("a", then=["b", "c"])
    assert harness.ended(3) == ["fenced", "succeeded", "succeeded"]
    assert harness.ops_of(harness.multis[2]) == (["e"], ["b", "c"])
    # rolled back and unanswered: b is found moved on, c and e unchanged and sent alone
    assert [harness.ops_of(m) for m in harness.multis[3:]] == [([], ["c"]), (["e"], [])]
    assert cluster.zk.zxid == zxid + 4  # a+d, the refused group, c, e
    assert harness.job("b").state == JobState.CANCELLED
    assert harness.job("c").state == JobState.SUCCEEDED
    harness.running("e")


class Raising(BaseException):
    """Neither an Exception nor one of Python's own: what a careless library might raise."""


@pytest.mark.parametrize("escape", [SystemExit(3), KeyboardInterrupt(), Raising("boom")])
def test_a_handler_that_raises_a_base_exception_fails_its_attempt_and_the_slot_survives(
    cluster: MemoryCluster, escape: BaseException
) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    registry = Registry()

    def handle(payload: str, _ctx: JobContext) -> str:
        if payload == "escape":
            raise escape
        return payload

    registry.add("t", handle)
    metrics = Metrics()
    pipeline = Pipeline(
        worker, ThreadPool(registry), 1, metrics, generation=lambda: 0, release=lambda *_: None
    )
    pipeline.start()
    try:
        jobs = client.submit_many([JobSpec("t", "escape"), JobSpec("t", "after")])
        read = client.get_many([j.id for j in jobs])
        client.assign_many([(j, v, "w1") for j, v in read.values()])
        pipeline.offer([Assignment(*worker.get_versioned(j.id), "w1", generation=0) for j in jobs])
        # one slot: the second job runs only if the first one's slot thread lived on
        wait_until(lambda: len(metrics.outcomes) == 2, 10, what="both attempts to be recorded")
        failed, after = (client.get(j.id) for j in jobs)
        assert failed.state == JobState.FAILED
        assert (failed.error or {})["type"] == type(escape).__name__
        assert type(escape).__name__ in (failed.error or {})["traceback"]
        assert after.state == JobState.SUCCEEDED and after.result == "after"
    finally:
        wait_until(lambda: pipeline.outstanding == 0, 10, what="the pipeline to empty")
        pipeline.stop()


def test_assignments_let_go_unstarted_are_listed_again(harness: Harness) -> None:
    """A job dropped as another session's, or refused at its claim, may be back in the
    inbox (taken back and assigned to us anew): the worker must list again, or it sits
    assigned to a live worker that never looks at it."""
    stale = Assignment(*harness.worker.get_versioned(harness.ids["a"]), "w1", generation=-1)
    moved, version = harness.worker.get_versioned(harness.ids["b"])
    harness.move_on("b")  # cancelled after we read it: the claim is refused
    harness.pipeline.offer([stale, Assignment(moved, version, "w1", generation=0)])
    wait_until(lambda: len(harness.released) == 2, 10, what="both assignments let go")
    assert sorted(harness.released) == sorted([(harness.ids["a"], True), (harness.ids["b"], True)])
    assert harness.job("a").state == JobState.ASSIGNED and harness.pipeline.outstanding == 0
