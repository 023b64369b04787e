"""A ``zkq worker --pool thread`` whose lost slots reach ``--max-lost-slots`` drains and
restarts in place: the same pid, a fresh registration with no lost slot.

The revocation is the real one: the leader takes the hung attempt back at its lease, the
worker sees its claim go and its pool cannot stop a handler blocked in C."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.dev import processes
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

ZKQ = str(Path(sys.executable).with_name("zkq"))
REPO = Path(__file__).resolve().parents[2]


def test_a_worker_with_too_many_lost_slots_restarts_in_place(
    ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    root = f"/lost-slots-{uuid.uuid4().hex[:8]}"
    zk = ["--zk", ensemble.connect_string, "--root", root, "--session-timeout", "3"]
    worker_args = ["--app", "tests.apps.stoppable:registry", "--pool", "thread", "-c", "2"]
    worker_args += ["--max-lost-slots", "1", "--cancel-grace", "0.2", "--kill-grace", "0.5"]
    started: list[ManagedProcess] = []
    client = Client(ClusterConfig.load({}, hosts=ensemble.connect_string, root=root))
    try:
        started.append(
            processes.start(
                ProcessSpec("coordinator", [ZKQ, "coordinator", *zk], tmp_path / "c.log", cwd=REPO)
            )
        )
        worker = processes.start(
            ProcessSpec("worker", [ZKQ, "worker", *zk, *worker_args], tmp_path / "w.log", cwd=REPO)
        )
        started.append(worker)
        client.start()

        def registrations() -> list[dict[str, Any]]:
            assert worker.alive(), worker.log_tail()
            return [w for w in client.workers() if w["pid"] == worker.pid]

        wait_until(lambda: registrations(), 90, interval=0.2, what="the worker registered")
        (first,) = registrations()
        assert first.get("lost_slots", 0) == 0 and first["kill_grace"] == 0.5
        # taken back at its lease, the hung handler is revoked; in a thread it cannot be
        # stopped, so its slot is lost
        client.submit("blocks", None, timeout=2)

        def restarted() -> dict[str, Any] | None:
            fresh = [w for w in registrations() if w["id"] != first["id"]]
            return fresh[0] if fresh else None

        again = wait_until(restarted, 120, interval=0.2, what="the worker restarted in place")
        assert again is not None
        assert again.get("lost_slots", 0) == 0 and again["pid"] == worker.pid
        assert "draining to restart" in worker.log_tail(200)
    finally:
        client.close()
        processes.stop_all(started, timeout=15)
