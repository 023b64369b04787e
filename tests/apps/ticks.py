"""A test app: a handler that leaves a trace of every run, for counting runs per job."""

from __future__ import annotations

import os
from typing import Any

import zkq


@zkq.handler("append-id")
def append_id(payload: Any, ctx: zkq.JobContext) -> str:
    """Appends this job's id as one line to the file ``payload["file"]``.  One write with
    O_APPEND: lines from concurrent runs on any worker never interleave."""
    fd = os.open(payload["file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.job_id}\n".encode())
    finally:
        os.close(fd)
    return ctx.job_id
