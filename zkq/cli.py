"""``zkq``: run the services, submit and inspect jobs, drive the local cluster.

Every command that talks to a cluster takes ``--zk``, ``--root`` and ``--config`` (and
``--mysql`` where it uses MySQL), after its name or before it, else finds them in the
environment or the config file (:mod:`zkq.options`); it answers ``--json`` for machines,
prints errors as one line on stderr and exits non-zero: 1 for a failed job or an error of
the request, 2 for usage, 3 when the cluster cannot be reached (:mod:`zkq.output`).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from zkq import logs
from zkq.acl_cli import COMMANDS as ACL_COMMANDS
from zkq.cli_errors import JOB_ID, ZkqGroup
from zkq.coordinator.errors import WaitTimeout, ZkqError
from zkq.db_cli import COMMANDS as DB_COMMANDS
from zkq.options import (
    MYSQL,
    ZOOKEEPER,
    CliContext,
    connection_options,
    json_option,
    log_options,
    metrics_option,
    pass_cli,
    setting_option,
)
from zkq.output import EXIT_FAILED, show_job, workers_table
from zkq.schedules_cli import schedules
from zkq.timing_options import timing_options

if TYPE_CHECKING:
    from zkq.coordinator.client import Client
    from zkq.coordinator.job import Job


@click.group(cls=ZkqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@connection_options(ZOOKEEPER, MYSQL)
def main() -> None:
    """zkq: a work-distribution cluster coordinated by ZooKeeper.

    The options below say which cluster to talk to; each may also follow the command,
    where it wins (`zkq status --zk HOST:2181`).  A setting given by neither comes from the
    environment (ZKQ_ZK_HOSTS, ZKQ_ROOT, ZKQ_MYSQL_URL, ...), else from the config file;
    with none of them naming a cluster, from the local cluster that `zkq dev up` (or
    `make run`) started in this folder (`eval "$(zkq dev env)"` for other shells).

    Errors are one line on stderr.  Exit status: 0 done, 1 the request failed, 2 usage
    (also a malformed job id), 3 the cluster could not be reached, 130 interrupted.
    """


# -- services ---------------------------------------------------------------------------
@main.command()
@connection_options(ZOOKEEPER, MYSQL)
@log_options
@click.option("--name", default=None, help="Identifier in the election (default host-pid).")
@metrics_option
@setting_option(
    "--retention",
    setting="retention",
    type=click.FloatRange(min=0),
    help="Seconds a finished job stays in ZooKeeper before the leader archives it to "
    "MySQL and prunes it (env ZKQ_RETENTION; default 3600; needs --mysql).",
)
@pass_cli
def coordinator(
    cli: CliContext, log_level: str, log_format: str, name: str | None, metrics_port: int | None
) -> None:
    """Run a coordinator: one of them leads and dispatches, the others stand by."""
    from zkq.coordinator.service import Coordinator

    logs.setup(log_level, log_format)
    service = Coordinator(cli.config, name)
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
@connection_options(ZOOKEEPER)
@log_options
@click.option(
    "--app",
    default="zkq.worker.builtin",
    show_default=True,
    help="The app: a module whose @zkq.handler functions the worker serves, or "
    "MODULE:NAME for a Registry of the app's own.  Imported with the working directory on "
    "the import path.",
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
    help="process for CPU-bound handlers, and for handlers that may hang: only a process "
    "can always be stopped when its job is cancelled or its lease is taken back.",
)
@click.option(
    "--cancel-grace",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds a cancelled job's handler has to return by itself before it is stopped "
    "by force (SIGTERM, or an exception raised into its thread).",
)
@click.option(
    "--kill-grace",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds from that forced stop to SIGKILL (process pool), or until the slot is "
    "counted lost (thread pool).",
)
@click.option(
    "--max-lost-slots",
    type=click.IntRange(1),
    default=None,
    help="Lost slots (handlers that could not be stopped) at which the worker drains and "
    "restarts itself in place (default: half the slots, at least 1).",
)
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Process pool: replace a slot's process after this many jobs (0: never).",
)
@click.option(
    "--reserve",
    type=click.IntRange(0, 1023),
    default=None,
    envvar="ZKQ_RESERVE",
    help="Slots kept for short work (types whose handler declares lane='short'): other "
    "types hold at most concurrency - reserve of this worker's jobs.  Default: a quarter of "
    "the slots (at least 1 from 2 slots) when the app declares a short type, else 0.",
)
@metrics_option
@pass_cli
def worker(
    cli: CliContext,
    log_level: str,
    log_format: str,
    app: str,
    types: str | None,
    concurrency: int,
    prefetch: int | None,
    pool: str,
    reserve: int | None,
    cancel_grace: float,
    kill_grace: float,
    max_lost_slots: int | None,
    max_tasks_per_child: int,
    metrics_port: int | None,
) -> None:
    """Run a worker.  SIGTERM drains it (running jobs finish); a second SIGTERM stops it now."""
    from zkq.worker.lost_slots import EXIT_RESTART, restart_in_place
    from zkq.worker.pools import StopPolicy, load_app
    from zkq.worker.service import Worker

    logs.setup(log_level, log_format)
    try:
        registry = load_app(app)
    except ImportError as exc:
        import os

        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name == app.split(":")[0].split(".")[0]:
            hint = f" in {os.getcwd()} or on the import path: start the worker in the app's folder"
        raise click.UsageError(f"cannot import the app module {app!r}: {exc}{hint}") from exc
    wanted = frozenset(t.strip() for t in types.split(",") if t.strip()) if types else None
    try:
        policy = StopPolicy(cancel_grace, kill_grace, max_tasks_per_child)
        service = Worker(
            cli.config,
            registry,
            app,
            wanted,
            concurrency,
            pool,
            prefetch,
            reserve=reserve,
            policy=policy,
            max_lost_slots=max_lost_slots,
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
    if service.restart_wanted and signals["count"] == 0:
        if service.abandoned:
            sys.exit(EXIT_RESTART)  # the drain could not finish: the supervisor restarts us
        restart_in_place()


@main.command()
@connection_options(ZOOKEEPER, MYSQL)
@click.option(
    "--bind",
    "binds",
    multiple=True,
    help="Address to listen on, HOST:PORT; repeat for more (env ZKQ_BIND; default 127.0.0.1:8000).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn worker processes (env ZKQ_GUNICORN_WORKERS; default 2).",
)
@pass_cli
def frontend(cli: CliContext, binds: tuple[str, ...], workers: int | None) -> None:
    """Serve the HTTP API: gunicorn with zkq's settings, in the foreground.

    The cluster settings come as for every command (flags, environment, config file); the
    frontend's own (ZKQ_MAX_WAIT, ZKQ_DEFAULT_RATE_LIMIT, ...) from the environment.  This
    process becomes gunicorn's master, so a supervisor's signals reach it directly.
    """
    import os

    from zkq.frontend.serve import gunicorn_argv, settings_environment

    env = {**os.environ, **settings_environment(cli.config)}
    if binds:
        env["ZKQ_BIND"] = ",".join(binds)
    if workers is not None:
        env["ZKQ_GUNICORN_WORKERS"] = str(workers)
    argv = gunicorn_argv()
    os.execve(argv[0], argv, env)


# -- jobs -------------------------------------------------------------------------------
@main.command()
@connection_options(ZOOKEEPER)
@click.argument("job_type")
@click.option("--payload", default="null", help="JSON payload.")
@click.option("--priority", type=int, default=0, show_default=True, help="0 (lowest) to 999.")
@click.option("--max-attempts", type=int, default=1, show_default=True)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds per attempt."
)
@click.option(
    "--wait",
    "wait_",
    is_flag=True,
    help="Wait for the job to end; exit 1 unless it succeeded (on timeout, stderr says why "
    "it has not ended).",
)
@click.option("--wait-timeout", type=float, default=300.0, show_default=True)
@setting_option(
    "--tenant",
    setting="tenant",
    help="Whose job it is, as an API key's tenant is over HTTP, where an admin key (or a key "
    "of this tenant) reads it (env ZKQ_TENANT; [client] tenant in the config file; "
    "default 'default').",
)
@timing_options
@json_option
@pass_cli
def submit(
    cli: CliContext,
    job_type: str,
    payload: str,
    priority: int,
    max_attempts: int,
    timeout: float,
    wait_: bool,
    wait_timeout: float,
    timing: dict[str, Any],
) -> None:
    """Submit a job of JOB_TYPE.  When no live worker serves the type, the job is accepted
    and waits for one; a warning on stderr says so.  With --delay or --at it waits
    'scheduled' until its time; --backoff sets how long failed attempts wait."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from exc
    job = cli.with_client(
        lambda c: c.submit(
            job_type,
            data,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            **timing,
        )
    )
    warn_unserved(cli.client(), job_type)
    if wait_:
        job = cli.with_client(lambda c: waited(c, job.id, wait_timeout))
    if cli.as_json or wait_:
        show_job(job, cli.as_json)
    else:
        click.echo(job.id)
    if wait_ and str(job.state) != "succeeded":
        sys.exit(EXIT_FAILED)


def warn_unserved(client: Client, job_type: str) -> None:
    """Say on stderr when no live worker serves the type: the job was accepted, and waits."""
    from zkq.coordinator.serving import unserved, unserved_warning

    try:
        if unserved(client.session, [job_type], time.monotonic() + 5):
            click.echo(f"zkq: warning: {unserved_warning(job_type)}", err=True)
    except ZkqError:
        pass  # the job is in; not knowing who serves it is no reason to fail the command


def waited(client: Client, job_id: str, timeout: float) -> Job:
    """The job once it ends, or as it was when ``--wait-timeout`` ran out: the command shows
    either and exits non-zero unless it succeeded, so a timeout needs no exit status of its
    own; stderr says why it has not ended (:func:`zkq.coordinator.serving.why_waiting`)."""
    from zkq.coordinator.serving import why_waiting

    try:
        return client.wait(job_id, timeout)
    except WaitTimeout as exc:
        if exc.job is None:
            raise
        try:
            cause = why_waiting(client.session, exc.job, time.monotonic() + 5)
        except ZkqError as error:
            cause = f"cannot tell why ({error})"
        click.echo(
            f"zkq: job {job_id} is still {exc.job.state} after {timeout:g}s: {cause}", err=True
        )
        return exc.job


@main.command()
@connection_options(ZOOKEEPER, MYSQL)
@click.argument("job_id", type=JOB_ID)
@json_option
@pass_cli
def job(cli: CliContext, job_id: str) -> None:
    """Show a job's record and its attempts (from the MySQL archive once pruned)."""
    show_job(cli.with_client(lambda c: c.get(job_id)), cli.as_json)


@main.command()
@connection_options(ZOOKEEPER)
@json_option
@pass_cli
def workers(cli: CliContext) -> None:
    """List live workers, their slots and what is in their inboxes."""
    found = [{**w, "busy": len(w["inbox"])} for w in cli.with_client(lambda c: c.workers())]
    if cli.as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(workers_table(found))


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
for _group in [*DB_COMMANDS, *ACL_COMMANDS, schedules]:
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
    # not standalone: its usage errors rise to zkq's group, which reports them in one line
    code = group.main(list(args), prog_name="zkq bench", standalone_mode=False)
    if isinstance(code, int) and code:  # what an explicit ctx.exit(code) came back as
        sys.exit(code)
