"""How every ``zkq`` command answers: tables for people, ``--json`` for machines, and
errors as one line on stderr with an exit status that means something.

Exit statuses: 0 done; 1 the request failed (a job that did not succeed, an unknown job
id, a refused transition); 2 usage (a bad option, argument, setting or job id); 3 the cluster
could not be reached; 130 interrupted (Ctrl-C).  :mod:`zkq.cli_errors` reports click's own
errors the same way.  Where the settings come from is :mod:`zkq.options`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from zkq.coordinator.errors import Unavailable, ZkqError
from zkq.coordinator.job import Attempt, Job

EXIT_FAILED = 1
EXIT_USAGE = 2  # what click exits with on a UsageError
EXIT_UNAVAILABLE = 3
#: Ctrl-C, as shells report a process ended by SIGINT (128 + 2)
EXIT_INTERRUPTED = 130


def one_line(message: str) -> str:
    """``message`` on a single line: a newline in an error would break ``zkq: ...``."""
    return " ".join(message.split())


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"zkq: {one_line(message)}", err=True)
    sys.exit(code)


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run a request, turning zkq errors into one line on stderr and an exit status."""
    try:
        return fn()
    except Unavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except ZkqError as exc:
        fail(str(exc))


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Columns aligned to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(r[i], int | float) for r in rows) and bool(rows) for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


#: ``zkq workers`` and ``zkq status`` show workers alike: the same columns, named the same
WORKER_COLUMNS = ["WORKER", "SLOTS", "BUSY", "POOL", "DRAINING", "TYPES"]


def _slots(worker: dict[str, Any]) -> str:
    """ "8", or "8 (2 lost)" when handlers that could not be stopped hold some."""
    lost = worker.get("lost_slots") or 0
    return f"{worker.get('slots')} ({lost} lost)" if lost else str(worker.get("slots"))


def workers_table(workers: Sequence[dict[str, Any]]) -> str:
    """Workers as both commands show them: ``busy`` counts the jobs in the worker's inbox
    (assigned or running), as the HTTP API's ``busy`` does."""
    return table(
        [
            (
                w["id"],
                _slots(w),
                w["busy"],
                w.get("pool") or "-",
                "yes" if w.get("draining") else "no",
                ",".join(w.get("types") or ()),
            )
            for w in workers
        ],
        WORKER_COLUMNS,
    )


def emit(data: Any, as_json: bool, human: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human())


def show_job(job: Job, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job.to_dict(), indent=2))
        return
    rows: list[tuple[str, Any]] = [
        ("id", job.id),
        ("type", job.type),
        ("state", str(job.state)),
        ("priority", job.priority),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("worker", job.worker or "-"),
        ("created", when(job.created_at)),
        ("finished", when(job.finished_at)),
        ("payload", json.dumps(job.payload)),
        ("result", json.dumps(job.result)),
    ]
    if job.tenant:
        rows.append(("tenant", job.tenant))
    if job.parent:
        rows.append(("parent", job.parent))
    if job.error:
        rows.append(("error", f"{job.error.get('type')}: {job.error.get('message')}"))
    if job.children:
        rows.append(("children", ", ".join(job.children)))
    rows.extend(_timing_rows(job))
    for key, value in rows:
        click.echo(f"{key:<10} {value}")
    if job.history:
        click.echo("")
        click.echo(
            table(
                [_history_row(a) for a in job.history],
                ["ATTEMPT", "WORKER", "STARTED", "TOOK", "OUTCOME", "ERROR"],
            )
        )
    trace = (job.error or {}).get("traceback")
    if trace:
        # the handler's own words, whole (the record keeps at most its last 8 KiB)
        click.echo("")
        click.echo("traceback")
        click.echo("\n".join(f"  {line}" for line in str(trace).rstrip().splitlines()))


def _timing_rows(job: Job) -> list[tuple[str, Any]]:
    """When it is due and why, its retry policy, where it came from: set ones only."""
    rows: list[tuple[str, Any]] = []
    if job.run_at is not None:
        due = when(job.run_at)
        rows.append(("run at", f"{due} ({job.scheduled_for})" if job.scheduled_for else due))
    if job.retry is not None:
        policy = dict(job.retry)
        kind = str(policy.pop("backoff", "?"))
        figures = " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in policy.items()
        )
        rows.append(("retry", f"{kind} {figures}".strip()))
    if job.schedule is not None:
        rows.append(("schedule", f"{job.schedule.get('owner')}/{job.schedule.get('name')}"))
    if job.lane is not None:
        rows.append(("lane", job.lane))
    return rows


def _history_row(a: Attempt) -> tuple[Any, ...]:
    """An attempt, or a requeue entry: when and by whom the job went back to the queue."""
    if not a.is_attempt:
        note = f"requeued by {a.by or '?'}: {a.error or ''}"
        return ("-", a.worker or "-", when(a.started_at), "-", a.outcome or "-", note[:60])
    return (
        a.number,
        a.worker,
        when(a.started_at),
        f"{a.ended_at - a.started_at:.3f}s" if a.ended_at else "running",
        a.outcome or "-",
        (a.error or "")[:60],
    )
