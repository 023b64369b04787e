"""How pools stop a revoked attempt: the escalation order of a process slot (a fake child on
a fake clock) and the lost-slot accounting of a thread pool."""

from __future__ import annotations

import signal
import threading
from collections import deque
from typing import Any

from zkq.dev.waiting import wait_until
from zkq.worker.control import CANCELLED, LEASE, AttemptControl
from zkq.worker.pools import Outcome, StopPolicy, ThreadPool
from zkq.worker.process_slots import ProcessSlots
from zkq.worker.registry import JobContext, Registry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeChild:
    """``on_cancel``/``on_term`` say what the handler does when told to stop: "return" (it
    sends its outcome) or "ignore".  Every poll advances the clock by its timeout."""

    def __init__(self, clock: Clock, on_cancel: str, on_term: str, revoke: Any = None) -> None:
        self.pid = 4242
        self.clock = clock
        self.on_cancel = on_cancel
        self.on_term = on_term
        self.revoke = revoke  # called once the job is in: the revocation arrives mid-run
        self.inbox: deque[tuple[str, Any]] = deque()
        self.dead = False
        self.signals: list[tuple[float, int]] = []
        self.retired = False

    def send_job(self, message: tuple[Any, ...]) -> None:
        self.inbox.append(("hb", (message[2].job_id, 30.0)))
        if self.revoke is not None:
            self.revoke()
        else:  # not revoked: it just finishes
            self.inbox.append(("done", Outcome(ok=True, result=self.pid)))

    def send_cancel(self, job_id: str, reason: str) -> None:
        if self.on_cancel == "return":
            self.inbox.append(("done", Outcome(ok=True, result="stopped")))

    def poll(self, timeout: float) -> bool:
        if self.inbox or self.dead:
            return True
        self.clock.now += timeout
        return False

    def recv(self) -> tuple[str, Any]:
        if self.inbox:
            return self.inbox.popleft()
        raise EOFError

    def signal(self, signum: int) -> None:
        self.signals.append((self.clock.now, signum))
        if signum == signal.SIGKILL or self.on_term == "return":
            self.dead = signum == signal.SIGKILL
            if signum == signal.SIGTERM:
                self.inbox.append(("done", Outcome(ok=False, error={"type": "LeaseLost"})))

    def reap(self, timeout: float) -> int | None:
        return -9 if self.dead else 0

    def retire(self) -> None:
        self.retired = True


def run_revoked(reason: str, on_cancel: str, on_term: str) -> tuple[FakeChild, Outcome, list]:
    clock = Clock()
    ended: list[tuple[str, str]] = []
    children: list[FakeChild] = []
    pool: ProcessSlots

    def spawn() -> FakeChild:
        child = FakeChild(clock, on_cancel, on_term, revoke=lambda: pool.revoke("j1", reason))
        children.append(child)
        return child

    pool = ProcessSlots(
        Registry(),
        None,
        1,
        StopPolicy(cancel_grace=5, kill_grace=7),
        on_revoked=lambda r, end, _s: ended.append((r, end)),
        spawn=spawn,
        clock=clock,
    )
    beats: list[float] = []
    ctx = JobContext("j1", "t", 1, 1, control=AttemptControl("j1", 30, beats.append))
    outcome = pool.run("t", None, ctx)
    assert beats == [30.0]  # the child's renewal reached the attempt's control
    pool.shutdown()
    return children[0], outcome, ended


def test_a_cooperative_child_is_never_signalled_and_is_reused() -> None:
    child, outcome, ended = run_revoked(CANCELLED, on_cancel="return", on_term="ignore")
    assert child.signals == []
    assert ended == [(CANCELLED, "returned")]
    assert outcome.error is not None and outcome.error["type"] == "Cancelled"
    assert child.retired  # given back to the pool, then let go at its shutdown


def test_cancel_waits_its_grace_then_sigterm_then_sigkill() -> None:
    child, outcome, ended = run_revoked(CANCELLED, on_cancel="ignore", on_term="ignore")
    assert [s for _, s in child.signals] == [signal.SIGTERM, signal.SIGKILL]
    (term_at, _), (kill_at, _) = child.signals
    assert term_at >= 5 and kill_at - term_at >= 7
    assert ended == [(CANCELLED, "sigkill")]
    assert outcome.error is not None and outcome.error["end"] == "sigkill"
    assert not child.retired  # a signalled child is never reused


def test_a_lease_is_ended_by_sigterm_at_once() -> None:
    child, outcome, ended = run_revoked(LEASE, on_cancel="ignore", on_term="return")
    assert child.signals[0] == (0.0, signal.SIGTERM)
    # it returned after SIGTERM: killed anyway, never reused
    assert [s for _, s in child.signals] == [signal.SIGTERM, signal.SIGKILL]
    assert ended == [(LEASE, "sigterm")]
    assert outcome.error is not None and outcome.error["type"] == "LeaseLost"


def test_a_thread_slot_that_does_not_stop_is_lost_until_it_returns() -> None:
    release = threading.Event()
    registry = Registry()
    registry.add("hang", lambda _payload, _ctx: release.wait())  # blocked in C: no async exc
    lost_counts: list[int] = []
    ended: list[tuple[str, str]] = []
    pool = ThreadPool(
        registry,
        StopPolicy(cancel_grace=0.05, kill_grace=0.05),
        on_revoked=lambda r, end, _s: ended.append((r, end)),
        on_lost=lost_counts.append,
    )
    control = AttemptControl("j1", 30)
    ctx = JobContext("j1", "hang", 1, 1, control=control)
    outcomes: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcomes.append(pool.run("hang", None, ctx)))
    runner.start()
    wait_until(lambda: "j1" in pool._running, timeout=10)
    control.cancel(CANCELLED)
    pool.revoke("j1", CANCELLED)
    wait_until(lambda: lost_counts == [1], timeout=10)  # said once it is counted
    assert pool.lost_slots == 1 and ended == [(CANCELLED, "lost")]
    assert outcomes == []  # run() has not returned: the pipeline counts the slot busy
    release.set()
    runner.join(10)
    assert pool.lost_slots == 0 and lost_counts == [1, 0]
    (outcome,) = outcomes
    assert outcome.error is not None and outcome.error["type"] == "Cancelled"  # result dropped


def test_a_thread_slot_in_python_code_is_stopped_by_the_async_exception() -> None:
    registry = Registry()

    def spin(_payload: Any, _ctx: JobContext) -> None:
        while True:
            pass

    registry.add("spin", spin)
    ended: list[tuple[str, str]] = []
    pool = ThreadPool(
        registry, StopPolicy(kill_grace=30), on_revoked=lambda r, e, _s: ended.append((r, e))
    )
    ctx = JobContext("j1", "spin", 1, 1, control=AttemptControl("j1", 30))
    outcomes: list[Outcome] = []
    runner = threading.Thread(
        target=lambda: outcomes.append(pool.run("spin", None, ctx)), daemon=True
    )
    runner.start()
    wait_until(lambda: "j1" in pool._running, timeout=10)
    pool.revoke("j1", LEASE)
    runner.join(20)
    assert ended == [(LEASE, "async_exc")] and pool.lost_slots == 0
    assert outcomes[0].error is not None and outcomes[0].error["type"] == "LeaseLost"


def test_a_child_is_recycled_after_max_tasks_per_child() -> None:
    clock = Clock()
    children: list[FakeChild] = []

    def spawn() -> FakeChild:
        children.append(FakeChild(clock, "return", "return"))
        children[-1].pid = len(children)
        return children[-1]

    pool = ProcessSlots(
        Registry(), None, 1, StopPolicy(max_tasks_per_child=2), spawn=spawn, clock=clock
    )
    results = [pool.run("t", None, JobContext(f"j{n}", "t", 1, 1)).result for n in range(3)]
    assert results == [1, 1, 2]
    assert children[0].retired and not children[1].retired
    assert all(not child.signals for child in children)
