"""An inbox orphaned while no leader ran, with real processes: a worker killed while no
coordinator is up leaves its inbox behind with nobody watching; the coordinator that
starts later must find it, take the job back and have it run elsewhere.

(The same scenario on the in-memory ZooKeeper, with a queued job too, is in
``tests/unit/test_corner_cases_coordinator.py``; this one proves it across real sessions
that expire on the ensemble's own clock.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    SESSION_MS,
    client_of,
    member_by_pid,
    running_cluster,
    wait_for_job,
    worker_pid,
)
from zkq.coordinator.client import Client
from zkq.coordinator.job import JobState
from zkq.coordinator.paths import Layout
from zkq.dev.cluster import DevCluster
from zkq.dev.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: generous bounds, from the session timeout the services ask for, not measured figures
EXPIRY = SESSION_MS / 1000 * 2 + 30


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    with running_cluster(tmp_path / "cluster", coordinators=1) as c:
        yield c


@pytest.fixture
def client(cluster: DevCluster) -> Iterator[Client]:
    with client_of(cluster) as c:
        yield c


def test_an_orphan_inbox_left_while_no_leader_ran_is_emptied_by_the_next_leader(
    cluster: DevCluster, client: Client
) -> None:
    layout = Layout(client.config.zk.root)
    job = client.submit("slow-first", 600, max_attempts=2)  # runs until its worker dies
    running = wait_for_job(client, job.id, lambda j: j.state == JobState.RUNNING, 60)
    assert running.worker
    dead = running.worker
    for member in [m for m in cluster.members if m.role == "coordinator"]:
        cluster.stop_member(member.name)  # no leader from here on
    cluster.kill_member(member_by_pid(cluster, worker_pid(dead)))
    wait_until(
        lambda: client.session.exists(layout.worker(dead)) is None,
        EXPIRY,
        what="the killed worker's session to expire",
    )
    # nobody leads: the job still names the dead worker, and its inbox is still there
    assert client.get(job.id).worker == dead
    assert client.session.exists(layout.inbox(dead)) is not None
    cluster.add_coordinator()
    done = wait_for_job(client, job.id, lambda j: j.state == JobState.SUCCEEDED, EXPIRY + 60)
    assert [a.outcome for a in done.history] == ["lost", "requeued", "succeeded"]
    assert done.attempts == 2 and done.history[2].worker not in (None, dead)
    wait_until(
        lambda: client.session.exists(layout.inbox(dead)) is None,
        EXPIRY,
        what="the orphan inbox to be deleted",
    )
