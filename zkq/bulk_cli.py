"""``zkq cancel`` and ``zkq requeue`` over many jobs: filters instead of a job id.

The command first counts what the filters select, asks before acting (``--yes`` answers
for scripts; with no terminal to ask and no ``--yes`` it refuses, exit 2), then acts on
exactly the jobs counted (:mod:`zkq.coordinator.bulk`): progress on stderr when that is a
terminal, and at the end how many were done, skipped (ended or changed meanwhile) and
failed.  ``--dry-run`` only counts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from zkq.coordinator.bulk import APPLIES, BulkAction, Tally, select_all
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.selection import JobFilter
from zkq.options import CliContext
from zkq.output import EXIT_FAILED, EXIT_USAGE, emit, fail

F = TypeVar("F", bound=Callable[..., Any])
PAST = {"cancel": "cancelled", "requeue": "requeued"}
WHEN = (
    "a duration ago (10m, 2h, 1d), an ISO-8601 time (2026-12-03T14:00Z, UTC unless it says) "
    "or Unix seconds"
)


def bulk_options(action: str) -> Callable[[F], F]:
    """The filters and switches of ``zkq <action>`` without a job id."""
    states = sorted(str(s) for s in APPLIES[action])

    def declare(fn: F) -> F:
        for option in reversed(
            [
                click.option("--type", "job_type", default=None, help="Only jobs of this type."),
                click.option(
                    "--state",
                    "states",
                    multiple=True,
                    type=click.Choice(states),
                    help="Only jobs in this state; repeat for several.",
                ),
                click.option(
                    "--since",
                    default=None,
                    metavar="WHEN",
                    help=f"Only jobs created since: {WHEN}.",
                ),
                click.option(
                    "--until",
                    default=None,
                    metavar="WHEN",
                    help=f"Only jobs created before: {WHEN}.",
                ),
                click.option("--tenant", default=None, help="Only jobs of this tenant."),
                click.option("--yes", "-y", is_flag=True, help="Do not ask before acting."),
                click.option("--dry-run", is_flag=True, help="Count the jobs, act on none."),
            ]
        ):
            fn = option(fn)
        return fn

    return declare


def selected(
    job_id: str | None,
    job_type: str | None,
    states: tuple[str, ...],
    since: str | None,
    until: str | None,
    tenant: str | None,
) -> JobFilter | None:
    """The filter, or None for the one-job form; a usage error for a mix or neither."""
    given = bool(job_type or states or since or until or tenant)
    if job_id is not None:
        if given:
            raise click.UsageError("give a JOB_ID or filters (--type, --state, ...), not both")
        return None
    if not given:
        raise click.UsageError(
            "give a JOB_ID, or filters to act on many jobs: --type, --state, --since, --until"
        )
    try:
        found = JobFilter.of(
            tenant=tenant, states=states, job_type=job_type, since=since, until=until
        )
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    if not found.narrows:
        raise click.UsageError("--tenant alone selects too much: add --type, --state or a time")
    return found


def run_bulk(cli: CliContext, action: str, chosen: JobFilter, yes: bool, dry_run: bool) -> None:
    what = f"{action} {{n}} job(s) {chosen.describe()}".strip()
    none = f"no job {chosen.describe()} to {action}"
    client = cli.client()
    bulk = BulkAction(client.store, action, chosen)
    ids: list[str] = cli.with_client(lambda _: select_all(bulk))
    counts: dict[str, Any] = {"action": action, "filter": chosen.describe(), "matched": len(ids)}
    if dry_run or not ids:
        emit(
            {**counts, "dry_run": dry_run, "done": 0, "skipped": 0, "failed": 0},
            cli.as_json,
            lambda: f"would {what.format(n=len(ids))}" if ids else none,
        )
        return
    if not yes:
        if not sys.stdin.isatty():
            fail(
                f"not asking to {what.format(n=len(ids))}: no terminal to confirm on; "
                "pass --yes to go ahead (or --dry-run to count only)",
                EXIT_USAGE,
            )
        if not click.confirm(f"{what.format(n=len(ids))}?", default=False, err=True):
            fail("nothing done", EXIT_FAILED)
    tally = Tally()
    show = _progress(action, len(ids)) if sys.stderr.isatty() else None
    cli.with_client(lambda _: bulk.apply(ids, tally, progress=show))
    if show is not None:
        click.echo("", err=True)
    result = {
        **counts,
        "dry_run": False,
        "done": tally.done,
        "skipped": tally.skipped,
        "failed": tally.failed,
        "errors": tally.errors,
    }
    emit(
        result,
        cli.as_json,
        lambda: (
            f"{PAST[action]} {tally.done}, skipped {tally.skipped} (ended or changed "
            f"meanwhile), failed {tally.failed}" + "".join(f"\n  {e}" for e in tally.errors)
        ),
    )
    if tally.failed:
        sys.exit(EXIT_FAILED)


def _progress(action: str, total: int) -> Callable[[Tally], None]:
    def show(tally: Tally) -> None:
        click.echo(
            f"\r{action}: {tally.total}/{total}  done {tally.done}, skipped {tally.skipped}, "
            f"failed {tally.failed}",
            err=True,
            nl=False,
        )

    return show


__all__ = ["bulk_options", "run_bulk", "selected"]
