"""Job types no live worker serves, on the in-memory ZooKeeper: the leader's log lines, the
frontend's cached set of served types, why a wait ran out, and the check behind
``zkq pause`` of a type nobody has used."""

from __future__ import annotations

import logging
import time

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator import serving
from zkq.coordinator.controls import Controls
from zkq.coordinator.job import JobState
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.serving import UnservedNotice, why_waiting
from zkq.coordinator.store import JobSpec, JobStore
from zkq.frontend.served import ServedTypes

LEADER_LOG = "zkq.coordinator.serving"


def far() -> float:
    """A deadline no in-memory read comes near."""
    return time.monotonic() + 10


def notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LEADER_LOG]


# -- the leader's log -------------------------------------------------------------------------
def test_the_leader_logs_an_unserved_type_once_then_rarely_and_when_a_worker_comes(
    cluster: MemoryCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LEADER_LOG)
    client = cluster.store("client")
    client.submit_many([JobSpec("lonely"), JobSpec("lonely"), JobSpec("t")])
    workers = cluster.store("workers")
    cluster.register(workers.session, "w1", types=frozenset({"t"}))
    leader = Leader(cluster)
    leader.dispatcher.unserved = UnservedNotice(every=60, timer=cluster.clock)

    def publish() -> None:
        leader.rounds()
        leader.dispatcher._publish(every=0)

    publish()
    [line] = notices(caplog)
    assert "2 pending job(s) of type 'lonely'" in line and "no live worker serves it" in line
    for _ in range(5):  # not every round
        cluster.clock.advance(5)
        publish()
    assert len(notices(caplog)) == 1
    cluster.clock.advance(60)
    publish()
    assert len(notices(caplog)) == 2, "it says so again once a minute while it lasts"
    cluster.register(workers.session, "w2", types=frozenset({"lonely"}), slots=4)
    publish()
    assert "a live worker now serves type 'lonely'" in notices(caplog)[-1]
    assert all("'t'" not in line for line in notices(caplog)), "a served type was reported"


def test_a_paused_or_cancelled_type_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LEADER_LOG)
    notice = UnservedNotice(every=60, timer=lambda: 0.0)
    notice.check({"held": 3}, frozenset(), paused={"held"})
    notice.check({"gone": 0}, frozenset(), paused=set())
    assert notices(caplog) == []


# -- the frontend's set of served types --------------------------------------------------------
def test_served_types_are_read_once_and_again_only_when_workers_change(
    cluster: MemoryCluster,
) -> None:
    workers = cluster.store("workers")
    cluster.register(workers.session, "w1", types=frozenset({"a", "b"}))
    served = ServedTypes(cluster.session("frontend"))
    assert served.types(far()) == {"a", "b"}
    for _ in range(3):
        served.types(far())
    assert served.refreshes == 1, "an unchanged set was read again"
    cluster.register(workers.session, "w2", types=frozenset({"c"}))
    cluster.zk.settle()
    assert served.types(far()) == {"a", "b", "c"}
    workers.session.delete(cluster.layout.worker("w1"))
    cluster.zk.settle()
    assert served.types(far()) == {"c"}
    assert served.refreshes == 3


def test_served_types_are_read_again_after_a_reconnection(cluster: MemoryCluster) -> None:
    workers = cluster.store("workers")
    session = cluster.session("frontend")
    served = ServedTypes(session)
    assert served.types(far()) == frozenset()
    cluster.zk.disconnect(session)
    cluster.register(workers.session, "w1", types=frozenset({"a"}))
    cluster.zk.reconnect(session)
    cluster.zk.settle()
    assert served.types(far()) == {"a"}


def test_served_types_see_the_first_worker_of_a_root_that_had_none(
    cluster: MemoryCluster,
) -> None:
    """A frontend may ask before anything made the `workers` node: no watch is set on a
    node that does not exist, so it must look again rather than trust the empty set."""
    fresh = MemoryCluster(root="/fresh")
    try:
        frontend = fresh.zk.session(fresh.config.zk, "frontend")
        fresh.sessions.append(frontend)
        frontend.start()  # and no parents made: the root is new
        served = ServedTypes(frontend)
        assert served.types(far()) == frozenset()
        workers = fresh.store("workers")  # makes the parents, as a worker's start does
        fresh.register(workers.session, "w1", types=frozenset({"a"}))
        fresh.zk.settle()
        assert served.types(far()) == {"a"}
    finally:
        fresh.close()


# -- why a wait ran out ----------------------------------------------------------------------
@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


def test_why_waiting_names_the_type_nobody_serves(cluster: MemoryCluster, client: JobStore) -> None:
    job = client.submit(JobSpec("lonely"))
    cause = why_waiting(client.session, job, far())
    assert "no live worker serves type 'lonely'" in cause
    assert "no coordinator is running" in cause  # nobody contends in this cluster


def test_why_waiting_names_a_pause_and_busy_slots(cluster: MemoryCluster, client: JobStore) -> None:
    workers = cluster.store("workers")
    cluster.register(workers.session, "w1", types=frozenset({"t"}), slots=1)
    busy = client.submit(JobSpec("t"))
    Leader(cluster).rounds()
    assert client.get(busy.id).state == JobState.ASSIGNED
    waiting = client.submit(JobSpec("t"))
    assert "all 1 slot(s) of the workers serving type 't' are busy" in why_waiting(
        client.session, waiting, far()
    )
    Controls(client).pause("t")
    assert "type 't' is paused (zkq resume t)" in why_waiting(client.session, waiting, far())
    assert "assigned to worker w1" in why_waiting(client.session, client.get(busy.id), far())


def test_why_waiting_names_workers_that_drain(cluster: MemoryCluster, client: JobStore) -> None:
    workers = cluster.store("workers")
    cluster.register(workers.session, "w1", types=frozenset({"t"}))
    path = cluster.layout.worker("w1")
    info = WorkerInfo.from_bytes("w1", workers.session.get(path)[0])
    workers.session.set(path, info.drained().to_bytes())
    job = client.submit(JobSpec("t"))
    assert "every worker serving type 't' is draining" in why_waiting(client.session, job, far())


# -- zkq status ------------------------------------------------------------------------------
def test_status_reports_unserved_queues_past_the_threshold_only() -> None:
    queues = [
        {"type": "lonely", "depth": 2, "oldest_age": 90.0, "paused": False},
        {"type": "young", "depth": 1, "oldest_age": 5.0, "paused": False},
        {"type": "held", "depth": 4, "oldest_age": 900.0, "paused": True},
        {"type": "t", "depth": 7, "oldest_age": 900.0, "paused": False},
        {"type": "drained", "depth": 1, "oldest_age": 900.0, "paused": False},
    ]
    workers = [{"types": ["t"], "draining": False}, {"types": ["drained"], "draining": True}]
    found = serving.unserved_queues(queues, workers)
    assert [q["type"] for q in found] == ["lonely", "young", "drained"]
    problems = serving.unserved_problems(found, 60)
    assert len(problems) == 2 and "2 job(s) of type 'lonely' pending for 90s" in problems[0]
    assert len(serving.unserved_problems(found, 0)) == 3


# -- zkq pause of a type nobody has used -------------------------------------------------------
def test_a_type_is_known_once_submitted_served_or_paused(
    cluster: MemoryCluster, client: JobStore
) -> None:
    controls = Controls(client)
    assert not controls.known_type("typo")
    client.submit(JobSpec("used"))
    assert controls.known_type("used")
    cluster.register(cluster.store("workers").session, "w1", types=frozenset({"served"}))
    assert controls.known_type("served")
    controls.pause("forced")
    assert controls.known_type("forced")
