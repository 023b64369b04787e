"""``zkq bench timings``: attached to ``zkq bench`` in :mod:`benchmarks.cli`.

Imports nothing heavy at module level, like :mod:`benchmarks.cli`: every ``zkq`` command
loads this module.
"""

from __future__ import annotations

from pathlib import Path

import click

from benchmarks.cli_run import run_reported


@click.command("timings")
@click.option("--quick", is_flag=True, help="A smoke run: 5 long-polls, one round of faults.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--polls",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Jobs whose completion a long-poll waits for [50; 5 with --quick].",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 100),
    default=None,
    help="kill -9 rounds of each fault (leader, worker, frontend) [3; 1 with --quick].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench stack's state and logs here (default: a temporary directory, "
    "removed afterwards).",
)
def timings(
    quick: bool, as_json: bool, polls: int | None, rounds: int | None, state_dir: Path | None
) -> None:
    """Measure how fast the cluster notices things, next to the timeouts that bound them.

    Brings up a private local stack on free ports (three ZooKeeper nodes, MariaDB, two
    coordinators, two workers, two gunicorn frontends, HAProxy; 3 s sessions), then
    measures: the lag from a job's finished_at to a long-poll answering; the leader
    handover after kill -9 of the leading coordinator (a job submitted at the kill starts);
    the requeue of a kill -9'd worker's running job; HAProxy marking a kill -9'd frontend
    DOWN.  Each fault is repaired before the next round.  Prints p50/p99/max with the
    configured timeout beside each.  Stops every process it started, also on Ctrl-C.
    Exit status 0 when it ran, 1 when it could not.
    """
    import dataclasses

    from benchmarks import timings as runner

    plan = runner.QUICK if quick else runner.FULL
    if polls is not None:
        plan = dataclasses.replace(plan, polls=polls)
    if rounds is not None:
        plan = dataclasses.replace(plan, rounds=rounds)

    run_reported(
        "timings",
        lambda progress: runner.run(plan, progress, state_dir),
        runner.to_json,
        runner.render,
        as_json,
    )
