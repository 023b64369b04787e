"""The baseline: kazoo's ``LockingQueue`` (the naive ZooKeeper queue DESIGN.md measures).

Its consumers each list ``<queue>/entries`` and ``<queue>/taken`` with a child watch and
race to create the lock of the first free entry; every put, every lock and every consume
changes one of those two nodes, so each one wakes every waiting consumer (the herd).

Consumers are processes, so the GIL does not serialise them: up to :data:`MAX_PROCESSES`
processes of one consumer each, then that many processes with several threads each, every
thread with its own KazooClient (its own session).  The producer is one ``put_all`` (one
multi).  A row ends when every entry is consumed or at its time cap, whichever comes first;
the rate is what was consumed over the time it took.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.recipe.queue import LockingQueue

from benchmarks.counters import Window, read_counters, settle
from benchmarks.resources import CpuMeter
from benchmarks.results import Idle, LqRow
from zkq.dev import processes
from zkq.dev.cluster import DevCluster
from zkq.dev.errors import StartupFailed
from zkq.dev.members import Member
from zkq.dev.waiting import wait_until

Progress = Callable[[str], None]
ROLE = "lq-consumer"
MAX_PROCESSES = 8


def consumer_layout(consumers: int, max_processes: int = MAX_PROCESSES) -> tuple[int, int]:
    """(processes, threads per process) for ``consumers`` consumers: one process each up to
    ``max_processes``, then ``max_processes`` processes sharing the threads evenly."""
    if consumers < 1:
        raise ValueError("at least one consumer")
    if consumers <= max_processes:
        return consumers, 1
    if consumers % max_processes:
        raise ValueError(f"{consumers} consumers do not split over {max_processes} processes")
    return max_processes, consumers // max_processes


class LockingQueueBench:
    def __init__(
        self,
        cluster: DevCluster,
        zk: KazooClient,
        root: str,
        work_dir: Path,
        progress: Progress,
        idle_seconds: float,
        poll: float = 0.05,
    ) -> None:
        assert cluster.ensemble is not None
        self.cluster = cluster
        self.ensemble = cluster.ensemble
        self.zk = zk
        self.root = root
        self.work_dir = work_dir
        self.progress = progress
        self.idle_seconds = idle_seconds
        self.poll = poll
        self.poll_requests = 0

    def run(self, consumers: int, jobs: int, cap: float) -> LqRow:
        procs, threads = consumer_layout(consumers)
        path = f"{self.root}/c{consumers}"
        self.progress(
            f"LockingQueue {consumers} consumer(s) ({procs} process(es) x {threads} "
            f"thread(s)): starting"
        )
        members = self._start(procs, threads, path)
        try:
            return self._measure(procs, threads, path, jobs, cap, members)
        finally:
            processes.stop_all([m.process for m in members], timeout=15.0)
            self.cluster.members = [m for m in self.cluster.members if m not in members]
            self.cluster.save()

    def _start(self, procs: int, threads: int, path: str) -> list[Member]:
        members: list[Member] = []
        ready_files: list[Path] = []
        for _ in range(procs):
            ready = self.work_dir / f"lq-{path.rsplit('/', 1)[-1]}-{len(members)}.ready"
            ready.unlink(missing_ok=True)
            argv = [
                sys.executable,
                # by path: the consumer needs only kazoo, and benchmarks/ is no installed
                # package, so `-m` would depend on the member's working directory
                str(Path(__file__).with_name("lq_consumer.py")),
                "--zk",
                self.cluster.connect_string,
                "--path",
                path,
                "--threads",
                str(threads),
                "--ready",
                str(ready),
            ]
            members.append(self.cluster.add_member(ROLE, argv))
            ready_files.append(ready)

        def all_ready() -> bool:
            for m in members:
                if not m.process.alive():
                    raise StartupFailed(
                        f"{m.name} (pid {m.process.pid}) exited; last lines of "
                        f"{m.process.log_path}:\n{m.process.log_tail(15)}"
                    )
            return all(f.exists() for f in ready_files)

        wait_until(all_ready, 90.0, interval=0.1, what="LockingQueue consumers to connect")
        return members

    def _remaining(self, entries: str) -> int:
        self.poll_requests += 1
        stat = self.zk.exists(entries)
        return 0 if stat is None else int(stat.numChildren)

    def _measure(
        self, procs: int, threads: int, path: str, jobs: int, cap: float, members: list[Member]
    ) -> LqRow:
        consumers = procs * threads
        idle_start = settle(self.ensemble)
        time.sleep(self.idle_seconds)  # the idle window itself: a measured interval
        idle_end = read_counters(self.ensemble)
        idle_window = Window.between(idle_start, idle_end)
        idle = Idle(
            idle_window.seconds,
            (idle_window.transactions or 0) / idle_window.seconds,
            idle_window.notifications / idle_window.seconds,
        )

        queue = LockingQueue(self.zk, path)
        entries = path + LockingQueue.entries
        self.progress(f"LockingQueue {consumers}: put_all {jobs} entries (cap {cap:g}s)")
        cpu = CpuMeter(
            {
                "zookeeper": [n.process.pid for n in self.ensemble.nodes if n.process],
                "consumers": [m.process.pid for m in members],
            }
        )
        cpu.start()
        self.poll_requests = 0
        before = read_counters(self.ensemble)
        started = time.perf_counter()
        queue.put_all([b"noop"] * jobs)
        try:
            wait_until(
                lambda: self._remaining(entries) == 0,
                cap,
                interval=self.poll,
                what="the LockingQueue to drain",
            )
            capped = False
        except TimeoutError:
            capped = True
        remaining = self._remaining(entries)
        seconds = time.perf_counter() - started
        after = read_counters(self.ensemble)
        cpu_used = cpu.stop()
        window = Window.between(before, after)
        row = LqRow(
            processes=procs,
            threads_per_process=threads,
            jobs=jobs,
            completed=jobs - remaining,
            seconds=seconds,
            capped=capped,
            transactions=window.transactions,
            notifications=window.notifications,
            requests=window.requests - self.poll_requests,
            idle=idle,
            cpu=cpu_used,
        )
        self.progress(
            f"LockingQueue {consumers}: {row.completed}/{jobs} consumed in {seconds:.2f}s"
            f"{' (time cap)' if capped else ''}, {row.jobs_per_s:.0f} jobs/s"
        )
        return row
