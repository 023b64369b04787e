"""The soak's figures: computed from what was accepted, the records and the fault log, then
rendered as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soak.accounting import Accounts
from soak.faults import Fault, FaultLog
from soak.load import LoadResult
from zkq.coordinator.job import Job, JobState


@dataclass
class Stall:
    seconds: float = 0.0
    start: float | None = None  # wall clock
    end: float | None = None
    faults: list[str] = field(default_factory=list)  # those overlapping it


def longest_stall(
    load: LoadResult, jobs: dict[str, Job], faults: FaultLog, reach: float = 0.0
) -> Stall:
    """The longest interval in which no job completed while an accepted job was pending.

    A job counts as pending from its 2xx (or its finish, if the answer came later, as it
    can for a short job) to its ``finished_at``; a job that never finished stays pending to
    the end, so a wedged queue shows as a stall up to the last completion.  The faults
    named with it are those that overlapped it, counting that a fault's effects outlast it
    by ``reach`` seconds (a killed process's session lives on until it expires).
    """
    events: list[tuple[float, int]] = []
    for job_id, sub in load.accepted.items():
        job = jobs.get(job_id)
        done = job.finished_at if job is not None and job.state is JobState.SUCCEEDED else None
        events.append((sub.at if done is None else min(sub.at, done), +1))
        if done is not None:
            events.append((done, -1))
    events.sort(key=lambda e: (e[0], -e[1]))  # accept before a completion at the same time
    best = Stall()
    pending = 0
    since: float | None = None
    for at, change in events:
        if change > 0:
            if pending == 0:
                since = at
            pending += 1
            continue
        if since is not None and at - since > best.seconds:
            best = Stall(at - since, since, at)
        pending -= 1
        since = at if pending > 0 else None
    if best.start is not None and best.end is not None:
        best.faults = [
            f"{f.kind} {f.target}"
            for f in faults.faults
            if f.started <= best.end and (f.ended or best.end) + reach >= best.start
        ]
    return best


@dataclass
class Report:
    jobs: int
    seconds: float
    load: LoadResult
    accounts: Accounts
    stall: Stall
    faults: list[Fault]

    @property
    def ok(self) -> bool:
        return not self.accounts.lost and not self.accounts.double_commits

    def to_json(self) -> dict[str, Any]:
        acc = self.accounts
        return {
            "ok": self.ok,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 1),
            "accepted": acc.accepted,
            "succeeded": acc.succeeded,
            "lost": [{"job": j, "found": why} for j, why in acc.lost],
            "double_commits": [{"job": j, "why": why} for j, why in acc.double_commits],
            "executions": acc.executions,
            "duplicate_executions": len(acc.duplicates),
            "duplicate_causes": dict(acc.causes),
            "duplicates": [
                {"job": d.job, "execution": d.execution, "cause": d.cause} for d in acc.duplicates
            ],
            "unaccepted_runs": acc.unaccepted_runs,
            "replica_disagreements": [
                {"job": d.job, "states": d.states} for d in acc.disagreements
            ],
            "unanswered_submissions": len(self.load.unanswered),
            "refused_submissions": [
                {"n": n, "status": s, "body": b} for n, s, b in self.load.refused
            ],
            "submission_retries": dict(self.load.failures),
            "longest_stall": {
                "seconds": round(self.stall.seconds, 2),
                "start": self.stall.start,
                "end": self.stall.end,
                "during": self.stall.faults,
            },
            "faults": [
                {
                    "kind": f.kind,
                    "target": f.target,
                    "started": f.started,
                    "seconds": None if f.ended is None else round(f.ended - f.started, 1),
                    "note": f.note,
                }
                for f in self.faults
            ],
        }

    def render(self) -> str:
        acc = self.accounts
        dup_rate = 100.0 * len(acc.duplicates) / acc.accepted if acc.accepted else 0.0
        lines = [
            f"zkq soak: {self.jobs} jobs in {self.seconds:.0f}s, {len(self.faults)} faults",
            f"  accepted              {acc.accepted}",
            f"  succeeded             {acc.succeeded}",
            f"  lost                  {len(acc.lost)}",
            f"  double commits        {len(acc.double_commits)}",
            f"  executions            {acc.executions}",
            f"  duplicate executions  {len(acc.duplicates)} ({dup_rate:.2f} % of accepted)",
        ]
        for cause, n in acc.causes.most_common():
            lines.append(f"    {n:5d}  {cause}")
        stall = self.stall
        during = f" (during {', '.join(stall.faults)})" if stall.faults else ""
        lines += [
            f"  longest stall         {stall.seconds:.2f}s{during}",
            f"  unanswered / refused  {len(self.load.unanswered)} / {len(self.load.refused)}",
            f"  runs never accepted   {acc.unaccepted_runs}",
            f"  replicas disagree on  {len(acc.disagreements)} job(s)",
            "  submission retries    "
            + (", ".join(f"{k}: {v}" for k, v in self.load.failures.most_common()) or "none"),
            "  faults:",
        ]
        for f in self.faults:
            took = "?" if f.ended is None else f"{f.ended - f.started:5.1f}s"
            lines.append(f"    {f.kind:24s} {f.target:16s} {took}  {f.note}")
        for job, why in acc.lost[:20]:
            lines.append(f"  LOST {job}: {why}")
        for d in acc.disagreements[:20]:
            lines.append(f"  ZOOKEEPER NODES DISAGREE on {d.job}: {d}")
        for job, why in acc.double_commits[:20]:
            lines.append(f"  DOUBLE COMMIT {job}: {why}")
        for n, status, body in self.load.refused[:5]:
            lines.append(f"  REFUSED submission {n}: {status} {body}")
        lines.append("  verdict: " + ("ok" if self.ok else "FAILED (loss or double commit)"))
        return "\n".join(lines)
