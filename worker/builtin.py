"""Built-in job types for demos, tests and benchmarks (``zkq worker --app zkq.worker.builtin``).

========  ===========================  ===========================================
type      payload                      does
========  ===========================  ===========================================
noop      anything                     nothing; returns null
echo      anything                     returns the payload
sleep     seconds (number)             sleeps, returns the seconds slept
fail      message (string, optional)   raises RuntimeError
cpu       seconds (number)             burns one core for that long (try a process pool)
========  ===========================  ===========================================

Each is a handle like any app's: ``echo.submit(payload, client=...)`` or
``ctx.spawn(echo, ...)``.  None declares defaults of its own, so a built-in job gets the
same settings whether it is submitted through its handle or by name (``zkq submit``, HTTP).
"""

from __future__ import annotations

import time
from typing import Any

from zkq.worker.registry import JobContext, handler


def _seconds(payload: Any) -> float:
    if isinstance(payload, dict):
        payload = payload.get("seconds", 0)
    if isinstance(payload, bool) or not isinstance(payload, int | float) or payload < 0:
        raise ValueError("payload must be a non-negative number of seconds")
    return float(payload)


@handler("noop")
def noop(payload: Any, ctx: JobContext) -> None:
    return None


@handler("echo")
def echo(payload: Any, ctx: JobContext) -> Any:
    return payload


@handler("sleep")
def sleep(payload: Any, ctx: JobContext) -> float:
    seconds = _seconds(payload)
    time.sleep(seconds)
    return seconds


@handler("fail")
def fail(payload: Any, ctx: JobContext) -> None:
    raise RuntimeError(payload if isinstance(payload, str) else "failed on purpose")


@handler("cpu")
def cpu(payload: Any, ctx: JobContext) -> dict[str, float]:
    seconds = _seconds(payload)
    deadline = time.thread_time() + seconds
    loops = 0
    while time.thread_time() < deadline:
        for _ in range(10_000):
            loops += 1
    return {"seconds": seconds, "loops": float(loops)}
