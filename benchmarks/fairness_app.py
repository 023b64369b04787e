"""The two types of the fairness demonstration (``zkq bench fairness`` and
tests/cluster/test_fairness.py): served with ``zkq worker --app benchmarks.fairness_app``."""

from __future__ import annotations

import time
from typing import Any

import zkq

LONG = "fair-long"
SHORT = "fair-short"


@zkq.handler(LONG, lane="long", timeout=600)
def long_job(payload: Any, ctx: zkq.JobContext) -> str:
    """Runs ``payload`` seconds (60 by default), but ends as soon as its attempt is
    cancelled, so a cancelled run frees its slot at once."""
    seconds = float(payload) if isinstance(payload, int | float) else 60.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return "cancelled"
        time.sleep(0.1)
    return "slept"


@zkq.handler(SHORT, lane="short")
def short_job(payload: Any, ctx: zkq.JobContext) -> str:
    time.sleep(0.001)
    return "ok"
