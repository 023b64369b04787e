"""Reserved slots and per-type limits at assignment (coordinator/admission.py), on the
in-memory ZooKeeper: no cap is ever passed, a freed slot admits the next job, short work
gets the reserved slots, and a worker that registered none of it is assigned as before."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.memory_support import Leader, MemoryCluster
from zkq.coordinator.admission import default_reserve
from zkq.coordinator.controls import Controls
from zkq.coordinator.job import JobState
from zkq.coordinator.limits import TypeLimit
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.store import JobSpec, JobStore
from zkq.coordinator.zk import Create


@pytest.fixture
def client(cluster: MemoryCluster) -> JobStore:
    return cluster.store("client")


@pytest.fixture
def workers(cluster: MemoryCluster) -> JobStore:
    return cluster.store("workers")


def register(
    cluster: MemoryCluster,
    store: JobStore,
    worker_id: str,
    types: frozenset[str] = frozenset({"long", "short"}),
    slots: int = 4,
    prefetch: int = 0,
    reserve: int = 0,
    lanes: Mapping[str, str] | None = None,
    type_limits: Mapping[str, int] | None = None,
) -> None:
    """Register as a worker of this zkq does (its fairness fields included)."""
    info = WorkerInfo(
        id=worker_id,
        types=types,
        slots=slots,
        prefetch=prefetch,
        reserve=reserve,
        lanes=dict(lanes or {}),
        type_limits=dict(type_limits or {}),
    )
    store.session.multi(
        [
            Create(cluster.layout.inbox(worker_id)),
            Create(cluster.layout.worker(worker_id), info.to_bytes(), ephemeral=True),
        ]
    )


def held(cluster: MemoryCluster, store: JobStore, worker_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for jid in cluster.inbox(store, worker_id):
        job_type = store.get(jid).type
        counts[job_type] = counts.get(job_type, 0) + 1
    return counts


def finish_one(cluster: MemoryCluster, store: JobStore, worker_id: str, job_type: str) -> None:
    """Run and complete one job of ``job_type`` from the worker's inbox."""
    from zkq.coordinator.fenced import FencedWriter

    jid = next(j for j in cluster.inbox(store, worker_id) if store.get(j).type == job_type)
    job, version = cluster.start(store, worker_id, jid)
    FencedWriter(store).complete(job, version, worker_id, "ok")


def test_the_default_reserve_is_a_quarter_and_at_least_one_from_two_slots() -> None:
    assert [default_reserve(n) for n in (1, 2, 3, 4, 8, 9, 16)] == [0, 1, 1, 1, 2, 2, 4]


def test_long_work_leaves_the_reserve_free_and_short_work_takes_it(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    register(cluster, workers, "w1", reserve=1, lanes={"short": "short"}, prefetch=4)
    client.submit_many([JobSpec("long") for _ in range(10)])
    leader = Leader(cluster)
    leader.rounds()
    # 4 slots, 1 reserved: long work (declared or not) holds at most 3, prefetch included
    assert held(cluster, workers, "w1") == {"long": 3}
    shorts = client.submit_many([JobSpec("short") for _ in range(2)])
    leader.rounds()
    assert held(cluster, workers, "w1") == {"long": 3, "short": 2}
    # the lane each was assigned under is in its record, for operators
    assert {workers.get(j.id).lane for j in shorts} == {"short"}
    assert {workers.get(j).lane for j in cluster.inbox(workers, "w1")} == {"long", "short"}
    # a long job that ends frees its place for the next long one, and no more
    finish_one(cluster, workers, "w1", "long")
    leader.rounds()
    assert held(cluster, workers, "w1")["long"] == 3


def test_without_prefetch_the_reserved_slot_is_the_short_jobs(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    register(cluster, workers, "w1", reserve=1, lanes={"short": "short"})
    client.submit_many([JobSpec("long") for _ in range(5)])
    leader = Leader(cluster)
    leader.rounds()
    assert held(cluster, workers, "w1") == {"long": 3}
    shorts = client.submit_many([JobSpec("short") for _ in range(3)])
    leader.rounds()
    assert held(cluster, workers, "w1") == {"long": 3, "short": 1}
    finish_one(cluster, workers, "w1", "short")
    leader.rounds()
    assert held(cluster, workers, "w1") == {"long": 3, "short": 1}
    assert [client.get(j.id).state for j in shorts].count(JobState.PENDING) == 1


def test_a_type_is_short_if_any_worker_serving_it_declares_it_so(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    register(cluster, workers, "w1", reserve=1, lanes={"short": "long"})
    register(cluster, workers, "w2", types=frozenset({"short"}), reserve=1)
    client.submit_many([JobSpec("short") for _ in range(10)])
    Leader(cluster).rounds()
    # w1 says long and w2 says nothing: nobody says short, so both cap it at 3
    assert held(cluster, workers, "w1") == {"short": 3}
    assert held(cluster, workers, "w2") == {"short": 3}
    lanes = {"short": "short"}
    register(cluster, workers, "w3", types=frozenset({"short"}), reserve=1, lanes=lanes)
    leader = Leader(cluster)
    leader.rounds()
    # w3 declares it short: it is short everywhere now (capped, 3 + 3 + 3 could not hold 10)
    assert sum(held(cluster, workers, w).get("short", 0) for w in ("w1", "w2", "w3")) == 10


def test_an_older_registration_is_assigned_to_as_before(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    cluster.register(workers.session, "old", types=frozenset({"long"}), slots=4, prefetch=2)
    client.submit_many([JobSpec("long") for _ in range(8)])
    Leader(cluster).rounds()
    assert held(cluster, workers, "old") == {"long": 6}
    # and its records stay as it can read them: no lane, so schema 1
    assert {workers.get(j).lane for j in cluster.inbox(workers, "old")} == {None}


def test_the_cluster_limit_is_never_passed_and_a_freed_slot_admits_the_next(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    for worker_id in ("w1", "w2", "w3"):
        register(cluster, workers, worker_id, types=frozenset({"pdf", "t"}))
    Controls(cluster.store("operator")).set_limit("pdf", TypeLimit(cluster=2))
    pdfs = client.submit_many([JobSpec("pdf") for _ in range(7)])
    client.submit_many([JobSpec("t") for _ in range(3)])
    leader = Leader(cluster)
    for done in range(7):
        leader.rounds()
        running = {w: held(cluster, workers, w).get("pdf", 0) for w in ("w1", "w2", "w3")}
        assert sum(running.values()) == min(2, 7 - done)
        leader.dispatcher._publish(every=0)
        waiting = 7 - done - 2
        assert leader.dispatcher.stats.capped == ({"pdf": waiting} if waiting > 0 else {})
        finish_one(cluster, workers, next(w for w, n in running.items() if n), "pdf")
    assert {client.get(j.id).state for j in pdfs} == {JobState.SUCCEEDED}
    # an uncapped type went on beside it
    assert sum(held(cluster, workers, w).get("t", 0) for w in ("w1", "w2", "w3")) == 3


def test_per_worker_caps_take_the_least_of_operator_and_handler(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    register(cluster, workers, "w1", types=frozenset({"pdf"}), slots=8, type_limits={"pdf": 3})
    register(cluster, workers, "w2", types=frozenset({"pdf"}), slots=8)
    client.submit_many([JobSpec("pdf") for _ in range(20)])
    operator = Controls(cluster.store("operator"))
    operator.set_limit("pdf", TypeLimit(per_worker=5))
    leader = Leader(cluster)
    leader.rounds()
    assert [held(cluster, workers, w) for w in ("w1", "w2")] == [{"pdf": 3}, {"pdf": 5}]
    # the leader watches the limit: raised, it assigns more at once; cleared, up to slots
    operator.set_limit("pdf", TypeLimit(per_worker=6))
    leader.rounds()
    assert [held(cluster, workers, w) for w in ("w1", "w2")] == [{"pdf": 3}, {"pdf": 6}]
    assert operator.clear_limit("pdf") and not operator.clear_limit("pdf")
    leader.rounds()
    assert [held(cluster, workers, w) for w in ("w1", "w2")] == [{"pdf": 3}, {"pdf": 8}]
    assert operator.limits() == {}


def test_an_unreadable_limit_is_ignored(
    cluster: MemoryCluster, client: JobStore, workers: JobStore
) -> None:
    register(cluster, workers, "w1", types=frozenset({"pdf"}))
    operator = cluster.store("operator")
    operator.session.create(cluster.layout.limit("pdf"), b'{"cluster": -1}', makepath=True)
    client.submit_many([JobSpec("pdf") for _ in range(4)])
    Leader(cluster).rounds()
    assert held(cluster, workers, "w1") == {"pdf": 4}
    assert Controls(operator).limits() == {"pdf": None}


# -- the worker's side: what it declares and reserves ------------------------------------------
def test_a_worker_publishes_its_handlers_lanes_limits_and_reserve(cluster: MemoryCluster) -> None:
    from zkq.worker.registry import Registry
    from zkq.worker.service import Worker

    registry = Registry()
    registry.handler("thumb", lane="short")(lambda payload, ctx: None)
    registry.handler("video", lane="long", concurrency=2)(lambda payload, ctx: None)
    registry.handler("other")(lambda payload, ctx: None)
    with pytest.raises(ValueError, match="lane must be"):
        registry.handler("bad", lane="medium")
    session = cluster.zk.session(cluster.config.zk, "w")
    cluster.sessions.append(session)
    worker = Worker(cluster.config, registry, concurrency=8, session=session)
    try:
        worker.session.start()
        worker._register()  # the first may only make the shared parents
        worker._register()
        assert worker.worker_id is not None
        raw, _ = worker.session.get(cluster.layout.worker(worker.worker_id))
        info = WorkerInfo.from_bytes(worker.worker_id, raw)
        assert (info.reserve, info.lanes, info.type_limits) == (
            2,
            {"thumb": "short", "video": "long"},
            {"video": 2},
        )
    finally:
        worker.pool.shutdown()


def test_a_reserve_is_kept_by_default_only_for_a_declared_short_type(
    cluster: MemoryCluster,
) -> None:
    from zkq.worker.registry import Registry
    from zkq.worker.service import Worker

    registry = Registry()
    registry.handler("plain")(lambda payload, ctx: None)
    made = [Worker(cluster.config, registry, concurrency=4, session=cluster.session("a"))]
    assert made[0].reserve == 0
    made.append(
        Worker(cluster.config, registry, concurrency=4, reserve=3, session=cluster.session("b"))
    )
    assert made[1].reserve == 3
    with pytest.raises(ValueError, match="use less than --concurrency"):
        Worker(cluster.config, registry, concurrency=4, reserve=4, session=cluster.session("c"))
    for worker in made:
        worker.pool.shutdown()
