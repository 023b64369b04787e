"""The fault schedule: kills, restarts and partitions of the soak's cluster, one at a time.

Each fault is done and undone (a killed process is started again, as a supervisor would;
a partition heals) before the next begins, and every one goes in the :class:`FaultLog`
with its wall-clock interval and its target, which is how duplicate executions are
explained at the end.  After each fault the schedule waits until jobs complete again
(see :meth:`Chaos.settle`), so a fault that wedges the queue shows as a stall rather than
being hidden by the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from soak.app import MEMBER_ENV
from soak.executions import count_executions
from soak.partitions import ZK_PARTITIONED, Relays
from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk.errors import NoNode
from zkq.dev.cluster import DevCluster
from zkq.dev.mariadb import MARIADB
from zkq.dev.waiting import wait_until

Progress = Callable[[str], None]

#: the fault kinds, in the order of one round of the schedule
KINDS = (
    "worker-kill",
    "coordinator-leader-kill",
    "zookeeper-leader-kill",
    "frontend-kill",
    "worker-partition",
    "zookeeper-follower-kill",
    "mariadb-kill",
    "zookeeper-partition",
)


@dataclass
class Fault:
    kind: str
    target: str
    started: float  # wall clock
    ended: float | None = None
    note: str = ""
    #: the pids the fault took away (a killed or partitioned worker's): who ran what
    pids: list[int] = field(default_factory=list)


class FaultLog:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def begin(self, kind: str, target: str, pids: list[int] | None = None) -> Fault:
        fault = Fault(kind, target, time.time(), pids=list(pids or []))
        self.faults.append(fault)
        return fault

    def during(self, start: float, end: float) -> Fault | None:
        """The first fault whose interval overlaps ``[start, end]``."""
        for f in self.faults:
            if f.started <= end and (f.ended is None or f.ended >= start):
                return f
        return None

    def for_pid(self, pid: int, at: float) -> Fault | None:
        """The fault that took away process ``pid`` after ``at`` (an execution's start)."""
        for f in self.faults:
            if pid in f.pids and (f.ended is None or f.ended >= at):
                return f
        return None


class Chaos:
    """Drives the faults against ``cluster``; ``partition_worker`` is the member started
    behind ``worker_relays``."""

    def __init__(
        self,
        cluster: DevCluster,
        client: Client,
        record_dir: Path,
        session_timeout: float,
        worker_relays: Relays,
        partition_worker: str,
        zk_relays: Relays | None,
        progress: Progress,
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.record_dir = record_dir
        self.session_timeout = session_timeout
        self.worker_relays = worker_relays
        self.partition_worker = partition_worker
        self.zk_relays = zk_relays
        self.progress = progress
        self.log = FaultLog()
        #: whether no job is left to run (set by the runner, which knows the load)
        self.idle: Callable[[], bool] = lambda: False
        self._kill_turn = 0
        self._follower_turn = 0

    # -- the schedule ---------------------------------------------------------------------

    def run_round(self, kinds: tuple[str, ...], keep_going: Callable[[], bool]) -> None:
        for kind in kinds:
            if not keep_going():
                return
            if kind == "zookeeper-partition" and self.zk_relays is None:
                continue
            fault = getattr(self, kind.replace("-", "_"))()
            fault.ended = time.time()
            self.progress(f"fault {kind} on {fault.target} over {fault.note}")
            self.settle(kind)

    def settle(self, after: str, jobs: int = 10, timeout: float = 120.0) -> None:
        """Wait until ``jobs`` more executions are recorded (the queue moves again), or
        until there is nothing left to run (:attr:`idle`)."""
        before = count_executions(self.record_dir)
        try:
            wait_until(
                lambda: count_executions(self.record_dir) >= before + jobs or self.idle(),
                timeout,
                interval=0.2,
                what=f"jobs to run again after {after}",
            )
        except TimeoutError:
            self.progress(f"no jobs ran within {timeout:.0f}s after {after}: carrying on")

    # -- kills ----------------------------------------------------------------------------

    def worker_kill(self) -> Fault:
        """kill -9 a worker (not the partitioned one) that has jobs in hand, so some die
        mid-run, and start a new one at once, as a supervisor would."""
        candidates = [
            m for m in self.cluster.workers if m.process.alive() and m.name != self.partition_worker
        ]
        busy = self._busy({m.process.pid for m in candidates})
        by_pid = {m.process.pid: m for m in candidates}
        victim = by_pid[busy[0]] if busy else candidates[self._kill_turn % len(candidates)]
        self._kill_turn += 1
        fault = self.log.begin("worker-kill", victim.name, [victim.process.pid])
        self.cluster.kill_member(victim.name, group=True)
        replacement = start_worker(self.cluster)
        fault.note = f"kill -9; {replacement} started"
        return fault

    def coordinator_leader_kill(self) -> Fault:
        leader = self._leader_member()
        fault = self.log.begin("coordinator-leader-kill", leader, [])
        self.cluster.kill_member(leader)
        self.cluster.add_coordinator()
        fault.note = "kill -9; a new coordinator started"
        return fault

    def zookeeper_leader_kill(self) -> Fault:
        return self._zk_kill("zookeeper-leader-kill", leader=True)

    def zookeeper_follower_kill(self) -> Fault:
        return self._zk_kill("zookeeper-follower-kill", leader=False)

    def _zk_kill(self, kind: str, *, leader: bool) -> Fault:
        ensemble = self.cluster.ensemble
        assert ensemble is not None
        found: list[int] = []

        def has_leader() -> bool:  # index 0 is a leader too: no truthiness of the index
            index = ensemble.leader_index()
            found[:] = [] if index is None else [index]
            return bool(found)

        wait_until(has_leader, 60, interval=0.2, what="a ZooKeeper leader")
        index = found[0]
        if not leader:  # each follower in turn
            followers = [i for i in range(ensemble.size) if i != index]
            index = followers[self._follower_turn % len(followers)]
            self._follower_turn += 1
        node = ensemble.nodes[index]
        fault = self.log.begin(kind, node.name)
        started = time.monotonic()
        self.cluster.kill_zk_node(index)
        # a supervisor restarts it; the two others elect meanwhile if it led
        self.cluster.start_zk_node(index, wait=True, timeout=90)
        fault.note = f"kill -9, back in {time.monotonic() - started:.1f}s"
        return fault

    def frontend_kill(self) -> Fault:
        frontends = self.cluster.frontends
        victim = frontends[self._kill_turn % len(frontends)]
        fault = self.log.begin("frontend-kill", victim.name)
        self.cluster.kill_frontend(victim.name)
        # SIGKILL reaches gunicorn's workers too, but they are gone only when the kernel
        # has reaped them: restarting before then is refused
        wait_until(
            lambda: not victim.process.group_members(),
            30,
            interval=0.05,
            what=f"{victim.name}'s gunicorn workers to exit",
        )
        self.cluster.start_frontend(victim.name, wait=True, timeout=60)
        fault.note = "kill -9 of gunicorn's group, started again"
        return fault

    def mariadb_kill(self) -> Fault:
        fault = self.log.begin("mariadb-kill", MARIADB)
        started = time.monotonic()
        self.cluster.kill_member(MARIADB)
        self.cluster.start_mysql(timeout=90)
        fault.note = f"kill -9, serving again in {time.monotonic() - started:.1f}s"
        return fault

    # -- partitions -----------------------------------------------------------------------

    def worker_partition(self) -> Fault:
        """Cut the worker off until ZooKeeper has expired its session (its jobs are then
        requeued to others), then heal and wait until it has registered again."""
        member = self.cluster.member(self.partition_worker)
        pid = member.process.pid
        self._busy({pid})  # cut it off with jobs in hand, if it gets any
        fault = self.log.begin("worker-partition", member.name, [pid])
        started = time.monotonic()
        self.worker_relays.partition()
        try:
            wait_until(
                lambda: not self._registered(pid),
                self.session_timeout * 4 + 30,
                interval=0.2,
                what=f"the session of partitioned {member.name} to expire",
            )
            expired = time.monotonic() - started
        finally:
            self.worker_relays.heal()
        wait_until(
            lambda: self._registered(pid),
            60,
            interval=0.2,
            what=f"{member.name} to register again after the partition",
        )
        fault.note = f"black-holed; its session expired after {expired:.1f}s, healed"
        return fault

    def zookeeper_partition(self) -> Fault:
        """Cut one node from its peers until it has left the quorum and longer than a
        session timeout has passed, then heal and wait for it to rejoin."""
        ensemble = self.cluster.ensemble
        assert ensemble is not None and self.zk_relays is not None
        node = ensemble.nodes[ZK_PARTITIONED]
        was = ensemble.node_status(ZK_PARTITIONED).get("mode", "?")
        fault = self.log.begin("zookeeper-partition", node.name)
        started = time.monotonic()
        self.zk_relays.partition()
        try:
            wait_until(
                lambda: (
                    ensemble.node_status(ZK_PARTITIONED).get("mode") not in ("leader", "follower")
                ),
                60,
                interval=0.2,
                what=f"partitioned {node.name} to leave the quorum",
            )
            left = time.monotonic() - started
            others = [i for i in range(ensemble.size) if i != ZK_PARTITIONED]
            wait_until(
                lambda: (
                    sorted(ensemble.node_status(i).get("mode", "") for i in others)
                    == ["follower", "leader"]
                ),
                60,
                interval=0.2,
                what="the two other nodes to serve as a quorum",
            )
            # longer than a session: sessions held by the cut node must move or expire
            remaining = started + self.session_timeout * 1.5 - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)  # a duration the fault must last, not a condition
        finally:
            self.zk_relays.heal()
        ensemble.wait_ready(90)
        fault.note = (
            f"cut from its peers ({was} before), out of the quorum after {left:.1f}s, "
            f"healed after {time.monotonic() - started:.1f}s"
        )
        return fault

    # -- looking things up ----------------------------------------------------------------

    def _busy(self, pids: set[int], timeout: float = 30.0) -> list[int]:
        """Those of ``pids`` whose workers have jobs in their inboxes, once one has (or
        none, after ``timeout``): a fault then catches jobs mid-run."""
        found: list[int] = []

        def someone_busy() -> bool:
            try:
                found[:] = [
                    w["pid"] for w in self.client.workers() if w.get("pid") in pids and w["inbox"]
                ]
            except ZkqError:
                return False
            return bool(found)

        try:
            wait_until(someone_busy, timeout, interval=0.05, what="a worker with jobs in hand")
        except TimeoutError:
            return []
        return found

    def _registered(self, pid: int) -> bool:
        try:
            return any(w.get("pid") == pid for w in self.client.workers())
        except ZkqError:
            return False

    def _leader_member(self) -> str:
        def leader_pid() -> int | None:
            session = self.client.session
            path = Layout(self.cluster.root).election
            for node in sorted(session.get_children(path), key=lambda n: n[-10:]):
                try:
                    return int(session.get(f"{path}/{node}")[0].decode().rsplit("-", 1)[1])
                except NoNode:
                    continue
            return None

        pid = wait_until(leader_pid, 60, interval=0.2, what="a coordinator leader")
        for m in self.cluster.coordinators:
            if m.process.pid == pid and m.process.alive():
                return m.name
        raise TimeoutError(f"the coordinator leader (pid {pid}) is no member of the cluster")


def start_worker(cluster: DevCluster, extra_args: list[str] | None = None) -> str:
    """A worker whose executions are recorded under its member name."""
    n = 1 + len(cluster.workers)
    name = f"soak-worker-{n}"
    while any(m.name == name for m in cluster.members):
        n += 1
        name = f"soak-worker-{n}"
    cluster.add_worker(
        extra_args=extra_args or [],
        env={MEMBER_ENV: name},  # the checkout is on PYTHONPATH from the cluster's env
        name=name,
    )
    return name
