"""``zkq bench lateness``: attached to ``zkq bench`` in :mod:`benchmarks.cli`.  Imports
nothing heavy at module level: every ``zkq`` command loads this module."""

from __future__ import annotations

from pathlib import Path

import click

from benchmarks.cli_run import run_reported


@click.command("lateness")
@click.option(
    "--quick", is_flag=True, help="A smoke run: 50 measured, 1,000 waiting, 200 in the burst."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--measured",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Jobs measured, due over a minute, idle and then loaded [1000].",
)
@click.option(
    "--scheduled",
    type=click.IntRange(0, 1_000_000),
    default=None,
    help="Jobs due hours ahead, the backlog of the loaded run [100000].",
)
@click.option(
    "--burst",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Jobs due at one moment [10000].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench stack's state and logs here (default: a temporary directory, "
    "removed afterwards).",
)
def lateness(
    quick: bool,
    as_json: bool,
    measured: int | None,
    scheduled: int | None,
    burst: int | None,
    state_dir: Path | None,
) -> None:
    """Measure how late scheduled jobs start: started_at - run_at, from the records.

    Brings up a private local stack on free ports (three ZooKeeper nodes, two coordinators,
    two workers of 16 slots), then measures: jobs due over a minute on an idle cluster;
    the same with a backlog of jobs due hours ahead (written with the batch path), which
    should not change the figures; and a burst of jobs due at one moment (lateness grows
    with the position in the burst; the rate it drains at is printed).  Prints
    p50/p90/p99/max.  Stops every process it started, also on Ctrl-C.  Exit status 0 when
    it ran, 1 when it could not.
    """
    import dataclasses

    from benchmarks import lateness as runner

    plan = runner.QUICK if quick else runner.FULL
    if measured is not None:
        plan = dataclasses.replace(plan, measured=measured)
    if scheduled is not None:
        plan = dataclasses.replace(plan, scheduled=scheduled)
    if burst is not None:
        plan = dataclasses.replace(plan, burst=burst)
    run_reported(
        "lateness",
        lambda progress: runner.run(plan, progress, state_dir),
        runner.to_json,
        runner.render,
        as_json,
    )
