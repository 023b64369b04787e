"""A process slot stops handlers that do not stop by themselves: real children, signalled
as the escalation says, gone afterwards, and the slot serves the next job."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.apps import stoppable
from zkq.dev.waiting import wait_until
from zkq.worker.control import CANCELLED, LEASE, AttemptControl
from zkq.worker.pools import Outcome, StopPolicy
from zkq.worker.process_slots import ProcessSlots
from zkq.worker.registry import JobContext


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose; only its parent can reap it
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pool():
    ended: list[tuple[str, str]] = []
    slots = ProcessSlots(
        stoppable.registry,
        "tests.apps.stoppable:registry",
        1,
        StopPolicy(cancel_grace=0.5, kill_grace=5.0),  # roomy: a loaded machine
        on_revoked=lambda reason, end, _s: ended.append((reason, end)),
    )
    slots.ended = ended  # type: ignore[attr-defined]
    yield slots
    slots.shutdown(wait=False)


def stop(pool: ProcessSlots, job_type: str, reason: str, tmp_path: Path) -> tuple[Outcome, int]:
    pidfile = tmp_path / f"{job_type}.pid"
    ctx = JobContext("j1", job_type, 1, 1, control=AttemptControl("j1", 300))
    outcomes: list[Outcome] = []
    runner = threading.Thread(
        target=lambda: outcomes.append(pool.run(job_type, {"pidfile": str(pidfile)}, ctx))
    )
    runner.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=60)
    pid = int(pidfile.read_text())
    ctx.control.cancel(reason)  # type: ignore[union-attr]
    pool.revoke("j1", reason)
    runner.join(60)
    assert not runner.is_alive()
    return outcomes[0], pid


def serves_a_noop(pool: ProcessSlots, old_pid: int) -> None:
    ctx = JobContext("j2", "noop", 1, 1, control=AttemptControl("j2", 300))
    outcome = pool.run("noop", None, ctx)
    assert outcome.ok, outcome.error
    assert outcome.result != old_pid  # a new child: a signalled one is never reused


@pytest.mark.parametrize(
    ("job_type", "reason", "end", "error"),
    [
        ("sleeps", LEASE, "sigterm", "LeaseLost"),
        ("spins-in-c", LEASE, "sigkill", "LeaseLost"),
        ("ignores-term", CANCELLED, "sigkill", "Cancelled"),
    ],
)
def test_a_handler_that_does_not_return_is_stopped(
    pool: ProcessSlots, tmp_path: Path, job_type: str, reason: str, end: str, error: str
) -> None:
    outcome, pid = stop(pool, job_type, reason, tmp_path)
    assert outcome.error is not None
    assert (outcome.error["type"], outcome.error["end"]) == (error, end)
    assert pool.ended == [(reason, end)]  # type: ignore[attr-defined]
    assert not alive(pid)
    serves_a_noop(pool, pid)


def test_a_child_that_dies_fails_its_attempt_and_only_its_slot_is_refilled(
    pool: ProcessSlots, tmp_path: Path
) -> None:
    first = pool.run("noop", None, JobContext("j0", "noop", 1, 1))
    assert first.ok
    pidfile = tmp_path / "sleeps.pid"
    ctx: Any = JobContext("j1", "sleeps", 1, 1, control=AttemptControl("j1", 300))
    outcomes: list[Outcome] = []
    runner = threading.Thread(
        target=lambda: outcomes.append(pool.run("sleeps", {"pidfile": str(pidfile)}, ctx))
    )
    runner.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=60)
    os.kill(int(pidfile.read_text()), 9)  # as the OOM killer would
    runner.join(60)
    assert outcomes[0].error is not None and outcomes[0].error["type"] == "WorkerProcessDied"
    assert pool.ended == []  # type: ignore[attr-defined]
    serves_a_noop(pool, first.result)
