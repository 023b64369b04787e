"""zkq end to end: ``noop`` jobs through real coordinator and worker processes.

Each row starts its workers (``zkq worker --app zkq.worker.builtin``, as ``zkq dev`` does),
waits until they are registered and the cluster is quiet, measures an idle window, then
submits every job with ``JobStore.submit_many`` and times from the first submission until
every record is ``succeeded``.  The workers are stopped after the row; the two coordinators
stay for the whole bench.

How the end is detected without adding watches (which would count as notifications) or
reading every record in a loop: a job is in exactly one of *pending entry*, *inbox entry* or
*terminal record* at any instant, because every transition moves it in one transaction
(assign deletes the pending entry and creates the inbox entry; complete sets the record
``succeeded`` and deletes the inbox entry).  So the bench polls the few pending shards the
jobs went to, then every inbox, until both are empty; those are cheap reads that no watch
sees (``exists`` gives a node's number of children without listing them), and their count
is taken off the requests the ensemble reports.  Then one pipelined read of every record
confirms they all ``succeeded``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from benchmarks.counters import Counters, Window, read_counters, settle
from benchmarks.resources import CpuMeter
from benchmarks.results import Idle, Memory, ZkqRow
from zkq.coordinator.client import Client
from zkq.coordinator.job import JobSpec, JobState
from zkq.coordinator.zk.kazoo_session import KazooSession
from zkq.dev import processes
from zkq.dev.cluster import DevCluster
from zkq.dev.errors import StartupFailed
from zkq.dev.members import Member
from zkq.dev.waiting import wait_until

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
JOB_TYPE = "noop"


@dataclass(frozen=True)
class Shape:
    """``workers`` worker processes with ``slots_per_worker`` slots (``--concurrency``) each."""

    workers: int
    slots_per_worker: int

    @property
    def slots(self) -> int:
        return self.workers * self.slots_per_worker

    def __str__(self) -> str:
        return f"{self.workers}x{self.slots_per_worker}"


def child_count(zk: KazooClient, paths: Sequence[str]) -> int:
    """Children of all ``paths`` together, from pipelined ``exists`` (a stat carries
    ``numChildren``: no listing to serialise); a missing node has none."""
    pending = [zk.exists_async(path) for path in paths]
    stats = [result.get(timeout=10.0) for result in pending]
    return sum(stat.numChildren for stat in stats if stat is not None)


def mean(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return int(sum(known) / len(known)) if known else None


class ZkqBench:
    def __init__(
        self,
        cluster: DevCluster,
        client: Client,
        progress: Progress,
        idle_seconds: float,
        poll: float = 0.02,
    ) -> None:
        assert cluster.ensemble is not None
        self.cluster = cluster
        self.ensemble = cluster.ensemble
        self.client = client
        session = client.session
        # the bench reads the ensemble beside zkq (election nodes, raw counts) with the
        # kazoo client under the session: only the real session has one
        assert isinstance(session, KazooSession), "the bench runs on a real ensemble"
        self.zk: KazooClient = session.client
        self.layout = client.config.zk.layout
        self.progress = progress
        self.idle_seconds = idle_seconds
        self.poll = poll
        self.poll_requests = 0

    def _counters(self) -> Counters:
        return read_counters(self.ensemble)

    # -- processes ------------------------------------------------------------------------
    def leader(self) -> Member | None:
        """The coordinator process that leads: the lowest election node names it
        (``<host>-<pid>``, the coordinator's default election identifier)."""
        try:
            nodes = self.zk.get_children(self.layout.election)
            if not nodes:
                return None
            lowest = min(nodes, key=lambda n: n[-10:])
            name = self.zk.get(f"{self.layout.election}/{lowest}")[0].decode()
        except NoNodeError:
            return None
        pid = name.rsplit("-", 1)[-1]
        for member in self.cluster.coordinators:
            if str(member.process.pid) == pid:
                return member
        return None

    def _start_workers(self, shape: Shape, timeout: float) -> list[Member]:
        for _ in range(shape.workers):
            self.cluster.add_worker(concurrency=shape.slots_per_worker)
        members = self.cluster.workers

        def registered() -> bool:
            for m in members:
                if not m.process.alive():
                    raise StartupFailed(
                        f"{m.name} (pid {m.process.pid}) exited; last lines of "
                        f"{m.process.log_path}:\n{m.process.log_tail(15)}"
                    )
            return len(self.zk.get_children(self.layout.workers)) >= len(members)

        wait_until(registered, timeout, interval=0.1, what=f"{shape} workers to register")
        return members

    def stop_workers(self) -> None:
        members = self.cluster.workers
        # all at once (one deadline); SIGTERM drains, and an idle worker drains at once
        processes.stop_all([m.process for m in members], timeout=15.0)
        self.cluster.members = [m for m in self.cluster.members if m not in members]
        self.cluster.save()

    # -- one row --------------------------------------------------------------------------
    def run(self, shape: Shape, jobs: int, timeout: float) -> ZkqRow:
        self.progress(f"zkq {shape} ({shape.slots} slots): starting {shape.workers} worker(s)")
        workers = self._start_workers(shape, timeout=90.0)
        try:
            return self._measure(shape, workers, jobs, timeout)
        finally:
            self.stop_workers()

    def _measure(self, shape: Shape, workers: list[Member], jobs: int, timeout: float) -> ZkqRow:
        leader = self.leader()
        memory = Memory()
        # quiet first: the leader may still be cleaning up after the previous row's workers
        idle_start = settle(self.ensemble)
        time.sleep(self.idle_seconds)  # the idle window itself: a measured interval
        idle_end = self._counters()
        idle_window = Window.between(idle_start, idle_end)
        idle = Idle(
            idle_window.seconds,
            (idle_window.transactions or 0) / idle_window.seconds,
            idle_window.notifications / idle_window.seconds,
        )
        memory.leader_idle = leader.process.rss_bytes() if leader else None
        memory.worker_idle_mean = mean([m.process.rss_bytes() for m in workers])

        self.progress(f"zkq {shape}: {jobs} {JOB_TYPE} jobs")
        specs = [JobSpec(JOB_TYPE) for _ in range(jobs)]
        cpu = CpuMeter(
            {
                "zookeeper": [n.process.pid for n in self.ensemble.nodes if n.process],
                "leader": [leader.process.pid] if leader else [],
                "workers": [m.process.pid for m in workers],
            }
        )
        cpu.start()
        self.poll_requests = 0
        before = self._counters()
        started = time.perf_counter()
        submitted = self.client.submit_many(specs, request_timeout=60.0)
        shards = sorted({self.layout.pending_shard(JOB_TYPE, job.id) for job in submitted})
        complete = self._wait_drained(shards, started + timeout)
        seconds = time.perf_counter() - started
        after = self._counters()
        cpu_used = cpu.stop()

        states = self._states([job.id for job in submitted])
        succeeded = states.get(str(JobState.SUCCEEDED), 0)
        if succeeded != jobs:
            complete = False
            log.warning("zkq %s: job states at the end: %s", shape, states)
        memory.leader_after = leader.process.rss_bytes() if leader else None
        after_rss = [m.process.rss_bytes() for m in workers]
        memory.worker_after_mean = mean(after_rss)
        memory.worker_after_max = max((r for r in after_rss if r is not None), default=None)
        window = Window.between(before, after)
        row = ZkqRow(
            workers=shape.workers,
            slots_per_worker=shape.slots_per_worker,
            jobs=jobs,
            succeeded=succeeded,
            seconds=seconds,
            complete=complete,
            transactions=window.transactions,
            notifications=window.notifications,
            requests=window.requests - self.poll_requests,
            idle=idle,
            memory=memory,
            cpu=cpu_used,
        )
        self.progress(
            f"zkq {shape}: {succeeded}/{jobs} succeeded in {seconds:.2f}s, "
            f"{row.jobs_per_s:.0f} jobs/s"
        )
        return row

    def _wait_drained(self, shards: list[str], deadline: float) -> bool:
        """Poll until no pending entry and no inbox entry is left (see the module doc).
        Counts its own requests in :attr:`poll_requests`, so they can be told apart."""

        def drained() -> bool:
            self.poll_requests += len(shards)
            if child_count(self.zk, shards):
                return False
            inboxes = [self.layout.inbox(w) for w in self.zk.get_children(self.layout.inboxes)]
            self.poll_requests += 1 + len(inboxes)
            return not child_count(self.zk, inboxes)

        try:
            wait_until(
                drained,
                max(0.0, deadline - time.perf_counter()),
                interval=self.poll,
                what="every job to finish",
            )
        except TimeoutError:
            return False
        return True

    def _states(self, job_ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(job_ids), 500):
            found = self.client.store.get_many(job_ids[start : start + 500])
            for job, _ in found.values():
                counts[str(job.state)] = counts.get(str(job.state), 0) + 1
        return counts
