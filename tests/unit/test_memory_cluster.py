"""A whole cluster in one process on the in-memory ZooKeeper: a real :class:`Coordinator`,
two :class:`Worker` services and a :class:`Client`, each with its own session on one tree,
as separate processes would have on one ensemble."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.memory_support import MemoryCluster
from zkq.cli import waited
from zkq.coordinator.client import Client
from zkq.coordinator.errors import WaitTimeout, ZkqError
from zkq.coordinator.job import JobState
from zkq.coordinator.service import Coordinator
from zkq.coordinator.store import JobSpec
from zkq.coordinator.zk.memory_session import MemorySession
from zkq.dev.waiting import wait_until
from zkq.worker.registry import JobContext, Registry
from zkq.worker.service import Worker

gate = threading.Event()
registry = Registry()


@registry.handler("echo")
def echo(payload: Any, _ctx: JobContext) -> Any:
    return payload


@registry.handler("boom", max_attempts=2)
def boom(_payload: Any, _ctx: JobContext) -> None:
    raise RuntimeError("boom")


@registry.handler("parent")
def parent(payload: int, ctx: JobContext) -> str:
    for n in range(payload):
        ctx.spawn("echo", n)
    return "spawned"


@registry.handler("not-json")
def not_json(_payload: Any, _ctx: JobContext) -> Any:
    return {"ratio": float("nan")}  # json.dumps writes NaN; no JSON reader takes it


@registry.handler("held")
def held(_payload: Any, _ctx: JobContext) -> str:
    assert gate.wait(10)
    return "released"


class Running:
    """Services started on threads, stopped (and joined) at the end."""

    def __init__(self, cluster: MemoryCluster) -> None:
        self.cluster = cluster
        self.coordinator = Coordinator(cluster.config, "leader", session=self._session("c"))
        self.workers = [
            Worker(cluster.config, registry, concurrency=2, session=self._session(f"w{n}"))
            for n in range(2)
        ]
        services: list[Coordinator | Worker] = [self.coordinator, *self.workers]
        self.threads = [threading.Thread(target=service.run, daemon=True) for service in services]
        self.client = Client(cluster.config, session=self._session("client"))

    def _session(self, name: str) -> Any:
        session = self.cluster.zk.session(self.cluster.config.zk, name)
        self.cluster.sessions.append(session)
        return session

    def __enter__(self) -> Running:
        for thread in self.threads:
            thread.start()
        self.client.start()
        wait_until(self.coordinator.leading.is_set, 10, what="a leader")
        return self

    def __exit__(self, *_exc: object) -> None:
        gate.set()
        for worker in self.workers:
            worker.drain()
        self.coordinator.stop()
        for thread in self.threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in self.threads), "a service kept running"
        self.client.close()


@pytest.fixture
def running(cluster: MemoryCluster) -> Iterator[Running]:
    gate.clear()
    with Running(cluster) as r:
        yield r


def test_jobs_run_to_the_end_through_coordinator_and_workers(running: Running) -> None:
    client = running.client
    echoes = client.submit_many([JobSpec("echo", n) for n in range(20)])
    failing = client.submit("boom", max_attempts=2)
    spawner = client.submit("parent", 3)
    done = [client.wait(job.id, 10) for job in echoes]
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 20
    assert [job.result for job in done] == list(range(20))
    dead = client.wait(failing.id, 10)
    assert dead.state == JobState.DEAD and [a.outcome for a in dead.history] == ["error"] * 2
    grown = client.wait(spawner.id, 10)
    assert grown.state == JobState.SUCCEEDED and len(grown.children) == 3
    children = [client.wait(c, 10) for c in grown.children]
    assert [c.state for c in children] == [JobState.SUCCEEDED] * 3
    assert sorted(c.result for c in children) == [0, 1, 2]


def test_wait_raises_on_timeout_with_the_record_as_it_was(running: Running) -> None:
    # A pending record returned as if it were the final one is what callers mistook for a
    # result: a timeout must be an exception that carries the record, never a return.
    client = running.client
    job = client.submit("nobody-serves-this")
    with pytest.raises(WaitTimeout, match="still pending") as raised:
        client.wait(job.id, 0.2)
    assert isinstance(raised.value, TimeoutError) and isinstance(raised.value, ZkqError)
    assert raised.value.job is not None
    assert raised.value.job.id == job.id and raised.value.job.state == JobState.PENDING
    # `zkq submit --wait` shows that record instead (and exits non-zero: not succeeded)
    shown = waited(client, job.id, 0.2)
    assert shown.id == job.id and shown.state == JobState.PENDING
    # and so with a condition of the caller's that never holds
    done = client.wait(client.submit("echo", 1).id, 10)
    assert done.state == JobState.SUCCEEDED
    with pytest.raises(WaitTimeout) as raised:
        client.wait(done.id, 0.2, until=lambda j: j.state == JobState.RUNNING)
    assert raised.value.job is not None and raised.value.job.state == JobState.SUCCEEDED


def test_a_result_that_is_not_json_fails_the_attempt_instead_of_being_stored(
    running: Running,
) -> None:
    done = running.client.wait(running.client.submit("not-json").id, 10)
    assert done.state == JobState.FAILED and done.result is None
    assert done.error is not None and "result['ratio'] is nan" in done.error["message"]


def test_a_job_of_a_worker_whose_session_expires_runs_again_elsewhere(
    running: Running,
) -> None:
    client = running.client
    job = client.submit("held", max_attempts=2)
    first = client.wait(job.id, 10, until=lambda j: j.state == JobState.RUNNING)
    owner = next(w for w in running.workers if w.worker_id == first.worker)
    assert isinstance(owner.session, MemorySession)
    running.cluster.zk.expire(owner.session)  # the worker re-registers under a new id
    # the leader takes it back; it may run again at once (and wait at the gate as well)
    lost = client.wait(job.id, 10, until=lambda j: j.history[0].outcome == "lost")
    assert lost.history[0].outcome == "lost"
    gate.set()  # the first attempt returns too: its completion is refused
    done = client.wait(job.id, 10)
    assert done.state == JobState.SUCCEEDED
    assert [a.outcome for a in done.history] == ["lost", "requeued", "succeeded"]
    assert [a.number for a in done.history] == [1, None, 2]
    assert done.history[0].worker == first.worker != done.history[2].worker
    assert done.worker == done.history[2].worker  # the worker that finished it
