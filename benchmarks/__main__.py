"""``python -m benchmarks`` (what ``make bench`` runs) from the checkout's root."""

from benchmarks.cli import bench

bench(prog_name="python -m benchmarks")
