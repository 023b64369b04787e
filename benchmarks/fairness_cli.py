"""``zkq bench fairness``: attached to ``zkq bench`` in :mod:`benchmarks.cli`.

Imports nothing heavy at module level, like :mod:`benchmarks.cli`.
"""

from __future__ import annotations

from pathlib import Path

import click

from benchmarks.cli_run import run_reported


@click.command("fairness")
@click.option(
    "--long-seconds",
    type=click.FloatRange(1.0, 600.0),
    default=60.0,
    show_default=True,
    help="How long each long job runs (the baseline's short jobs wait about this long).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the bench cluster's state and logs here (default: a temporary directory, "
    "removed afterwards).",
)
def fairness(long_seconds: float, as_json: bool, state_dir: Path | None) -> None:
    """Short jobs behind long ones, with and without reserved slots.

    Brings up a private local cluster (three ZooKeeper nodes, a coordinator), then, with
    three workers of 4 slots each and --reserve 1: submits 30 long jobs, waits until 9 run,
    submits 100 1-ms jobs and prints how long they waited (p50/p99/max) and the burst's end
    to end time.  Then the same with --reserve 0, where every slot holds a long job and the
    burst waits for long jobs to end (one or two --long-seconds: a worker starts the long
    jobs it prefetched first).  Takes about three times --long-seconds.  Stops every
    process it started.
    """
    from benchmarks import fairness as runner

    run_reported(
        "fairness",
        lambda progress: runner.run(long_seconds, progress, state_dir),
        runner.to_json,
        runner.render,
        as_json,
    )
