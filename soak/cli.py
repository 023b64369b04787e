"""``python -m soak`` (``make soak``): the chaos soak from a checkout.

Imports nothing heavy at module level; the run itself is :mod:`soak.runner`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import click

#: exit statuses: 0 no loss and no double commit, 1 a loss or a double commit, 2 the soak
#: could not run (the cluster did not start, a fault could not be applied)
EXIT_LOSS = 1
EXIT_FAILED = 2


@click.command("soak")
@click.option(
    "--quick", is_flag=True, help="The short version: 1,000 jobs, every fault once (~2 min)."
)
@click.option(
    "--jobs",
    type=click.IntRange(10, 1_000_000),
    default=None,
    help="Jobs to submit [10,000; 1,000 with --quick].",
)
@click.option(
    "--rate",
    type=click.FloatRange(1.0, 10_000.0),
    default=None,
    help="Submissions a second [40; 20 with --quick]; the faults go on while they last.",
)
@click.option(
    "--no-zk-partition",
    is_flag=True,
    help="Leave out the partition of a ZooKeeper node (and the ensemble restart it needs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the cluster's state, logs and execution records here (default: a "
    "temporary directory, removed afterwards unless the soak failed).",
)
def soak(
    quick: bool,
    jobs: int | None,
    rate: float | None,
    no_zk_partition: bool,
    as_json: bool,
    state_dir: Path | None,
) -> None:
    """Run jobs through a local cluster while its parts are killed and partitioned.

    Starts a private cluster (three ZooKeeper nodes, MariaDB, two coordinators, three
    workers, two frontends behind HAProxy) and submits jobs over HTTP with
    Idempotency-Keys, while a schedule, in rounds, kills a worker (kill -9, a new one
    starts), the coordinator leader, the ZooKeeper leader and a follower (started again),
    a frontend and MariaDB (started again), and partitions a worker and a ZooKeeper node for
    longer than the session timeout.  Each handler run is recorded in a file that survives
    a kill -9.  Then prints: accepted, lost, double commits, duplicate executions with their
    causes, and the longest stall of the queue.  Exit status 0 when nothing was lost or
    committed twice, 1 when something was, 2 when the soak could not run.  Progress goes
    to stderr.
    """
    import logging

    from soak import runner
    from zkq.coordinator.errors import ZkqError

    # the soak's own ZooKeeper client sees every fault: kazoo's reconnection warnings
    # would bury the progress lines
    logging.getLogger("kazoo").setLevel(logging.ERROR)

    plan = runner.QUICK if quick else runner.FULL
    if jobs is not None:
        plan = dataclasses.replace(plan, jobs=jobs)
    if rate is not None:
        plan = dataclasses.replace(plan, rate=rate)
    if no_zk_partition:
        plan = dataclasses.replace(plan, zk_partition=False)

    def progress(message: str) -> None:
        # timestamped: a soak's story is read against the cluster's logs afterwards
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        click.echo(f"zkq soak: {stamp} {message}", err=True)

    try:
        report = runner.run(plan, progress, state_dir)
    except (ZkqError, TimeoutError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"zkq soak: {first}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.render())
    if not report.ok:
        sys.exit(EXIT_LOSS)
