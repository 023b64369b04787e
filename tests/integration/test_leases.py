"""Leases and revocation against the session's real ensemble: a coordinator and a worker
(one thread slot) in this process, under a root of their own, serving the cooperative
handlers of tests/apps/leases.py.  A handler that renews its lease runs far past its timeout
in one attempt; one that does not is taken back at its timeout and learns it; a cancel of a
running job reaches its handler, and the slot serves the next job."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.apps.leases import polite, quick, registry, renewing
from zkq.cli import main
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.lease import parse_lease
from zkq.coordinator.service import Coordinator
from zkq.coordinator.zk import NoNode
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.worker.registry import Handler
from zkq.worker.service import Worker

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    config: ClusterConfig
    client: Client
    connect: str


@pytest.fixture(scope="module")
def stack(ensemble: ZooKeeperEnsemble) -> Iterator[Stack]:
    config = ClusterConfig.load(
        {}, hosts=ensemble.connect_string, root=f"/leases-{uuid.uuid4().hex[:8]}"
    )
    coordinator = Coordinator(config, "leases-c")
    worker = Worker(config, registry, concurrency=1, prefetch=0)
    threads = [threading.Thread(target=s.run, daemon=True) for s in (coordinator, worker)]
    for thread in threads:
        thread.start()
    client = Client(config)
    client.start()
    try:
        wait_until(coordinator.leading.is_set, 60, what="a leader")
        yield Stack(config, client, ensemble.connect_string)
    finally:
        client.close()
        worker.drain()
        coordinator.stop()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a service kept running"


def submit(stack: Stack, handler: Handler[Any], payload: Any) -> Job:
    """A job with the handler's declared defaults (timeout, attempts)."""
    return stack.client.submit_many([handler.spec(payload)])[0]


def ended(stack: Stack, job: Job, within: float = 60) -> Job:
    return stack.client.wait(job.id, within)


def lease_of(stack: Stack, job: Job) -> float | None:
    try:
        raw, _ = stack.client.store.session.get(stack.config.zk.layout.claim(job.id))
    except NoNode:
        return None
    return parse_lease(raw).seconds


def marker(tmp_path: Path) -> Path:
    return tmp_path / f"marker-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("mode", ["extend", "beat"])
def test_a_handler_that_renews_runs_past_its_timeout_in_one_attempt(
    stack: Stack, mode: str
) -> None:
    job = submit(stack, renewing, {"mode": mode, "seconds": 6})
    done = ended(stack, job)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.attempts == 1 and [str(a.outcome) for a in done.tries()] == ["succeeded"]


def test_a_handler_that_does_not_renew_is_taken_back_and_learns_it(
    stack: Stack, tmp_path: Path
) -> None:
    seen = marker(tmp_path)
    job = submit(stack, polite, {"marker": str(seen)})
    done = ended(stack, job)
    assert done.state == JobState.DEAD and [str(a.outcome) for a in done.tries()] == ["timeout"]
    wait_until(seen.exists, 30, what="the handler to see its attempt taken back")
    assert seen.read_text() == "lease LeaseLost"


def test_a_cancel_reaches_the_running_handler_and_the_slot_serves_the_next_job(
    stack: Stack, tmp_path: Path
) -> None:
    seen = marker(tmp_path)
    # renews far ahead, so that only the cancel can stop it
    job = submit(stack, polite, {"marker": str(seen), "renew": 600})
    # running, and its renewal written: from now on only the claim's watch can tell it
    wait_until(lambda: lease_of(stack, job) == 600, 60, what="the job to run and renew")
    env = {"ZKQ_ZK_HOSTS": stack.connect, "ZKQ_ROOT": stack.config.zk.root}
    result = CliRunner(env=env).invoke(main, ["cancel", job.id, "--yes"])
    assert result.exit_code == 0, result.output
    assert stack.client.get(job.id).state == JobState.CANCELLED  # at once
    wait_until(seen.exists, 30, what="the handler to see the cancel")
    assert seen.read_text() == "cancelled Cancelled"
    after = submit(stack, quick, "next")
    done = ended(stack, after)
    assert done.state == JobState.SUCCEEDED and done.result == "next"
