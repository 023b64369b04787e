"""A test app: handlers whose results tell the tests in what order and how they ran."""

from __future__ import annotations

import os
import time
from typing import Any

import zkq


@zkq.handler("stamp")
def stamp(payload: Any, ctx: zkq.JobContext) -> dict[str, Any]:
    """Sleeps ``payload`` seconds (if a number) and returns when it began."""
    began = time.time()
    if isinstance(payload, int | float):
        time.sleep(payload)
    return {"began": began, "attempt": ctx.attempt}


@zkq.handler("fanout")
def fanout(payload: Any, ctx: zkq.JobContext) -> int:
    for n in range(int(payload)):
        ctx.spawn("echo", {"child": n})
    return int(payload)


@zkq.handler("flaky")
def flaky(payload: Any, ctx: zkq.JobContext) -> str:
    """Fails until its attempt number reaches ``payload``."""
    if ctx.attempt < int(payload):
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return f"ok on attempt {ctx.attempt}"


@zkq.handler("bigresult")
def bigresult(payload: Any, ctx: zkq.JobContext) -> str:
    return "x" * int(payload)


@zkq.handler("slow-first")
def slow_first(payload: Any, ctx: zkq.JobContext) -> int:
    """Sleeps ``payload`` seconds on its first attempt only: a job that stays running for as
    long as a test needs to do something to its worker, while a later attempt elsewhere ends
    at once (its result is the attempt's number)."""
    if ctx.attempt == 1:
        time.sleep(float(payload))
    return ctx.attempt


@zkq.handler("append")
def append(payload: Any, ctx: zkq.JobContext) -> float:
    """Appends the job's id and a newline to the file ``payload`` names (O_APPEND: whole
    lines, whatever runs at once), so a test counts how many times each job really ran."""
    began = time.time()
    fd = os.open(str(payload), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (ctx.job_id + "\n").encode())
    finally:
        os.close(fd)
    return began
