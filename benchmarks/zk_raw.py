"""The ceiling: how fast this ensemble takes small persistent creates from one kazoo client.

Pipelined: ``window`` ``create_async`` calls in flight, then wait for them all, then the next
window (ZooKeeper answers a session's requests in order, so a window is a batch of round
trips paid once).  Sequential: one ``create`` at a time, a full round trip each (through a
follower it is forwarded to the leader, proposed, acked by a quorum and committed).

The ensemble's CPU per create shows what batching is worth: writes that arrive together
share the proposal, the log flush and the network wake-ups; writes that arrive one at a
time pay all of it each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from kazoo.client import KazooClient

from benchmarks.counters import Counters
from benchmarks.resources import CpuMeter
from benchmarks.results import RawRow

log = logging.getLogger(__name__)
VALUE = b"x" * 16


def measure_raw(
    hosts: str,
    root: str,
    pipelined: int,
    sequential: int,
    window: int,
    read_counters: Callable[[], Counters],
    zookeeper_pids: Sequence[int] = (),
) -> list[RawRow]:
    client = KazooClient(hosts=hosts, timeout=10.0, logger=log)
    client.start(timeout=30.0)
    try:
        rows = []
        for mode, count in (("pipelined", pipelined), ("sequential", sequential)):
            parent = f"{root}/{mode}"
            client.ensure_path(parent)
            cpu = CpuMeter({"zookeeper": zookeeper_pids})
            cpu.start()
            before = read_counters()
            started = time.perf_counter()
            if mode == "pipelined":
                _pipelined(client, parent, count, window)
            else:
                for i in range(count):
                    client.create(f"{parent}/n{i:07d}", VALUE)
            seconds = time.perf_counter() - started
            after = read_counters()
            used = cpu.stop()
            rows.append(
                RawRow(
                    mode,
                    count,
                    seconds,
                    window if mode == "pipelined" else 1,
                    after.transactions_since(before),
                    used["zookeeper"] if zookeeper_pids else None,
                )
            )
        return rows
    finally:
        client.stop()
        client.close()


def _pipelined(client: KazooClient, parent: str, count: int, window: int) -> None:
    for start in range(0, count, window):
        in_flight = [
            client.create_async(f"{parent}/n{i:07d}", VALUE)
            for i in range(start, min(count, start + window))
        ]
        for result in in_flight:
            result.get(timeout=30.0)
