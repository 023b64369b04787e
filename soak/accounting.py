"""The end of a soak: every accepted job found, its record read against its executions.

- **lost**: accepted (a 2xx) but missing, or not ``succeeded`` when the drain bound ran out;
- **double commit**: a record showing two successful attempts, or a result written by
  another execution than the attempt the record says succeeded;
- **duplicate execution**: the handler ran more than once for one job; each extra run is
  explained from the record's history (how that attempt ended) and the fault log (what
  happened to the process that ran it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from soak.executions import Execution
from soak.faults import Fault, FaultLog
from soak.replicas import Disagreement
from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.job import AttemptOutcome, Job, JobState

#: jobs read per pipelined round
CHUNK = 500


def drain(
    client: Client,
    job_ids: Iterable[str],
    timeout: float,
    progress: Callable[[str], None],
) -> dict[str, Job]:
    """Read every job until all are terminal or ``timeout`` passes; the last reading."""
    found: dict[str, Job] = {}
    open_ids = list(job_ids)
    deadline = time.monotonic() + timeout
    last_note = 0.0
    while True:
        still: list[str] = []
        for i in range(0, len(open_ids), CHUNK):
            chunk = open_ids[i : i + CHUNK]
            try:
                jobs = client.lookup.get_many(chunk)
            except ZkqError:
                still += chunk  # ZooKeeper unreachable for a moment: read again
                continue
            for job_id in chunk:
                job = jobs.get(job_id)
                if job is not None:
                    found[job_id] = job
                if job is None or not job.terminal:
                    still.append(job_id)
        open_ids = still
        if not open_ids or time.monotonic() >= deadline:
            return found
        if time.monotonic() - last_note > 10:
            progress(f"draining: {len(open_ids)} accepted job(s) not finished yet")
            last_note = time.monotonic()
        time.sleep(0.5)  # a poll interval: there is no single event for "all finished"


@dataclass
class Duplicate:
    job: str
    execution: str  # member:pid:attempt of the extra run
    cause: str


@dataclass
class Accounts:
    accepted: int = 0
    succeeded: int = 0
    lost: list[tuple[str, str]] = field(default_factory=list)  # job id, what was found
    double_commits: list[tuple[str, str]] = field(default_factory=list)  # job id, why
    executions: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    #: executed but never accepted: created by a submission whose answer never came
    unaccepted_runs: int = 0
    #: jobs whose record differs between ZooKeeper nodes (:mod:`soak.replicas`)
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def causes(self) -> Counter[str]:
        return Counter(_kind(d.cause) for d in self.duplicates)


def _kind(cause: str) -> str:
    return cause.split(" (", 1)[0]


def account(
    accepted: Iterable[str],
    jobs: dict[str, Job],
    executions: dict[str, list[Execution]],
    faults: FaultLog,
) -> Accounts:
    acc = Accounts()
    accepted_ids = set(accepted)
    acc.accepted = len(accepted_ids)
    acc.executions = sum(len(runs) for runs in executions.values())
    acc.unaccepted_runs = len(set(executions) - accepted_ids)
    for job_id in sorted(accepted_ids):
        job = jobs.get(job_id)
        runs = executions.get(job_id, [])
        if job is None:
            acc.lost.append((job_id, "no record in ZooKeeper or the archive"))
            continue
        if job.state is not JobState.SUCCEEDED:
            acc.lost.append((job_id, _describe(job, runs)))
        else:
            acc.succeeded += 1
        why = _double_commit(job, runs)
        if why:
            acc.double_commits.append((job_id, why))
        acc.duplicates += _duplicates(job, runs, faults)
    return acc


def _describe(job: Job, runs: list[Execution]) -> str:
    history = [
        f"#{a.number} {a.worker} {a.outcome}" if a.is_attempt else f"requeued by {a.by}"
        for a in job.history
    ]
    return f"state {job.state}, {len(runs)} execution(s), history {history}, error {job.error}"


def _double_commit(job: Job, runs: list[Execution]) -> str | None:
    wins = [a for a in job.tries() if a.outcome == AttemptOutcome.SUCCEEDED]
    if len(wins) > 1:
        return f"{len(wins)} successful attempts: {[a.number for a in wins]}"
    if job.state is not JobState.SUCCEEDED:
        return None
    result: Any = job.result
    name = result.get("execution") if isinstance(result, dict) else None
    by_name = {r.name: r for r in runs}
    if name not in by_name:
        return f"result {result!r} names no recorded execution"
    if wins and by_name[name].attempt != wins[0].number:
        return f"result from attempt {by_name[name].attempt}, record says {wins[0].number}"
    return None


def _duplicates(job: Job, runs: list[Execution], faults: FaultLog) -> list[Duplicate]:
    if len(runs) < 2:
        return []
    result = job.result if isinstance(job.result, dict) else {}
    winner = result.get("execution")
    outcomes = {a.number: a for a in job.tries()}
    seen: Counter[int] = Counter(r.attempt for r in runs)
    out: list[Duplicate] = []
    for run in runs:
        if run.name == winner:
            continue
        out.append(Duplicate(job.id, run.name, _cause(run, outcomes, seen, faults)))
    # the job's first run is not a duplicate of anything: only the extra ones count
    if winner is None or winner not in {r.name for r in runs}:
        out = out[1:]
    return out


def _cause(
    run: Execution, outcomes: dict[int | None, Any], seen: Counter[int], faults: FaultLog
) -> str:
    if seen[run.attempt] > 1:
        return f"ran twice within one attempt (attempt {run.attempt}: fencing failed)"
    attempt = outcomes.get(run.attempt)
    fault = faults.for_pid(run.pid, run.at)
    if fault is not None:
        return _fault_cause(fault)
    if attempt is None:
        return f"attempt {run.attempt} missing from the record's history"
    outcome = str(attempt.outcome)
    if outcome == AttemptOutcome.LOST:
        during = faults.during(run.at, attempt.ended_at or run.at)
        where = f"; during {during.kind} of {during.target}" if during else ""
        return f"its worker's session was lost ({run.member}{where})"
    return f"attempt ended {outcome} ({run.member})"


def _fault_cause(fault: Fault) -> str:
    if fault.kind == "worker-kill":
        return f"worker killed mid-run ({fault.target}, kill -9)"
    if fault.kind == "worker-partition":
        return f"partitioned worker's session expired ({fault.target})"
    return f"{fault.kind} ({fault.target})"
