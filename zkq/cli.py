"""``zkq``: run the services, submit and inspect jobs, drive the local cluster.

Every command that talks to a cluster takes ``--zk`` and ``--root`` (or ZKQ_ZK_HOSTS /
ZKQ_ROOT), answers ``--json`` for machines, prints errors as one line on stderr and exits
non-zero: 1 for a failed job or an error of the request, 2 for usage, 3 when the cluster
cannot be reached.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from zkq import logs
from zkq.db_cli import COMMANDS as DB_COMMANDS
from zkq.db_cli import mysql_option
from zkq.options import (
    EXIT_FAILED,
    cluster_options,
    connect,
    load_config,
    log_options,
    metrics_option,
    run_guarded,
    show_job,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """zkq: a work-distribution cluster coordinated by ZooKeeper."""


# -- services ---------------------------------------------------------------------------
@main.command()
@cluster_options
@log_options
@click.option("--name", default=None, help="Identifier in the election (default host-pid).")
@metrics_option
@mysql_option
@click.option(
    "--retention",
    type=click.FloatRange(min=0),
    envvar="ZKQ_RETENTION",
    default=None,
    help="Seconds a finished job stays in ZooKeeper before the leader archives it to "
    "MySQL and prunes it (default 3600; needs --mysql).",
)
def coordinator(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    log_level: str,
    log_format: str,
    name: str | None,
    metrics_port: int | None,
    mysql_url: str | None,
    retention: float | None,
) -> None:
    """Run a coordinator: one of them leads and dispatches, the others stand by."""
    from zkq.coordinator.service import Coordinator

    logs.setup(log_level, log_format)
    config = load_config(hosts, root, session_timeout, mysql_url=mysql_url, retention=retention)
    service = Coordinator(config, name)
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry

        from zkq.coordinator.metrics import CoordinatorCollector, serve

        registry = CollectorRegistry()
        registry.register(CoordinatorCollector(service.stats, service.session))
        serve(registry, metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    service.run()


@main.command()
@cluster_options
@log_options
@click.option(
    "--app",
    default="zkq.worker.builtin",
    show_default=True,
    help="Python module whose @handler functions the worker serves.",
)
@click.option("--types", default=None, help="Comma-separated subset of the app's types to serve.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 1024), default=4, show_default=True)
@click.option(
    "--prefetch",
    type=click.IntRange(0, 4096),
    default=None,
    envvar="ZKQ_PREFETCH",
    help="Assignments held beyond the slots, queued here (default: as many as the slots).",
)
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
    help="process for CPU-bound handlers.",
)
@metrics_option
def worker(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    log_level: str,
    log_format: str,
    app: str,
    types: str | None,
    concurrency: int,
    prefetch: int | None,
    pool: str,
    metrics_port: int | None,
) -> None:
    """Run a worker.  SIGTERM drains it (running jobs finish); a second SIGTERM stops it now."""
    from zkq.worker.pools import load_app
    from zkq.worker.registry import registry
    from zkq.worker.service import Worker

    logs.setup(log_level, log_format)
    try:
        load_app(app)
    except ImportError as exc:
        raise click.UsageError(f"cannot import the app module {app!r}: {exc}") from exc
    wanted = frozenset(t.strip() for t in types.split(",") if t.strip()) if types else None
    try:
        service = Worker(
            load_config(hosts, root, session_timeout),
            registry,
            app,
            wanted,
            concurrency,
            pool,
            prefetch,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if metrics_port is not None:
        from zkq.coordinator.metrics import serve

        serve(service.metrics.registry, metrics_port)
    signals = {"count": 0}

    def on_term(*_: Any) -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            service.drain()
        else:
            service.stop_now()
            sys.stderr.write("zkq worker: stopped at once\n")
            import os

            os._exit(1)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    service.run()


# -- jobs -------------------------------------------------------------------------------
@main.command()
@cluster_options
@click.argument("job_type")
@click.option("--payload", default="null", help="JSON payload.")
@click.option("--priority", type=int, default=0, show_default=True, help="0 (lowest) to 999.")
@click.option("--max-attempts", type=int, default=1, show_default=True)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds per attempt."
)
@click.option(
    "--wait", "wait_", is_flag=True, help="Wait for the job to end; exit 1 unless it succeeded."
)
@click.option("--wait-timeout", type=float, default=300.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def submit(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    job_type: str,
    payload: str,
    priority: int,
    max_attempts: int,
    timeout: float,
    wait_: bool,
    wait_timeout: float,
    as_json: bool,
) -> None:
    """Submit a job of JOB_TYPE."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from exc
    client = connect(hosts, root, session_timeout)
    try:
        job = run_guarded(
            lambda: client.submit(
                job_type, data, priority=priority, max_attempts=max_attempts, timeout=timeout
            )
        )
        if wait_:
            job = run_guarded(lambda: client.wait(job.id, wait_timeout))
        if as_json or wait_:
            show_job(job, as_json)
        else:
            click.echo(job.id)
    finally:
        client.close()
    if wait_ and str(job.state) != "succeeded":
        sys.exit(EXIT_FAILED)


@main.command()
@cluster_options
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@mysql_option
def job(
    hosts: str | None,
    root: str | None,
    session_timeout: float | None,
    job_id: str,
    as_json: bool,
    mysql_url: str | None,
) -> None:
    """Show a job's record and its attempts (from the MySQL archive once pruned)."""
    client = connect(hosts, root, session_timeout, mysql_url=mysql_url)
    try:
        show_job(run_guarded(lambda: client.get(job_id)), as_json)
    finally:
        client.close()


@main.command()
@cluster_options
@click.option("--json", "as_json", is_flag=True)
def workers(
    hosts: str | None, root: str | None, session_timeout: float | None, as_json: bool
) -> None:
    """List live workers, their slots and what is in their inboxes."""
    client = connect(hosts, root, session_timeout)
    try:
        found = run_guarded(client.workers)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    header = f"{'WORKER':<40} {'SLOTS':>5} {'BUSY':>4} {'POOL':<7} {'DRAINING':<8} TYPES"
    click.echo(header)
    for w in found:
        click.echo(
            f"{w['id']:<40} {w['slots']:>5} {len(w['inbox']):>4} {w.get('pool', '-'):<7} "
            f"{'yes' if w.get('draining') else 'no':<8} {','.join(w['types'])}"
        )


def _attach_optional() -> None:
    from zkq.ops_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)
    try:
        from zkq.dev.cli import dev
    except ImportError:  # pragma: no cover - only while the launcher is absent
        return
    main.add_command(dev)


_attach_optional()
for _group in DB_COMMANDS:
    main.add_command(_group)


# The benchmarks live beside the package in a source checkout (benchmarks/), not in it:
# `zkq bench` forwards to them, importing them only when it runs, so starting a worker or
# asking for --help never loads them.
@main.command(
    "bench",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_command(args: tuple[str, ...]) -> None:
    """Benchmarks (from a source checkout; same as `make bench`): see `zkq bench --help`."""
    from zkq.benchmarks_entry import load_bench

    group = load_bench()
    group.main(list(args), prog_name="zkq bench")
