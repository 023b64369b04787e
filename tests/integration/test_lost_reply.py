"""Writes whose reply is lost are retried, and the retry neither duplicates nor refuses
what the lost write did."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import JobState
from zkq.coordinator.paths import Layout
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration


def job_records(zk: KazooClient, layout: Layout) -> list[str]:
    return [
        job_id
        for era in zk.get_children(layout.jobs)
        for tick in zk.get_children(layout.job_era(era))
        for job_id in zk.get_children(layout.job_tick(era, tick))
    ]


@pytest.mark.parametrize("batch", [1, 5])
def test_a_submission_retried_after_a_lost_reply_is_not_duplicated(
    ensemble: ZooKeeperEnsemble, batch: int
) -> None:
    root = f"/lost-reply-{batch}-{int(time.time() * 1000)}"
    with CuttingProxy("127.0.0.1", ensemble.client_port(0)) as proxy:
        client = Client(ClusterConfig.load(hosts=f"127.0.0.1:{proxy.port}", root=root))
        client.start()
        try:
            from zkq.coordinator.job import JobSpec

            proxy.cut_after_next_request(min_bytes=200)  # the multi, not a ping
            jobs = client.submit_many(
                [JobSpec("echo", {"n": n, "pad": "x" * 100}) for n in range(batch)]
            )
            assert proxy.cuts == 1, "the reply was not lost: the test proved nothing"
            ids = [j.id for j in jobs]
        finally:
            client.close()
    # look from outside, through a connection of its own
    zk = KazooClient(hosts=ensemble.connect_string)
    zk.start(10)
    try:
        layout = Layout(root)
        assert sorted(job_records(zk, layout)) == sorted(ids)
        pending = {
            name.split("-", 1)[1]
            for job_id in ids
            for name in zk.get_children(layout.pending_shard("echo", job_id))
        }
        assert sorted(pending) == sorted(ids)
    finally:
        zk.stop()
        zk.close()


def test_a_revive_retried_after_a_lost_reply_recognises_its_own_write(
    ensemble: ZooKeeperEnsemble,
) -> None:
    """The retry finds the job pending already: that is the revive it sent, not a job it
    may not revive."""
    root = f"/lost-revive-{int(time.time() * 1000)}"
    with CuttingProxy("127.0.0.1", ensemble.client_port(0)) as proxy:
        client = Client(ClusterConfig.load(hosts=f"127.0.0.1:{proxy.port}", root=root))
        client.start()
        try:
            job = client.cancel(client.submit("echo", {"pad": "x" * 200}).id)
            proxy.cut_after_next_request(min_bytes=200)  # the revive's multi
            revived = client.store.revive(job.id)
            assert proxy.cuts == 1, "the reply was not lost: the test proved nothing"
            assert revived.state == JobState.PENDING and revived.attempts == 0
            assert client.get(job.id).state == JobState.PENDING
            layout = client.config.zk.layout
            entries = client.session.get_children(layout.pending_shard("echo", job.id))
            assert entries == [f"999-{job.id}"]
        finally:
            client.close()
