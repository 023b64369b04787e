"""Revocations that race the pools: a revoke while a slot's child is still starting, two
attempts of one job on one worker, a handler's leftover thread renewing, a drain beside a
lost slot, and many retries waiting out their backoffs in one group commit."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.memory_support import MemoryCluster
from tests.unit.test_pool_stops import Clock, FakeChild
from zkq.coordinator.client import Client
from zkq.coordinator.fenced import Fenced, FencedWriter
from zkq.coordinator.job import JobSpec, JobState
from zkq.coordinator.service import Coordinator
from zkq.dev.waiting import wait_until
from zkq.worker.control import CANCELLED, LEASE, AttemptControl
from zkq.worker.pools import Outcome, StopPolicy, ThreadPool
from zkq.worker.process_slots import ProcessSlots
from zkq.worker.registry import JobContext, Registry
from zkq.worker.service import Worker


def test_a_revoke_while_the_slots_child_starts_stops_the_attempt_before_it_runs() -> None:
    clock, spawning, children = Clock(), threading.Event(), []

    def spawn() -> FakeChild:
        spawning.set()
        time.sleep(0.3)  # a fresh child importing the app
        child = FakeChild(clock, "ignore", "ignore", revoke=lambda: None)  # would hang
        children.append(child)
        return child

    pool = ProcessSlots(Registry(), None, 1, StopPolicy(1, 1), spawn=spawn, clock=clock)
    control = AttemptControl("j1", 30)
    out: list[Outcome] = []
    ctx = JobContext("j1", "t", 1, 1, control=control)
    runner = threading.Thread(target=lambda: out.append(pool.run("t", None, ctx)), daemon=True)
    runner.start()
    spawning.wait(5)
    control.cancel(CANCELLED)  # what the pipeline does, then tells the pool
    pool.revoke("j1", CANCELLED)
    runner.join(5)
    assert out and out[0].error is not None and out[0].error["end"] == "returned"
    assert not children[0].inbox and not children[0].signals  # the job was never sent


def test_a_thread_attempt_revoked_before_it_is_registered_never_runs() -> None:
    ran: list[int] = []
    registry = Registry()
    registry.add("t", lambda payload, ctx: ran.append(1))
    pool = ThreadPool(registry, StopPolicy(0.05, 0.05))
    control = AttemptControl("j1", 30)
    control.cancel(LEASE)
    outcome = pool.run("t", None, JobContext("j1", "t", 1, 1, control=control))
    assert not ran and outcome.error is not None and outcome.error["type"] == "LeaseLost"


def test_the_end_of_an_old_attempt_does_not_unhook_the_next_attempt_of_the_same_job() -> None:
    old, new = threading.Event(), threading.Event()
    registry = Registry()

    def handler(payload: str, ctx: JobContext) -> str:
        (old if payload == "old" else new).wait()
        return payload

    registry.add("t", handler)
    pool = ThreadPool(registry, StopPolicy(0.05, 0.05))
    out: list[Outcome] = []
    first = JobContext("X", "t", 1, 3, control=AttemptControl("X", 30))
    t1 = threading.Thread(target=lambda: out.append(pool.run("t", "old", first)))
    t1.start()
    wait_until(lambda: "X" in pool._running, 5)
    pool.revoke("X", LEASE)
    wait_until(lambda: pool.lost_slots == 1, 5)
    # taken back and given to this worker again: attempt 2 in another slot
    second = JobContext("X", "t", 2, 3, control=AttemptControl("X", 30))
    t2 = threading.Thread(target=lambda: out.append(pool.run("t", "new", second)))
    t2.start()
    wait_until(lambda: pool._running.get("X") is not None and pool.lost_slots == 1, 5)
    time.sleep(0.1)
    old.set()  # the lost slot comes back
    t1.join(5)
    pool.revoke("X", CANCELLED)  # a cancel of attempt 2 must still reach it
    new.set()
    t2.join(5)
    assert out[-1].error is not None and out[-1].error["reason"] == CANCELLED


def test_a_renewal_from_a_previous_jobs_thread_does_not_renew_the_next_job() -> None:
    clock = Clock()
    renewals: list[float] = []

    class Straggler(FakeChild):
        def send_job(self, message: tuple[Any, ...]) -> None:
            # a thread the previous job left behind renews, then this job just runs
            self.inbox.append(("hb", ("previous-job", 999.0)))
            self.inbox.append(("done", Outcome(ok=True, result=1)))

    pool = ProcessSlots(
        Registry(),
        None,
        1,
        StopPolicy(1, 1),
        spawn=lambda: Straggler(clock, "x", "x"),
        clock=clock,
    )
    control = AttemptControl("j2", 30, renewals.append)
    pool.run("t", None, JobContext("j2", "t", 1, 1, control=control))
    assert renewals == []


def test_a_drain_beside_a_lost_slot_waits_for_the_healthy_attempt() -> None:
    cluster = MemoryCluster()

    def session(name: str) -> Any:
        s = cluster.zk.session(cluster.config.zk, name)
        cluster.sessions.append(s)
        return s

    forever, slow_go = threading.Event(), threading.Event()
    registry = Registry()
    registry.add("hang", lambda payload, ctx: forever.wait())
    registry.add("slow", lambda payload, ctx: slow_go.wait(30) and "done")
    coordinator = Coordinator(cluster.config, "leader", session=session("c"))
    worker = Worker(
        cluster.config,
        registry,
        concurrency=2,
        prefetch=0,
        session=session("w"),
        policy=StopPolicy(cancel_grace=0.1, kill_grace=0.1),
        max_lost_slots=1,
    )
    threads = [threading.Thread(target=s.run, daemon=True) for s in (coordinator, worker)]
    client = Client(cluster.config, session=session("client"))
    try:
        for thread in threads:
            thread.start()
        client.start()
        slow, hang = client.submit("slow", None), client.submit("hang", None)
        wait_until(lambda: {client.get(j.id).state for j in (slow, hang)} == {JobState.RUNNING}, 30)
        client.cancel(hang.id)
        wait_until(lambda: worker.restart_wanted and worker.pool.lost_slots == 1, 30)
        time.sleep(0.5)
        # lost slot or not, the drain waits for the healthy attempt to be recorded
        assert threads[1].is_alive() and client.get(slow.id).state == JobState.RUNNING
        slow_go.set()
        threads[1].join(30)
        assert not threads[1].is_alive()
        assert client.get(slow.id).state == JobState.SUCCEEDED
    finally:
        slow_go.set()
        coordinator.stop()
        forever.set()
        client.close()
        cluster.close()


def test_many_retries_into_many_due_seconds_commit_in_one_group() -> None:
    cluster = MemoryCluster()
    store = cluster.store("w")
    cluster.register(store.session, "w1", slots=64)
    jobs = store.submit_many([JobSpec("t", n, max_attempts=3) for n in range(20)])
    store.assign_many([(*store.get_versioned(j.id), "w1") for j in jobs])
    writer = FencedWriter(store)
    started = [cluster.start(store, "w1", j.id) for j in jobs]
    error = {"type": "E", "message": "down"}
    steps = [
        (job, v, writer.fail_step(job, v, "w1", error, delay=5 + 1.1 * n))
        for n, (job, v) in enumerate(started)
    ]
    out = writer.commit_many(steps)
    assert not [o for o in out if isinstance(o, Fenced)]
    assert {store.get(j.id).state for j in jobs} == {JobState.SCHEDULED}
    cluster.close()
