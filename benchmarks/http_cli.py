"""``zkq bench http``: attached to ``zkq bench`` in :mod:`benchmarks.cli`.

Imports nothing heavy at module level, like :mod:`benchmarks.cli`: every ``zkq`` command
loads this module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from benchmarks.cli_run import EXIT_FAILED, run_reported


@click.command("http")
@click.option(
    "--quick", is_flag=True, help="A smoke run (under a minute): short loops, a short long run."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--connections",
    type=click.IntRange(1, 256),
    default=None,
    help="Connections of each closed loop, and threads of the direct one [16; 8 with --quick].",
)
@click.option(
    "--seconds",
    type=click.FloatRange(1.0, 120.0),
    default=None,
    help="Counted seconds of each closed loop [15; 3 with --quick].",
)
@click.option(
    "--long-run",
    type=click.FloatRange(0.0, 600.0),
    default=None,
    help="Seconds of the steady load while ZooKeeper's size is sampled; 0 skips it "
    "[75; 12 with --quick].",
)
@click.option(
    "--long-run-rate",
    type=click.FloatRange(1.0, 5000.0),
    default=None,
    help="Jobs per second of the long run [60; 40 with --quick].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench stack's state and logs here (default: a temporary directory, "
    "removed afterwards).",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a target is missed.")
def http(
    quick: bool,
    as_json: bool,
    connections: int | None,
    seconds: float | None,
    long_run: float | None,
    long_run_rate: float | None,
    state_dir: Path | None,
    strict: bool,
) -> None:
    """Measure the HTTP side: submissions per second through HAProxy, auth on and off.

    Brings up a private local stack on free ports (three ZooKeeper nodes, MariaDB, two
    coordinators pruning finished jobs after 5 s, two workers, two gunicorn frontends,
    HAProxy), then measures: ZooKeeper's data size and znode count over a steady long run
    (they must stay flat while jobs keep being processed and archived); submissions per
    second through HAProxy with authentication, rate limiting and the request log on;
    p50/p99 latency at half that rate; the same submissions with the frontends restarted
    with ZKQ_AUTH=off; direct Client.submit into ZooKeeper (the ceiling without HTTP);
    and the gunicorn processes' memory, idle and after the load.  Stops every process it
    started, also on Ctrl-C.  Takes about three and a half minutes (--quick: under one);
    progress goes to stderr.  Exit status 0 when it ran (verdicts are in the report;
    --strict makes a missed one exit 1), 1 when it could not run.
    """
    import dataclasses

    from benchmarks import http as runner
    from benchmarks import http_report

    plan = runner.QUICK if quick else runner.FULL
    changes: dict[str, float | int] = {}
    if connections is not None:
        changes["connections"] = connections
    if seconds is not None:
        changes["peak_seconds"] = changes["direct_seconds"] = seconds
    if long_run is not None:
        changes["long_run_seconds"] = long_run
    if long_run_rate is not None:
        changes["long_run_rate"] = long_run_rate
    plan = dataclasses.replace(plan, **changes)  # type: ignore[arg-type]

    results = run_reported(
        "http",
        lambda progress: runner.run(plan, progress, state_dir),
        http_report.to_json,
        http_report.render,
        as_json,
    )
    if strict and not http_report.passed(results):
        sys.exit(EXIT_FAILED)
