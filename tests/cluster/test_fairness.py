"""The demonstration of issue 11: short jobs are not stuck behind long ones.

Three workers of ``benchmarks.fairness_app`` join the shared stack, 4 slots each with one
kept back (``--reserve 1``): 30 long jobs take 9 slots and wait for no more; a burst of
100 short jobs submitted over HTTP then runs in the 3 reserved slots while every long job
still runs.  The waits are printed (``zkq bench fairness`` prints them beside the baseline
with no reserve); what is asserted is the outcome, never a duration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.fairness import cancel_all, describe, run_burst
from tests.cluster.conftest import Stack

pytestmark = pytest.mark.cluster

WORKERS = [f"fair-worker-{n}" for n in range(3)]


@pytest.fixture
def fair_workers(stack: Stack) -> Iterator[None]:
    before = len(stack.cluster.workers)
    try:
        for name in WORKERS:
            stack.cluster.add_worker(
                app="benchmarks.fairness_app",
                concurrency=4,
                extra_args=["--reserve", "1"],
                name=name,
            )
        stack.cluster.wait_registered(workers=before + len(WORKERS), coordinators=2)
        yield
    finally:
        # their long jobs are cancelled by then: a handler that sees it ends at once; one
        # that does not is ended with its worker after 5 s
        for name in WORKERS:
            if any(m.name == name for m in stack.cluster.members):
                stack.cluster.stop_member(name, timeout=5)


def test_a_burst_of_short_jobs_runs_while_every_long_job_still_runs(
    stack: Stack, fair_workers: None
) -> None:
    longs: list[str] = []
    with stack.client() as client:
        try:
            burst = run_burst(
                client.submit_batch,
                client.get,
                client.wait,
                long_seconds=60,
                timeout=120,
                submitted=longs,
            )
        finally:
            cancel_all(client.cancel, longs)  # no job of theirs is left in the shared stack
    print(f"\nfairness, reserve 1 of 4 slots x 3 workers: {describe(burst)}")
    assert burst.short_succeeded == 100
    assert burst.long_ended == 0, "the burst was measured after a long job ended"
    # none had ended, so every long job that ever started was running at once: at most 9
    assert burst.long_started == 9
