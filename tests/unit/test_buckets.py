"""The leader's clean-up of emptied pending buckets, on the in-memory ZooKeeper."""

from __future__ import annotations

from tests.memory_support import MemoryCluster
from zkq.coordinator.buckets import EMPTY_SHARD_GRACE, BucketSweeper, bucket_ended
from zkq.coordinator.ids import id_time, new_job_id


def test_a_bucket_ends_with_the_last_id_it_can_hold() -> None:
    job_id = new_job_id()
    era, tick = job_id[:6], job_id[6:8]
    tick_end, era_end = bucket_ended(era + tick), bucket_ended(era + "ZZ")
    assert tick_end is not None and era_end is not None
    assert id_time(job_id) <= tick_end < id_time(job_id) + 1.1
    assert tick_end <= era_end
    assert bucket_ended("not-a-bucket!") is None


def test_an_empty_bucket_goes_only_once_its_time_and_the_grace_are_past(
    cluster: MemoryCluster,
) -> None:
    session = cluster.session("leader")
    job_id = new_job_id()
    era, tick = job_id[:6], job_id[6:8]
    path = cluster.layout.pending_tick("t", era, tick)
    session.ensure_path(path)
    sweeper = BucketSweeper(session, cluster.clock)

    cluster.clock.advance(EMPTY_SHARD_GRACE - 5)
    assert not sweeper.drop_if_old(path, era + tick)  # a late writer may still come
    assert session.exists(path) is not None

    cluster.clock.advance(10)
    assert sweeper.drop_if_old(path, era + tick)
    assert session.exists(path) is None
    assert not sweeper.drop_if_old(path, era + tick)  # gone already: an answer, not an error


def test_a_bucket_written_into_meanwhile_is_kept(cluster: MemoryCluster) -> None:
    session = cluster.session("leader")
    job_id = new_job_id()
    era, tick = job_id[:6], job_id[6:8]
    path = cluster.layout.pending_tick("t", era, tick)
    session.ensure_path(f"{path}/999-{job_id}")
    cluster.clock.advance(EMPTY_SHARD_GRACE + 60)
    assert not BucketSweeper(session, cluster.clock).drop_if_old(path, era + tick)
    assert session.get_children(path) == [f"999-{job_id}"]
