"""What the unit tests on the in-memory ZooKeeper share: sessions of one cluster on one
tree, workers registered as :class:`~zkq.worker.service.Worker` registers, and a leader's
:class:`~zkq.coordinator.dispatcher.Dispatcher` driven one round at a time."""

from __future__ import annotations

import threading

from zkq.coordinator.config import ClusterConfig, ZkSettings
from zkq.coordinator.dispatcher import Dispatcher
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import Job
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.scheduled import Promoter
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import Create
from zkq.coordinator.zk.memory import ManualClock, MemoryZooKeeper
from zkq.coordinator.zk.memory_session import MemorySession
from zkq.coordinator.zk.session import ZkSession


class MemoryCluster:
    """One in-memory ensemble, the sessions made on it, and a clock tests move on."""

    def __init__(self, root: str = "/zkq") -> None:
        self.clock = ManualClock()
        self.zk = MemoryZooKeeper(clock=self.clock)
        self.config = ClusterConfig(zk=ZkSettings(hosts="memory", root=root))
        self.layout = self.config.zk.layout
        self.sessions: list[MemorySession] = []

    def session(self, name: str) -> MemorySession:
        session = self.zk.session(self.config.zk, name)
        self.sessions.append(session)
        session.start()
        session.ensure_paths(self.layout.fixed_parents())
        return session

    def store(self, name: str) -> JobStore:
        return JobStore(self.session(name), self.config.limits)

    def close(self) -> None:
        for session in self.sessions:
            session.stop()

    def register(
        self,
        session: ZkSession,
        worker_id: str,
        types: frozenset[str] = frozenset({"t"}),
        slots: int = 1,
        prefetch: int = 0,
    ) -> None:
        """Register as a worker does: its inbox and its ephemeral registration, one multi.
        Any session of the cluster's will do (a store's, typed as the interface)."""
        info = WorkerInfo(
            id=worker_id,
            host="here",
            pid=1,
            types=types,
            slots=slots,
            prefetch=prefetch,
            pool="thread",
            started_at=self.clock(),
        )
        session.multi(
            [
                Create(self.layout.inbox(worker_id)),
                Create(self.layout.worker(worker_id), info.to_bytes(), ephemeral=True),
            ]
        )

    def inbox(self, store: JobStore, worker_id: str) -> list[str]:
        return sorted(store.session.get_children(self.layout.inbox(worker_id)))

    def start(self, store: JobStore, worker_id: str, job_id: str) -> tuple[Job, int]:
        """Claim an assigned job as its worker does."""
        job, version = store.get_versioned(job_id)
        return FencedWriter(store).start(job, version, worker_id)

    def finish(self, store: JobStore, worker_id: str) -> list[str]:
        """Start and complete everything in a worker's inbox, as its worker would."""
        done = self.inbox(store, worker_id)
        for job_id in done:
            job, version = self.start(store, worker_id, job_id)
            FencedWriter(store).complete(job, version, worker_id, "ok")
        return done


class Leader:
    """A dispatcher of the cluster's, run one round at a time on the test's thread, with
    every watch callback delivered before each round."""

    def __init__(self, cluster: MemoryCluster, fence: str | None = None) -> None:
        self.cluster = cluster
        self.session = cluster.session("leader")
        self.store = JobStore(self.session, cluster.config.limits)
        self.dispatcher = Dispatcher(
            self.session,
            self.store,
            should_stop=lambda: False,
            wake=threading.Event(),
            clock=cluster.clock,
            timer=cluster.clock,
            fence=fence,
        )
        self.promoter = Promoter(self.dispatcher)
        self.dispatcher.tasks.append(self.promoter)

    def rounds(self, count: int = 3) -> int:
        """Run ``count`` rounds (the first reconciles, the next see what its own writes
        fired); returns how many jobs they assigned."""
        assigned = 0
        for _ in range(count):
            self.cluster.zk.settle()
            assigned += self.dispatcher.step()
        self.cluster.zk.settle()
        return assigned
