"""A submission whose reply is lost is retried, and the retry creates no duplicate."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from tests.tcpproxy import CuttingProxy
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.paths import Layout
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
            from zkq.coordinator.store import JobSpec

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
