"""What each ``zkq bench`` subcommand does once its plan is made: run it with progress lines
on stderr, turn a failure to run into one line and exit 1, and print the report (a table,
or ``--json``).  Light to import, as the rest of the bench CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")
#: the bench could not run (an unreachable service, a port taken, ...)
EXIT_FAILED = 1


def run_reported(
    name: str,
    run: Callable[[Callable[[str], None]], T],
    to_json: Callable[[T], Any],
    render: Callable[[T], str],
    as_json: bool,
) -> T:
    """``run(progress)``, then its results printed; ``name`` (the subcommand's, or ``""``
    for ``zkq bench`` itself) heads every line on stderr (``zkq bench NAME: ...``)."""
    from zkq.coordinator.errors import ZkqError

    heading = f"zkq bench {name}".rstrip()

    def progress(message: str) -> None:
        click.echo(f"{heading}: {message}", err=True)

    try:
        results = run(progress)
    except (ZkqError, TimeoutError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"{heading}: {first}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(json.dumps(to_json(results), indent=2) if as_json else render(results))
    return results
