"""Operator commands: see and steer a running cluster without reading znodes by hand.

``zkq status``, ``zkq jobs``, ``zkq zk ls|get|tree``, ``zkq requeue``, ``zkq cancel``,
``zkq drain``, ``zkq pause``, ``zkq resume``, ``zkq stats``.  Each takes ``--json``.
"""

from __future__ import annotations

import time
from typing import Any

import click

from zkq import clusterview, zkbrowse
from zkq.coordinator import census
from zkq.coordinator.controls import Controls
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import JobState
from zkq.coordinator.listing import scan_jobs
from zkq.options import (
    age,
    cluster_options,
    connect,
    emit,
    json_option,
    run_guarded,
    show_job,
    table,
)

STATES = [str(s) for s in JobState]


def _with_client(
    hosts: str | None, root: str | None, session_timeout: float | None, fn: Any
) -> Any:
    client = connect(hosts, root, session_timeout)
    try:
        return run_guarded(lambda: fn(client))
    finally:
        client.close()


# -- status -----------------------------------------------------------------------------
@click.command()
@cluster_options
@click.option(
    "--haproxy-stats",
    envvar="ZKQ_HAPROXY_STATS",
    default=None,
    help=(
        "HAProxy stats page: host:port (URI /stats), host:port/URI, or its URL as "
        "`zkq dev status` shows it (env ZKQ_HAPROXY_STATS; else [haproxy] stats in the "
        "config file)."
    ),
)
@json_option
def status(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    haproxy_stats: str | None,
    as_json: bool,
) -> None:
    """The ensemble, the leader, workers, queues and frontends, in one view.

    Exits 1 when something is unwell (a ZooKeeper node down, no leader, a frontend down).
    """
    view = _with_client(
        hosts,
        root,
        session_timeout,
        lambda c: clusterview.collect(c, haproxy_stats or c.config.haproxy_stats),
    )
    emit(view, as_json, lambda: clusterview.render(view))
    if not view["ok"]:
        raise SystemExit(1)


# -- jobs -------------------------------------------------------------------------------
@click.command()
@cluster_options
@click.option("--state", type=click.Choice(STATES), default=None)
@click.option("--type", "job_type", default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--after", default=None, help="Resume after this job id (the last one shown).")
@json_option
def jobs(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    state: str | None,
    job_type: str | None,
    limit: int,
    after: str | None,
    as_json: bool,
) -> None:
    """Jobs held in ZooKeeper, oldest first, filtered by state and type."""

    def match(job: Any) -> bool:
        return (state is None or job.state == state) and (job_type is None or job.type == job_type)

    def scan(client: Any) -> Any:
        return scan_jobs(client.session, after, limit, match, time.monotonic() + 30, budget=100_000)

    found = _with_client(hosts, root, session_timeout, scan)
    data = {
        "jobs": [j.to_dict() for j in found.jobs],
        "next": None if found.exhausted else found.last,
    }
    rows = [
        (
            j.id,
            j.type,
            str(j.state),
            j.priority,
            f"{j.attempts}/{j.max_attempts}",
            j.worker,
            age(time.time() - j.created_at),
        )
        for j in found.jobs
    ]

    def human() -> str:
        out = table(rows, ["ID", "TYPE", "STATE", "PRI", "ATTEMPTS", "WORKER", "AGE"])
        if data["next"]:
            out += f"\n(more: --after {data['next']})"
        return out

    emit(data, as_json, human)


# -- steering ---------------------------------------------------------------------------
@click.command()
@cluster_options
@click.argument("job_id")
@json_option
def requeue(
    hosts: str | None, root: str | None, session_timeout: float | None, job_id: str, as_json: bool
) -> None:
    """Send a job back to the queue.

    An assigned or running job is taken from its worker (whose completion is then refused);
    a failed, dead or cancelled job runs again with fresh attempts.
    """
    job = _with_client(hosts, root, session_timeout, lambda c: Controls(c.store).requeue(job_id))
    show_job(job, as_json) if as_json else click.echo(f"{job.id} {job.state}")


@click.command()
@cluster_options
@click.argument("job_id")
@json_option
def cancel(
    hosts: str | None, root: str | None, session_timeout: float | None, job_id: str, as_json: bool
) -> None:
    """Cancel a pending, assigned or running job."""
    job = _with_client(hosts, root, session_timeout, lambda c: c.cancel(job_id))
    show_job(job, as_json) if as_json else click.echo(f"{job.id} {job.state}")


@click.command()
@cluster_options
@click.argument("worker_id")
@click.option("--wait", "wait_", is_flag=True, help="Wait until the worker has left.")
@click.option("--wait-timeout", type=float, default=600.0, show_default=True)
@json_option
def drain(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    worker_id: str,
    wait_: bool,
    wait_timeout: float,
    as_json: bool,
) -> None:
    """Stop WORKER taking jobs; it exits once its running jobs are done."""

    def run(client: Any) -> dict[str, Any]:
        info = Controls(client.store).drain(worker_id)
        left = False
        if wait_:
            deadline = time.monotonic() + wait_timeout
            while time.monotonic() < deadline:
                busy = [w for w in census.workers(client.session, deadline) if w.id == worker_id]
                if not busy:
                    left = True
                    break
                click.echo(f"waiting: {len(busy[0].inbox)} job(s) still with {worker_id}", err=True)
                time.sleep(1.0)
            if not left:
                raise InvalidInput(f"{worker_id} is still running jobs after {wait_timeout:g}s")
        return {"worker": worker_id, "draining": True, "left": left, "registration": info}

    result = _with_client(hosts, root, session_timeout, run)
    emit(result, as_json, lambda: f"{worker_id} draining" + (" and gone" if result["left"] else ""))


@click.command()
@cluster_options
@click.argument("job_type")
@json_option
def pause(
    hosts: str | None, root: str | None, session_timeout: float | None, job_type: str, as_json: bool
) -> None:
    """Hold jobs of JOB_TYPE pending: the coordinator assigns none until resumed."""
    changed = _with_client(
        hosts, root, session_timeout, lambda c: Controls(c.store).pause(job_type)
    )
    emit(
        {"type": job_type, "paused": True, "changed": changed},
        as_json,
        lambda: f"{job_type} paused" + ("" if changed else " (already)"),
    )


@click.command()
@cluster_options
@click.argument("job_type")
@json_option
def resume(
    hosts: str | None, root: str | None, session_timeout: float | None, job_type: str, as_json: bool
) -> None:
    """Let the coordinator assign jobs of JOB_TYPE again."""
    changed = _with_client(
        hosts, root, session_timeout, lambda c: Controls(c.store).resume(job_type)
    )
    emit(
        {"type": job_type, "paused": False, "changed": changed},
        as_json,
        lambda: f"{job_type} resumed" + ("" if changed else " (was not paused)"),
    )


# -- statistics -------------------------------------------------------------------------
@click.command()
@cluster_options
@click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Read at most this many of the newest job records.",
)
@json_option
def stats(
    hosts: str | None, root: str | None, session_timeout: float | None, limit: int, as_json: bool
) -> None:
    """Per worker and per type: attempts, failures, run time, waiting time.

    Computed from the job records in ZooKeeper (the retention window), so it answers
    "which worker is slow, which type fails most, how long do jobs wait".
    """
    from zkq import jobstats

    report = _with_client(
        hosts, root, session_timeout, lambda c: jobstats.collect(c.session, limit)
    )
    emit(report, as_json, lambda: jobstats.render(report))


# -- raw znodes ---------------------------------------------------------------------------
@click.group()
def zk() -> None:
    """Look at znodes directly: zkq's JSON records decoded, other data shown raw."""


@zk.command("ls")
@cluster_options
@click.argument("path", default="/")
@json_option
def zk_ls(
    hosts: str | None, root: str | None, session_timeout: float | None, path: str, as_json: bool
) -> None:
    """Children of PATH (absolute, or relative to the zkq root)."""
    found = _with_client(hosts, root, session_timeout, lambda c: zkbrowse.ls(c, path))
    emit(found, as_json, lambda: "\n".join(found["children"]))


@zk.command("get")
@cluster_options
@click.argument("path")
@json_option
def zk_get(
    hosts: str | None, root: str | None, session_timeout: float | None, path: str, as_json: bool
) -> None:
    """Data and stat of PATH."""
    found = _with_client(hosts, root, session_timeout, lambda c: zkbrowse.get(c, path))
    emit(found, as_json, lambda: zkbrowse.render_get(found))


@zk.command("tree")
@cluster_options
@click.argument("path", default="")
@click.option("--depth", type=click.IntRange(1, 10), default=4, show_default=True)
@click.option(
    "--max-children",
    type=int,
    default=20,
    show_default=True,
    help="Show at most this many children per node.",
)
@json_option
def zk_tree(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    path: str,
    depth: int,
    max_children: int,
    as_json: bool,
) -> None:
    """The tree below PATH (default: the zkq root)."""
    found = _with_client(
        hosts, root, session_timeout, lambda c: zkbrowse.tree(c, path, depth, max_children)
    )
    emit(found, as_json, lambda: zkbrowse.render_tree(found))


COMMANDS = [status, jobs, requeue, cancel, drain, pause, resume, stats, zk]

__all__ = ["COMMANDS"]
