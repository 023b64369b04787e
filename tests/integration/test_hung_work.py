"""Hung handlers end at their lease, and cancel stops running work: the whole path, on real
processes.  The leader takes an attempt back at its lease (or a client cancels it), the
worker sees its claim go (:mod:`zkq.worker.leases`), and its pool stops the handler
(:mod:`zkq.worker.process_slots`, :mod:`zkq.worker.pools`).

What is asserted are outcomes and orders (the record's state, that a process is gone, how
the pool ended it, that the slot serves again), never a duration: every wait is a generous
deadline on a condition."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import Job, JobState
from zkq.dev import processes
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

ZKQ = str(Path(sys.executable).with_name("zkq"))
REPO = Path(__file__).resolve().parents[2]
APP = "tests.apps.stoppable:registry"


@dataclass
class Stack:
    client: Client
    worker: ManagedProcess
    tmp: Path

    def pidfile(self, name: str) -> str:
        return str(self.tmp / f"{name}.pid")

    def registration(self) -> dict[str, Any]:
        assert self.worker.alive(), self.worker.log_tail()
        (mine,) = [w for w in self.client.workers() if w["pid"] == self.worker.pid]
        return mine

    def wait_job(self, job_id: str, states: set[JobState], what: str) -> Job:
        def there() -> Job | None:
            job = self.client.get(job_id)
            return job if job.state in states else None

        found = wait_until(there, 90, interval=0.1, what=what)
        assert found is not None
        return found


@contextmanager
def stack(ensemble: ZooKeeperEnsemble, tmp_path: Path, *worker_args: str) -> Iterator[Stack]:
    """One coordinator and one worker of the stoppable app, under a root of their own."""
    root = f"/hung-{uuid.uuid4().hex[:8]}"
    zk = ["--zk", ensemble.connect_string, "--root", root, "--session-timeout", "4"]
    started: list[ManagedProcess] = []
    client = Client(ClusterConfig.load({}, hosts=ensemble.connect_string, root=root))
    try:
        started.append(
            processes.start(
                ProcessSpec("coordinator", [ZKQ, "coordinator", *zk], tmp_path / "c.log", cwd=REPO)
            )
        )
        argv = [ZKQ, "worker", *zk, "--app", APP, *worker_args]
        worker = processes.start(ProcessSpec("worker", argv, tmp_path / "w.log", cwd=REPO))
        started.append(worker)
        client.start()
        built = Stack(client, worker, tmp_path)
        wait_until(
            lambda: [w for w in client.workers() if w["pid"] == worker.pid],
            90,
            interval=0.2,
            what="the worker registered",
        )
        yield built
    finally:
        client.close()
        processes.stop_all(started, timeout=15)


def pid_of(path: str) -> int:
    return int(wait_until(lambda: os.path.exists(path) and Path(path).read_text(), 60))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie is gone for our purpose, until its parent reaps it
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


def test_hung_handlers_in_a_process_pool_end_at_their_lease_and_their_slots_serve_again(
    ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    with stack(ensemble, tmp_path, "--pool", "process", "-c", "2", "--kill-grace", "2") as s:
        sleeps = s.client.submit(
            "sleeps", {"pidfile": s.pidfile("sleeps")}, timeout=3, max_attempts=1
        )
        spins = s.client.submit(
            "spins-in-c", {"pidfile": s.pidfile("spins")}, timeout=3, max_attempts=1
        )
        sleeper, spinner = pid_of(s.pidfile("sleeps")), pid_of(s.pidfile("spins"))
        for job in (sleeps, spins):
            dead = s.wait_job(job.id, {JobState.DEAD, JobState.FAILED}, "taken back at its lease")
            assert dead.tries()[-1].outcome == "timeout"
        wait_until(lambda: gone(sleeper) and gone(spinner), 60, what="both handlers ended")
        # a handler in time.sleep dies of SIGTERM's exception; one in C code holding the GIL
        # never runs a Python signal handler, so it takes the SIGKILL after the grace (the
        # pool says so once it has reaped the child, just after it is gone)
        wait_until(
            lambda: all(f"by {end}" in s.worker.log_tail(400) for end in ("sigterm", "sigkill")),
            30,
            what="the pool's word on how each handler ended",
        )
        assert s.worker.log_tail(400).count("handler stopped (lease)") >= 2
        # the slots were refilled: two jobs at once, each in a process of its own
        done = [s.client.submit("noop", None) for _ in range(4)]
        results = [s.wait_job(j.id, {JobState.SUCCEEDED}, "a noop after the hang") for j in done]
        assert {r.result for r in results} - {sleeper, spinner} == {r.result for r in results}
        assert s.registration().get("lost_slots", 0) == 0


def test_a_hang_in_a_thread_pool_is_reported_as_a_lost_slot(
    ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    with stack(
        ensemble,
        tmp_path,
        *("--pool", "thread", "-c", "2", "--prefetch", "0"),
        *("--kill-grace", "1", "--max-lost-slots", "2"),
    ) as s:
        hung = s.client.submit("blocks", None, timeout=2, max_attempts=1)
        s.wait_job(hung.id, {JobState.DEAD, JobState.FAILED}, "taken back at its lease")
        wait_until(
            lambda: s.registration().get("lost_slots") == 1, 60, what="the lost slot reported"
        )
        assert "did not stop (lease): its slot is lost" in s.worker.log_tail(400)
        # the slot left still serves
        ok = s.client.submit("noop", None)
        s.wait_job(ok.id, {JobState.SUCCEEDED}, "a noop beside the lost slot")


@pytest.mark.parametrize(
    ("job_type", "ended_by"), [("sleeps", "by sigterm"), ("ignores-term", "by sigkill")]
)
def test_cancel_stops_a_running_handler_in_a_process_pool(
    ensemble: ZooKeeperEnsemble, tmp_path: Path, job_type: str, ended_by: str
) -> None:
    with stack(
        ensemble,
        tmp_path,
        *("--pool", "process", "-c", "1", "--cancel-grace", "1", "--kill-grace", "1"),
    ) as s:
        job = s.client.submit(job_type, {"pidfile": s.pidfile(job_type)}, timeout=600)
        pid = pid_of(s.pidfile(job_type))
        s.wait_job(job.id, {JobState.RUNNING}, "running")
        # the record says cancelled at once; the handler is stopped after its graces
        assert s.client.cancel(job.id).state == JobState.CANCELLED
        wait_until(lambda: gone(pid), 60, what="the cancelled handler ended")
        wait_until(
            lambda: (
                "handler stopped (cancelled)" in s.worker.log_tail(400)
                and ended_by in s.worker.log_tail(400)
            ),
            30,
            what=f"the pool's word that the handler ended {ended_by}",
        )
        assert s.client.get(job.id).state == JobState.CANCELLED  # its end was fenced
        ok = s.client.submit("noop", None)
        assert s.wait_job(ok.id, {JobState.SUCCEEDED}, "the slot serves again").result != pid
