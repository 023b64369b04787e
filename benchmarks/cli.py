"""``zkq bench``: attach with ``main.add_command(bench)``.

Imports nothing heavy at module level: ``zkq worker`` and friends load this module too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from benchmarks.cli_run import EXIT_FAILED, run_reported
from benchmarks.fairness_cli import fairness
from benchmarks.http_cli import http
from benchmarks.lateness_cli import lateness
from benchmarks.pools import pools
from benchmarks.timings_cli import timings

#: exit statuses (EXIT_FAILED): 0 the bench ran (verdicts are in the report), 1 it could
#: not run, or a target was missed under --strict


@click.group("bench", invoke_without_command=True)
@click.option(
    "--quick", is_flag=True, help="A small smoke run (well under a minute): fewer jobs and rows."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--jobs",
    type=click.IntRange(10, 1_000_000),
    default=None,
    help="noop jobs per zkq row and entries per LockingQueue row [1000; 200 with --quick].",
)
@click.option(
    "--lq-cap",
    type=click.FloatRange(1.0, 600.0),
    default=None,
    help="Seconds each LockingQueue row may run before it is cut off [20; 4 with --quick].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench cluster's state and logs here (default: a temporary directory, "
    "removed afterwards).",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a target is missed.")
@click.pass_context
def bench(
    ctx: click.Context,
    quick: bool,
    as_json: bool,
    jobs: int | None,
    lq_cap: float | None,
    state_dir: Path | None,
    strict: bool,
) -> None:
    """Measure zkq against raw ZooKeeper and kazoo's LockingQueue, in one run.

    Brings up a private local cluster (three ZooKeeper nodes, two coordinators) on free
    ports, then measures: raw kazoo create throughput (the ceiling); zkq noop jobs end to
    end with 1, 4, 16 and 64 worker slots; kazoo's LockingQueue with as many consumers;
    ZooKeeper transactions, requests and watch notifications per job; the memory of a
    coordinator and a worker; and CPU per job by process role.  Stops every process it
    started, also on Ctrl-C.  Takes two to five minutes (--quick: under one); progress
    goes to stderr.  Exit status 0 when it ran (the verdicts are in the report; --strict
    makes a missed target exit 1), 1 when it could not run.

    `zkq bench http` measures the HTTP side instead, `zkq bench timings` how fast
    failures and completions are noticed, `zkq bench fairness` how long short jobs wait
    behind long ones with and without reserved slots, `zkq bench pools` what a process
    pool costs against threads, `zkq bench lateness` how late scheduled jobs start (see
    their --help).
    """
    if ctx.invoked_subcommand is not None:
        if quick or as_json or strict or jobs or lq_cap or state_dir:
            raise click.UsageError(
                f"put options after the subcommand: zkq bench {ctx.invoked_subcommand} --quick"
            )
        return
    import dataclasses

    from benchmarks import report, runner

    plan = runner.QUICK if quick else runner.FULL
    if jobs is not None:
        plan = dataclasses.replace(plan, jobs=jobs, lq_jobs=jobs)
    if lq_cap is not None:
        plan = dataclasses.replace(plan, lq_cap=lq_cap)

    results = run_reported(
        "",
        lambda progress: runner.run(plan, progress, state_dir),
        report.to_json,
        report.render,
        as_json,
    )
    if strict and not report.passed(results):
        sys.exit(EXIT_FAILED)


bench.add_command(http)
bench.add_command(timings)
bench.add_command(fairness)
bench.add_command(pools)
bench.add_command(lateness)
