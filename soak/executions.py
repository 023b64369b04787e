"""Reading back what the soak's handler recorded (:mod:`soak.app`): one line per execution."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Execution:
    job: str
    attempt: int
    member: str
    pid: int
    at: float  # wall clock, when the handler began

    @property
    def name(self) -> str:
        """How the handler's result names it (``member:pid:attempt``)."""
        return f"{self.member}:{self.pid}:{self.attempt}"


def read_executions(directory: Path) -> dict[str, list[Execution]]:
    """Job id -> its executions, oldest first.  A torn last line (a worker killed in the
    middle of its write, which one ``write`` of a short line makes all but impossible) is
    skipped rather than taken for a record."""
    by_job: dict[str, list[Execution]] = defaultdict(list)
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_job[data["job"]].append(
                Execution(
                    data["job"],
                    int(data["attempt"]),
                    str(data["member"]),
                    int(data["pid"]),
                    float(data["at"]),
                )
            )
    for runs in by_job.values():
        runs.sort(key=lambda e: e.at)
    return dict(by_job)


def count_executions(directory: Path) -> int:
    """How many executions are recorded so far (cheap: counts lines)."""
    total = 0
    for path in directory.glob("*.jsonl"):
        with open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total
