"""Find the benchmarks of a source checkout for ``zkq bench``.

They are not part of the installed package: ``benchmarks/`` sits beside ``zkq/`` in the
checkout (as dramatiq keeps its ``benchmarks/`` beside the package), and ``make bench`` runs
``python -m benchmarks`` there.  An editable install leaves ``zkq/`` in the checkout, so its
parent is where the benchmarks are; a wheel install has none, and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def load_bench() -> click.Group:
    try:
        from benchmarks.cli import bench
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks":
            raise
        checkout = Path(__file__).resolve().parents[1]
        if not (checkout / "benchmarks" / "cli.py").is_file():
            raise click.ClickException(
                "the benchmarks ship with zkq's source checkout, not the installed package: "
                "run `make bench` (or `python -m benchmarks`) in a checkout"
            ) from None
        sys.path.insert(0, str(checkout))
        from benchmarks.cli import bench
    return bench
