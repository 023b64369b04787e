"""The short chaos soak (``soak.runner.QUICK``): 1,000 jobs through HAProxy while every
fault of the schedule happens once.  ``make soak`` is the long version (10,000 jobs).

Nothing accepted may be lost or committed twice; every extra execution of a handler must be
explained by a fault that took its worker away.  Run with ``-s`` to see the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from soak import runner
from soak.faults import KINDS

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.timeout(420)]


def test_quick_soak_loses_nothing_and_commits_nothing_twice(tmp_path: Path) -> None:
    lines: list[str] = []
    report = runner.run(runner.QUICK, lines.append, tmp_path / "soak")
    print("\n" + report.render())
    acc = report.accounts
    assert acc.accepted == runner.QUICK.jobs, report.load.unanswered[:10]
    assert not report.load.refused, report.load.refused[:5]
    assert acc.lost == [], acc.lost[:10]
    assert acc.double_commits == [], acc.double_commits[:10]
    assert sorted(f.kind for f in report.faults) == sorted(KINDS)
    # an extra run is explained by a fault that took its worker (or its session) away,
    # never by an attempt that ran twice
    for dup in acc.duplicates:
        assert "within one attempt" not in dup.cause and "missing" not in dup.cause, dup
    assert len(acc.duplicates) <= 0.05 * acc.accepted, acc.causes
    # the partition outlasted the session: its worker's session expired, it rejoined
    assert any(f.kind == "worker-partition" and "expired" in f.note for f in report.faults)
