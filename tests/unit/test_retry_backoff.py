"""Worker-side retry backoff and the ways to ask for later: a failed attempt whose retry
waits goes ``scheduled`` with its due-time entry; ``zkq.Retry`` and a ``Retry-After`` set
the floor; a handler's declared policy reaches the jobs its handle and ``ctx.spawn`` make."""

from __future__ import annotations

import pickle
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.memory_support import MemoryCluster
from zkq.coordinator import lifecycle
from zkq.coordinator.backoff import Backoff, retry_delay
from zkq.coordinator.errors import InvalidInput, RateLimited
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.coordinator.paths import Layout
from zkq.coordinator.timestamps import epoch_seconds
from zkq.coordinator.zk import Create, Delete
from zkq.dev.waiting import wait_until
from zkq.worker import retrying
from zkq.worker.control import Retry
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pipeline import Assignment, Pipeline
from zkq.worker.pools import Outcome, ThreadPool, failure
from zkq.worker.registry import JobContext, JobDefaults, Registry

L = Layout("/zkq")
FIXED = {"backoff": "fixed", "delay": 30.0}


def running(attempts: int, max_attempts: int, **kw: Any) -> Job:
    job = Job(
        id=new_job_id(),
        type="t",
        state=JobState.ASSIGNED,
        worker="w1",
        attempts=attempts - 1,
        max_attempts=max_attempts,
        **kw,
    )
    return lifecycle.start(L, job, 1, "w1", 1.0).job


# -- lifecycle.fail ------------------------------------------------------------------------
def test_a_retry_with_a_delay_waits_scheduled_with_its_due_entry() -> None:
    err = {"type": "RuntimeError", "message": "boom"}
    job = running(1, 3)
    step = lifecycle.fail(L, job, 2, "w1", err, now=100.0, delay=30.0)
    nxt = step.job
    assert nxt.state == JobState.SCHEDULED
    assert (nxt.run_at, nxt.scheduled_for) == (130.0, "retry")
    assert nxt.attempts == 1 and nxt.worker is None and nxt.error == err  # attempt spent
    assert nxt.history[-1].outcome == "error" and nxt.history[-1].ended_at == 100.0
    assert Create(L.scheduled_entry(130.0, job.id)) in step.ops
    assert Delete(L.claim(job.id)) in step.ops
    assert Delete(L.inbox_entry("w1", job.id)) in step.ops
    assert not any(op.path.startswith(L.pending + "/") for op in step.ops)
    assert Job.from_bytes(nxt.to_bytes()).to_dict()["schema"] == 2


def test_a_retry_without_a_delay_is_pending_exactly_as_before() -> None:
    err = {"type": "RuntimeError", "message": "boom"}
    job = running(1, 3)
    assert lifecycle.fail(L, job, 2, "w1", err, 5.0, 0.0) == lifecycle.fail(
        L, job, 2, "w1", err, 5.0
    )
    step = lifecycle.fail(L, job, 2, "w1", err, 5.0)
    assert step.job.state == JobState.PENDING and step.job.run_at is None
    assert Create(L.pending_entry("t", 0, job.id)) in step.ops


def test_the_last_attempt_ends_dead_whatever_the_delay() -> None:
    step = lifecycle.fail(L, running(2, 2), 2, "w1", {"message": "x"}, 5.0, delay=60.0)
    assert step.job.state == JobState.DEAD and step.job.run_at is None
    assert not any(op.path.startswith(L.scheduled + "/") for op in step.ops)


def test_revive_at_a_later_time_waits_scheduled() -> None:
    dead = lifecycle.fail(L, running(1, 1), 2, "w1", {"message": "x"}, 5.0).job
    step = lifecycle.revive(L, dead, 3, now=10.0, run_at=500.0)
    assert step.job.state == JobState.SCHEDULED and step.job.attempts == 0
    assert (step.job.run_at, step.job.scheduled_for) == (500.0, "delay")
    assert Create(L.scheduled_entry(500.0, dead.id)) in step.ops
    # a time already passed: back to the queue at once, as without one
    assert lifecycle.revive(L, dead, 3, now=10.0, run_at=5.0).job.state == JobState.PENDING


# -- where the delay comes from -------------------------------------------------------------
class Headers(dict[str, str]):
    """Case-sensitive stand-in: both libraries' headers answer .get("Retry-After")."""


class Response:
    """What requests.Response and httpx.Response share that matters here."""

    def __init__(self, retry_after: str) -> None:
        self.status_code = 429
        self.headers = Headers({"Retry-After": retry_after})


class HTTPError(Exception):
    """requests.HTTPError / httpx.HTTPStatusError: the response on ``.response``."""

    def __init__(self, response: Response) -> None:
        super().__init__("429 Too Many Requests")
        self.response = response


def test_the_floor_comes_from_retry_or_a_retry_after_the_failure_carries() -> None:
    assert failure(Retry(delay=7)).retry_delay == 7.0
    assert failure(Retry(delay=7)).retry and not failure(ValueError()).retry
    assert failure(Retry()).retry_delay is None  # the policy's
    assert failure(HTTPError(Response("120"))).retry_delay == 120.0  # requests / httpx error
    soon = datetime.now(UTC) + timedelta(seconds=600)
    dated = soon.strftime("%a, %d %b %Y %H:%M:%S GMT")
    floor = failure(HTTPError(Response(dated))).retry_delay
    assert floor is not None and 500 < floor <= 600  # an HTTP-date, against this clock
    assert Retry.after(Response("45")).delay == 45.0  # a response itself
    assert failure(RateLimited("slow down", retry_after=9)).retry_delay == 9.0
    assert failure(HTTPError(Response("soon"))).retry_delay is None  # unparsable: no hint
    assert failure(ValueError("plain")).retry_delay is None


def test_an_outcome_with_its_floor_crosses_a_process_boundary() -> None:
    class Unpicklable(Exception):
        def __init__(self) -> None:
            super().__init__("holds a lock")
            self.lock = threading.Lock()
            self.retry_after = 12

    outcome = failure(Unpicklable())
    back = pickle.loads(pickle.dumps(outcome))
    assert (back.retry_delay, back.ok, back.error) == (12.0, False, outcome.error)


def test_settle_takes_the_larger_of_policy_and_floor() -> None:
    policy = Backoff.fixed(30).to_dict()
    job = running(1, 3, retry=policy)
    error = {"type": "E", "message": "m"}
    assert retrying.settle(job, Outcome(ok=False), error) == (error, 30.0)
    assert retrying.settle(job, Outcome(ok=False, retry_delay=90.0), error)[1] == 90.0
    assert retrying.settle(running(1, 3), Outcome(ok=False), error)[1] == 0.0  # no policy
    exp = Backoff(base=2, jitter=0).to_dict()
    assert retry_delay(exp, 3, None, random.Random(1)) == 8.0
    job = running(1, 5, retry=exp)
    assert retrying.settle(job, Outcome(ok=False), error)[1] == 2.0
    for _ in range(2):  # numbered by the history: the third attempt waits base * factor²
        job = lifecycle.fail(L, job, 2, "w1", error, 3.0).job
        job = lifecycle.assign(L, job, 3, "w1", 4.0).job
        job = lifecycle.start(L, job, 4, "w1", 5.0).job
    assert job.attempt_number == 3
    assert retrying.settle(job, Outcome(ok=False), error)[1] == 8.0


def test_a_policy_this_worker_cannot_read_retries_at_once_or_after_the_floor() -> None:
    job = running(1, 3, retry={"backoff": "fibonacci"})
    error = {"type": "E", "message": "m"}
    assert retrying.settle(job, Outcome(ok=False), error) == (error, 0.0)
    assert retrying.settle(job, Outcome(ok=False, retry_delay=9.0), error) == (error, 9.0)


def test_retry_on_the_last_attempt_says_no_attempts_were_left() -> None:
    outcome = failure(Retry(delay=5, reason="upstream busy"))
    error, delay = retrying.settle(running(2, 2), outcome, outcome.error or {})
    assert delay == 0.0
    assert error["message"].startswith(retrying.NO_ATTEMPTS_LEFT)
    assert "upstream busy" in error["message"] and error["type"] == "Retry"
    plain = failure(ValueError("bad input"))
    assert retrying.settle(running(2, 2), plain, plain.error or {})[0] == plain.error


# -- the pipeline writes it ---------------------------------------------------------------
def test_a_handler_retry_is_recorded_scheduled_then_dead_on_the_last(
    cluster: MemoryCluster,
) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    registry = Registry()

    def handle(payload: Any, _ctx: JobContext) -> None:
        raise Retry(delay=600, reason="later")

    registry.add("t", handle)
    ended: list[str] = []

    class Metrics(WorkerMetrics):
        def ended(self, job_type: str, outcome: str, seconds: float | None = None) -> None:
            super().ended(job_type, outcome, seconds)
            ended.append(outcome)

    pipeline = Pipeline(
        worker,
        ThreadPool(registry),
        1,
        Metrics(1, lambda: 0),
        generation=lambda: 0,
        release=lambda *_: None,
    )
    pipeline.start()
    try:
        retried, last = client.submit_many(
            [JobSpec("t", 1, max_attempts=2), JobSpec("t", 2, max_attempts=2)]
        )
        # the second is on its last attempt: one already spent
        read = client.get_many([retried.id, last.id])
        client.assign_many([(j, v, "w1") for j, v in read.values()])
        job, version = worker.get_versioned(last.id)
        worker.session.set(worker.layout.job(last.id), job.replace(attempts=1).to_bytes(), version)
        pipeline.offer(
            [Assignment(*worker.get_versioned(j.id), "w1", generation=0) for j in (retried, last)]
        )
        wait_until(lambda: len(ended) == 2, 10, what="both attempts to be recorded")
        waiting = client.get(retried.id)
        assert waiting.state == JobState.SCHEDULED and waiting.scheduled_for == "retry"
        assert waiting.run_at is not None and waiting.run_at >= waiting.updated_at + 600
        assert worker.session.exists(cluster.layout.scheduled_entry(waiting.run_at, waiting.id))
        dead = client.get(last.id)
        assert dead.state == JobState.DEAD
        assert (dead.error or {})["message"].startswith(retrying.NO_ATTEMPTS_LEFT)
    finally:
        wait_until(lambda: pipeline.outstanding == 0, 10, what="the pipeline to empty")
        pipeline.stop()


# -- declared defaults and the ways to say "later" ----------------------------------------
def test_a_handlers_retry_policy_reaches_its_handle_and_spawn() -> None:
    registry = Registry()

    @registry.handler("fetch", max_attempts=5, retry=Backoff.fixed(30))
    def fetch(payload: Any, ctx: JobContext) -> None:
        return None

    assert fetch.defaults == JobDefaults(0, 5, 300.0, FIXED)
    assert fetch.spec({}).retry == FIXED
    assert fetch.spec({}, retry=Backoff.none()).retry == {"backoff": "none"}
    assert fetch.spec({}, retry={"backoff": "fixed", "delay": 5}).retry == {
        "backoff": "fixed",
        "delay": 5.0,
    }
    spec = fetch.spec({}, delay=60)
    assert (spec.delay, spec.run_at) == (60, None)
    ctx = JobContext("j", "parent", 1, 1, None, type_defaults=registry.defaults())
    ctx.spawn("fetch", {"n": 1}, delay=5)
    ctx.spawn(fetch, {"n": 2}, run_at=datetime(2027, 1, 1, tzinfo=UTC))
    ctx.spawn("other", {"n": 3})  # a type this worker does not know: zkq's defaults
    first, second, third = ctx.children
    assert (first.retry, first.delay, first.max_attempts) == (FIXED, 5, 5)
    assert (second.retry, second.run_at) == (FIXED, datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert third.retry is None
    with pytest.raises(InvalidInput, match="delay"):
        ctx.spawn("fetch", delay=-1)
    with pytest.raises(InvalidInput, match="naive"):
        ctx.spawn("fetch", run_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidInput, match=r"retry\.factor"):
        registry.handler("bad", retry={"backoff": "exponential", "factor": 50})
    assert len(ctx.children) == 3


def test_handle_submit_passes_the_timing_to_its_client() -> None:
    seen: list[dict[str, Any]] = []

    class Client:
        def submit(self, job_type: str, payload: Any = None, **kw: Any) -> Job:
            seen.append(kw)
            return Job(id=new_job_id(), type=job_type)

    registry = Registry()
    handle = registry.handler("t", retry=Backoff(base=2))(lambda p, c: None)
    handle.submit(1, client=Client(), delay=30)
    handle.submit(2, client=Client(), run_at=1_900_000_000)
    assert seen[0]["delay"] == 30 and seen[0]["retry"]["base"] == 2.0
    assert "run_at" not in seen[0]
    assert seen[1]["run_at"] == 1_900_000_000.0 and "delay" not in seen[1]


def test_moments_are_epoch_seconds_or_carry_their_zone() -> None:
    assert epoch_seconds(12.5) == 12.5
    assert epoch_seconds("2026-12-24T18:00:00Z") == 1798135200.0
    assert epoch_seconds("2026-12-24T19:00:00+01:00") == 1798135200.0
    assert epoch_seconds("1798135200") == 1798135200.0
    assert epoch_seconds(datetime(2026, 12, 24, 18, tzinfo=UTC)) == 1798135200.0
    for bad in ("2026-12-24T18:00:00", "tomorrow", "nan", -1, True, [1]):
        with pytest.raises(InvalidInput, match="run_at"):
            epoch_seconds(bad)


def test_a_submission_due_later_is_scheduled_and_cancel_leaves_it_cancelled(
    cluster: MemoryCluster,
) -> None:
    store = cluster.store("client")
    job = store.submit(JobSpec("t", 1, delay=3600, retry=FIXED))
    assert job.state == JobState.SCHEDULED and job.retry == FIXED
    assert job.run_at is not None
    assert store.session.exists(cluster.layout.scheduled_entry(job.run_at, job.id))
    assert store.cancel(job.id).state == JobState.CANCELLED


def test_a_batch_for_later_spread_over_many_due_ticks_is_written(
    cluster: MemoryCluster,
) -> None:
    store = cluster.store("client")
    now = time.time()
    specs = [JobSpec("t", n, run_at=now + 3600 + 977 * n) for n in range(40)]
    jobs = store.submit_many(specs)
    assert {j.state for j in jobs} == {JobState.SCHEDULED}
    leaves = {cluster.layout.scheduled_leaf(j.run_at or 0.0, j.id) for j in jobs}
    assert len(leaves) > 10  # more than commit's repair would make in one go
    for job in jobs:
        assert store.session.exists(cluster.layout.scheduled_entry(job.run_at or 0.0, job.id))


def test_a_child_spawned_for_later_is_made_scheduled_with_the_parents_success(
    cluster: MemoryCluster,
) -> None:
    client, worker = cluster.store("client"), cluster.store("worker")
    cluster.register(worker.session, "w1", slots=1)
    registry = Registry()

    def parent(payload: Any, ctx: JobContext) -> str:
        ctx.spawn("t", "later", delay=600, retry=Backoff.fixed(5))
        return "ok"

    registry.add("t", parent)
    pipeline = Pipeline(
        worker,
        ThreadPool(registry),
        1,
        WorkerMetrics(1, lambda: 0),
        generation=lambda: 0,
        release=lambda *_: None,
    )
    pipeline.start()
    try:
        [job] = client.submit_many([JobSpec("t", "now")])
        read = client.get_many([job.id])
        client.assign_many([(j, v, "w1") for j, v in read.values()])
        pipeline.offer([Assignment(*worker.get_versioned(job.id), "w1", generation=0)])
        wait_until(lambda: client.get(job.id).terminal, 10, what="the parent to end")
        done = client.get(job.id)
        assert done.state == JobState.SUCCEEDED and len(done.children) == 1
        child = client.get(done.children[0])
        assert child.state == JobState.SCHEDULED and child.scheduled_for == "delay"
        assert child.run_at is not None and child.run_at >= (done.finished_at or 0) + 600
        assert child.retry == {"backoff": "fixed", "delay": 5.0}
        assert worker.session.exists(cluster.layout.scheduled_entry(child.run_at, child.id))
    finally:
        wait_until(lambda: pipeline.outstanding == 0, 10, what="the pipeline to empty")
        pipeline.stop()
