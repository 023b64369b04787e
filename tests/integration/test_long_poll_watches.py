"""A frontend's long-poll (``GET /v1/jobs/ID?wait=``) holds one data watch, whatever its
length, and lets it go when it ends: a job that never changes must not pile up callbacks in
the frontend's session (one per 2-second slice, before), nor keep one after the wait."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import JobSpec, JobState
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.frontend import zk as frontend_zk
from zkq.frontend.zk import ZkGate


@pytest.fixture
def gate(ensemble: ZooKeeperEnsemble) -> Iterator[ZkGate]:
    config = ClusterConfig.load(hosts=ensemble.connect_string, root=f"/lp-{uuid.uuid4().hex[:8]}")
    gate = ZkGate(config, timeout=5.0, disconnected_wait=1.0)
    gate.start()
    assert gate.session.wait_connected(30)
    gate.session.ensure_paths(config.zk.layout.fixed_parents())
    try:
        yield gate
    finally:
        gate.stop()


def kazoo_data_watchers(gate: ZkGate, path: str) -> int:
    """The callbacks kazoo keeps for ``path`` (what a leaked watch costs the frontend)."""
    client = gate.session.client  # type: ignore[attr-defined]
    return len(client._data_watchers.get(path, ()))


def test_a_long_poll_holds_one_watch_and_releases_it(
    gate: ZkGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # many slices in a short wait: what leaked per slice shows within a second
    monkeypatch.setattr(frontend_zk, "WAIT_SLICE", 0.05)
    job = gate.store.submit(JobSpec("nobody-serves-this"))
    path = gate.config.zk.layout.job(job.id)
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            seen.append(kazoo_data_watchers(gate, path))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    answer = gate.wait_job(job.id, 1.0)
    done.set()
    sampler.join()
    assert answer.state == JobState.PENDING
    assert seen and max(seen) == 1, f"watch callbacks held during the wait: {max(seen)}"
    assert kazoo_data_watchers(gate, path) == 0, "the wait's watch outlived it"


def test_a_long_poll_still_answers_on_the_jobs_change(gate: ZkGate) -> None:
    job = gate.store.submit(JobSpec("nobody-serves-this"))
    answers: list[JobState] = []
    waiting = threading.Thread(
        target=lambda: answers.append(gate.wait_job(job.id, 30.0).state), daemon=True
    )
    waiting.start()
    path = gate.config.zk.layout.job(job.id)
    wait_until(lambda: kazoo_data_watchers(gate, path) == 1, 10, what="the wait's watch")
    gate.store.cancel(job.id)
    waiting.join(10)  # the watch answers at once; 10 s only bounds a failure
    assert answers == [JobState.CANCELLED]
    assert kazoo_data_watchers(gate, path) == 0
