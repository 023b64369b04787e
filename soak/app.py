"""The soak's job type, run by its workers (``zkq worker --app soak.app``).

Each execution appends one line to a file of its own process before it does anything else,
with ``O_APPEND`` and a single ``write``: the line is in the kernel's page cache when the
call returns, so it survives a ``kill -9`` of the worker (only a crash of the machine would
lose it, which the soak does not cause).  A file per process means no two writers share
one, and the worker's member name (``SOAK_MEMBER``, set by the soak when it starts the
worker) says which member of the cluster ran it.

The result names the execution, so a result written by another execution than the
attempt the record says succeeded shows up at the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from zkq.worker.registry import JobContext, handler

#: where the execution files go (set by the soak in every worker's environment)
RECORD_DIR_ENV = "SOAK_RECORD_DIR"
MEMBER_ENV = "SOAK_MEMBER"
JOB_TYPE = "soak"


def _record(line: dict[str, Any]) -> None:
    directory = Path(os.environ.get(RECORD_DIR_ENV, "."))
    path = directory / f"{os.environ.get(MEMBER_ENV, 'worker')}-{os.getpid()}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
    finally:
        os.close(fd)


@handler(JOB_TYPE, max_attempts=20)
def soak(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Record the execution, then work for ``payload["ms"]`` milliseconds (long enough
    that kills and partitions catch jobs mid-run)."""
    execution = f"{os.environ.get(MEMBER_ENV, 'worker')}:{os.getpid()}:{ctx.attempt}"
    _record(
        {
            "job": ctx.job_id,
            "attempt": ctx.attempt,
            "member": os.environ.get(MEMBER_ENV),
            "pid": os.getpid(),
            "at": time.time(),
        }
    )
    ms = payload.get("ms", 0) if isinstance(payload, dict) else 0
    time.sleep(max(0, min(float(ms), 10_000.0)) / 1000)
    return {"execution": execution}
