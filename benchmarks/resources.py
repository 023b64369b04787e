"""CPU time by process role over a measured window (psutil), to show where a run spends
the machine: the ZooKeeper JVMs, the leader, the workers or consumers, the bench itself."""

from __future__ import annotations

import os
from collections.abc import Iterable

import psutil


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (all its threads); None once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(times.user + times.system)


class CpuMeter:
    """``start()`` then ``stop()``: CPU seconds each role used in between."""

    def __init__(self, roles: dict[str, Iterable[int]]) -> None:
        self.roles = {role: list(pids) for role, pids in roles.items()}
        self.roles.setdefault("bench", [os.getpid()])
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {
            pid: seconds
            for pids in self.roles.values()
            for pid in pids
            if (seconds := cpu_seconds(pid)) is not None
        }

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for role, pids in self.roles.items():
            total = 0.0
            for pid in pids:
                end = cpu_seconds(pid)
                if end is not None and pid in self._start:
                    total += end - self._start[pid]
            used[role] = round(total, 3)
        return used
