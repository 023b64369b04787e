"""Operator commands: see and steer a running cluster without reading znodes by hand.

``zkq status``, ``zkq jobs``, ``zkq zk ls|get|tree``, ``zkq requeue``, ``zkq cancel``,
``zkq drain``, ``zkq pause``, ``zkq resume``, ``zkq stats``.  Each takes ``--json``.
"""

from __future__ import annotations

import time
from typing import Any

import click

from zkq import clusterview, zkbrowse
from zkq.bulk_cli import WHEN, bulk_options, run_bulk, selected
from zkq.cli_errors import JOB_ID
from zkq.coordinator import census
from zkq.coordinator.controls import Controls
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import JobState
from zkq.coordinator.listing import scan_jobs
from zkq.coordinator.selection import JobFilter
from zkq.limits_cli import limits
from zkq.options import (
    MYSQL,
    ZOOKEEPER,
    CliContext,
    connection_options,
    json_option,
    pass_cli,
    setting_option,
)
from zkq.output import age, emit, show_job, table
from zkq.timing_options import parse_at

STATES = [str(s) for s in JobState]


# -- status -----------------------------------------------------------------------------
@click.command()
@connection_options(ZOOKEEPER, MYSQL)
@setting_option(
    "--haproxy-stats",
    setting="haproxy_stats",
    metavar="ADDRESS",
    help=(
        "HAProxy stats page: host:port (URI /stats), host:port/URI, or its URL as "
        "`zkq dev status` shows it (env ZKQ_HAPROXY_STATS; else [haproxy] stats in the "
        "config file)."
    ),
)
@setting_option(
    "--unserved-after",
    setting="unserved_after",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Report pending jobs of a type no live worker serves once they have waited this "
    "long (env ZKQ_UNSERVED_AFTER; else [status] unserved_after in the config file; "
    "default 60).",
)
@json_option
@pass_cli
def status(cli: CliContext) -> None:
    """The ensemble, the leader, workers, queues and frontends, in one view; with MySQL,
    also the finished jobs the archive refused (quarantined).

    Exits 1 when something is unwell (a ZooKeeper node down, no leader, a frontend down,
    jobs waiting longer than --unserved-after for a type no live worker serves, a job
    quarantined).
    """
    view = cli.with_client(lambda c: clusterview.collect(c, c.config.haproxy_stats))
    emit(view, cli.as_json, lambda: clusterview.render(view))
    if not view["ok"]:
        raise SystemExit(1)


# -- jobs -------------------------------------------------------------------------------
@click.command()
@connection_options(ZOOKEEPER)
@click.option("--state", type=click.Choice(STATES), default=None)
@click.option("--type", "job_type", default=None)
@click.option("--since", default=None, metavar="WHEN", help=f"Only jobs created since: {WHEN}.")
@click.option("--until", default=None, metavar="WHEN", help=f"Only jobs created before: {WHEN}.")
@click.option("--oldest", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option(
    "--after", type=JOB_ID, default=None, help="Resume after this job id (the last one shown)."
)
@json_option
@pass_cli
def jobs(
    cli: CliContext,
    state: str | None,
    job_type: str | None,
    since: str | None,
    until: str | None,
    oldest: bool,
    limit: int,
    after: str | None,
) -> None:
    """Jobs held in ZooKeeper, newest first, filtered by state, type and creation time."""
    try:
        chosen = JobFilter.of(states=state, job_type=job_type, since=since, until=until)
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None

    def scan(client: Any) -> Any:
        return scan_jobs(
            client.session,
            after,
            limit,
            chosen.matches,
            time.monotonic() + 30,
            budget=100_000,
            newest=not oldest,
            window=chosen.id_range(),
        )

    found = cli.with_client(scan)
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

    emit(data, cli.as_json, human)


# -- steering ---------------------------------------------------------------------------
@click.command()
@connection_options(ZOOKEEPER)
@click.argument("job_id", type=JOB_ID, required=False)
@bulk_options("requeue")
@click.option(
    "--at",
    metavar="WHEN",
    help="A failed, dead or cancelled JOB_ID waits 'scheduled' until this time: RFC 3339 "
    "with its zone (2026-12-24T18:00:00Z) or epoch seconds.",
)
@json_option
@pass_cli
def requeue(
    cli: CliContext,
    job_id: str | None,
    yes: bool,
    dry_run: bool,
    at: str | None,
    **filters: Any,
) -> None:
    """Send a job back to the queue; or, with filters instead of JOB_ID, every job they
    select (counted first, then asked: `zkq requeue --state dead --type T`).

    An assigned or running job is taken from its worker (whose completion is then refused);
    a failed, dead or cancelled job runs again with fresh attempts.  Only jobs still in
    ZooKeeper: a finished job moves to the archive after the retention (ZKQ_RETENTION).
    """
    chosen = selected(job_id, **filters)
    if chosen is not None and at is not None:
        raise click.UsageError("--at goes with one JOB_ID, not with filters")
    if chosen is not None:
        run_bulk(cli, "requeue", chosen, yes, dry_run)
        return
    assert job_id is not None
    run_at = parse_at(at)
    job = cli.with_client(lambda c: Controls(c.store).requeue(job_id, run_at=run_at))
    show_job(job, cli.as_json) if cli.as_json else click.echo(f"{job.id} {job.state}")


@click.command()
@connection_options(ZOOKEEPER)
@click.argument("job_id", type=JOB_ID, required=False)
@bulk_options("cancel")
@json_option
@pass_cli
def cancel(cli: CliContext, job_id: str | None, yes: bool, dry_run: bool, **filters: Any) -> None:
    """Cancel a pending, assigned or running job; or, with filters instead of JOB_ID,
    every job they select (counted first, then asked: `zkq cancel --type T --state pending`)."""
    chosen = selected(job_id, **filters)
    if chosen is not None:
        run_bulk(cli, "cancel", chosen, yes, dry_run)
        return
    assert job_id is not None
    job = cli.with_client(lambda c: c.cancel(job_id))
    show_job(job, cli.as_json) if cli.as_json else click.echo(f"{job.id} {job.state}")


@click.command()
@connection_options(ZOOKEEPER)
@click.argument("worker_id")
@click.option("--wait", "wait_", is_flag=True, help="Wait until the worker has left.")
@click.option("--wait-timeout", type=float, default=600.0, show_default=True)
@json_option
@pass_cli
def drain(cli: CliContext, worker_id: str, wait_: bool, wait_timeout: float) -> None:
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

    result = cli.with_client(run)
    emit(
        result,
        cli.as_json,
        lambda: f"{worker_id} draining" + (" and gone" if result["left"] else ""),
    )


@click.command()
@connection_options(ZOOKEEPER)
@click.argument("job_type")
@click.option(
    "--force",
    is_flag=True,
    help="Pause a type nobody has used yet (no job of it submitted, no worker serving it).",
)
@json_option
@pass_cli
def pause(cli: CliContext, job_type: str, force: bool) -> None:
    """Hold jobs of JOB_TYPE pending: the coordinator assigns none until resumed.

    A type nobody has used (no job of it ever submitted, no live worker serving it) is
    most likely a typo: pausing it needs --force.
    """

    def run(client: Any) -> bool:
        controls = Controls(client.store)
        if not force and not controls.known_type(job_type):
            # most likely a typo, and pausing it would silently hold nothing
            raise InvalidInput(
                f"no job of type {job_type!r} was ever submitted and no live worker serves "
                "it: check the name (zkq status lists the queues), or pass --force to "
                "pause it all the same"
            )
        return controls.pause(job_type)

    changed = cli.with_client(run)
    emit(
        {"type": job_type, "paused": True, "changed": changed},
        cli.as_json,
        lambda: f"{job_type} paused" + ("" if changed else " (already)"),
    )


@click.command()
@connection_options(ZOOKEEPER)
@click.argument("job_type")
@json_option
@pass_cli
def resume(cli: CliContext, job_type: str) -> None:
    """Let the coordinator assign jobs of JOB_TYPE again."""
    changed = cli.with_client(lambda c: Controls(c.store).resume(job_type))
    emit(
        {"type": job_type, "paused": False, "changed": changed},
        cli.as_json,
        lambda: f"{job_type} resumed" + ("" if changed else " (was not paused)"),
    )


# -- statistics -------------------------------------------------------------------------
@click.command()
@connection_options(ZOOKEEPER)
@click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=10_000,
    show_default=True,
    help="Read at most this many of the newest job records.",
)
@json_option
@pass_cli
def stats(cli: CliContext, limit: int) -> None:
    """Per worker and per type: attempts, failures, run time, waiting time.

    Computed from the job records in ZooKeeper (the retention window), so it answers
    "which worker is slow, which type fails most, how long do jobs wait".
    """
    from zkq import jobstats

    report = cli.with_client(lambda c: jobstats.collect(c.session, limit))
    emit(report, cli.as_json, lambda: jobstats.render(report))


# -- raw znodes ---------------------------------------------------------------------------
@click.group()
def zk() -> None:
    """Look at znodes directly: zkq's JSON records decoded, other data shown raw."""


@zk.command("ls")
@connection_options(ZOOKEEPER)
@click.argument("path", default="/")
@json_option
@pass_cli
def zk_ls(cli: CliContext, path: str) -> None:
    """Children of PATH (absolute, or relative to the zkq root)."""
    found = cli.with_client(lambda c: zkbrowse.ls(c, path))
    emit(found, cli.as_json, lambda: "\n".join(found["children"]))


@zk.command("get")
@connection_options(ZOOKEEPER)
@click.argument("path")
@json_option
@pass_cli
def zk_get(cli: CliContext, path: str) -> None:
    """Data and stat of PATH."""
    found = cli.with_client(lambda c: zkbrowse.get(c, path))
    emit(found, cli.as_json, lambda: zkbrowse.render_get(found))


@zk.command("tree")
@connection_options(ZOOKEEPER)
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
@pass_cli
def zk_tree(cli: CliContext, path: str, depth: int, max_children: int) -> None:
    """The tree below PATH (default: the zkq root)."""
    found = cli.with_client(lambda c: zkbrowse.tree(c, path, depth, max_children))
    emit(found, cli.as_json, lambda: zkbrowse.render_tree(found))


COMMANDS = [status, jobs, requeue, cancel, drain, pause, resume, stats, zk, limits]

__all__ = ["COMMANDS"]
