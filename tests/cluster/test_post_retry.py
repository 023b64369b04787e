"""HAProxy re-sends a request whose frontend closed the connection without answering
(``retry-on empty-response``).  A POST whose frontend died right after committing its job
is re-sent to the other frontend: it must find that job, not make a second one, also when
the client sent no Idempotency-Key.

The frontend's death is a fault point (``ZKQ_FAULT_EXIT_AFTER_SUBMIT``): the first
submission ends its gunicorn worker after the commit and before the response, once across
both frontends.  Removing the marker arms it again, so each test fires it once, on its own
submission."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.cluster import DevCluster
from zkq.dev.frontends import haproxy_servers
from zkq.dev.waiting import wait_until
from zkq.frontend.keys import KeyStore


@pytest.fixture(scope="module")
def dying_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, Path]]:
    base = tmp_path_factory.mktemp("post-retry")
    marker = base / "died-after-commit"
    cluster = DevCluster(base / "dev")
    try:
        # no coordinator or worker: the jobs stay pending, to be counted
        cluster.up(
            workers=0,
            coordinators=0,
            zk_size=1,
            tick_ms=200,
            mysql=True,
            frontends=2,
            timeout=120.0,
            env={"ZKQ_FAULT_EXIT_AFTER_SUBMIT": str(marker)},
        )
        yield cluster, marker
    finally:
        cluster.down(timeout=15)


def jobs_of(cluster: DevCluster, auth: dict[str, str], job_type: str) -> list[str]:
    r = requests.get(
        f"{cluster.haproxy_url}/v1/jobs", params={"type": job_type}, headers=auth, timeout=10
    )
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["jobs"]]


def new_auth(cluster: DevCluster) -> dict[str, str]:
    pool = ConnectionPool(MySQLSettings.from_url(cluster.mysql_url), max_size=1)
    try:
        _, secret = KeyStore(pool).create("acme", "submit,read", "post-retry", None)
    finally:
        pool.close()
    return {"Authorization": f"Bearer {secret}"}


def arm(cluster: DevCluster, marker: Path) -> None:
    """Arm the fault point, once HAProxy sees both frontends up again (a worker the
    fault ended is replaced by its gunicorn master)."""
    wait_until(
        lambda: all(
            s.startswith("UP") for s in haproxy_servers(cluster.member("haproxy")).values()
        ),
        60,
        interval=0.2,
        what="HAProxy to see every frontend up",
    )
    marker.unlink(missing_ok=True)


def test_a_post_retried_by_haproxy_after_commit_makes_one_job(
    dying_stack: tuple[DevCluster, Path],
) -> None:
    cluster, marker = dying_stack
    auth = new_auth(cluster)
    job_type = f"t{uuid.uuid4().hex[:8]}"
    arm(cluster, marker)
    # no Idempotency-Key: the client leaves retrying to HAProxy
    r = requests.post(
        f"{cluster.haproxy_url}/v1/jobs", json={"type": job_type}, headers=auth, timeout=30
    )
    assert marker.exists(), "the fault point did not fire: the test proves nothing"
    assert r.status_code == 201, r.text
    assert jobs_of(cluster, auth, job_type) == [r.json()["id"]]
    # two requests are still two jobs: the implicit key is the request's, not the body's
    again = requests.post(
        f"{cluster.haproxy_url}/v1/jobs", json={"type": job_type}, headers=auth, timeout=30
    )
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert len(jobs_of(cluster, auth, job_type)) == 2


def test_a_batch_retried_by_haproxy_after_commit_makes_its_jobs_once(
    dying_stack: tuple[DevCluster, Path],
) -> None:
    cluster, marker = dying_stack
    auth = new_auth(cluster)
    job_type = f"t{uuid.uuid4().hex[:8]}"
    arm(cluster, marker)
    body = {"jobs": [{"type": job_type, "payload": {"n": n}} for n in range(3)]}
    r = requests.post(f"{cluster.haproxy_url}/v1/jobs/batch", json=body, headers=auth, timeout=30)
    assert marker.exists(), "the fault point did not fire: the test proves nothing"
    assert r.status_code == 201, r.text
    answered = [j["id"] for j in r.json()["jobs"]]
    assert len(answered) == 3
    assert sorted(jobs_of(cluster, auth, job_type)) == sorted(answered)
