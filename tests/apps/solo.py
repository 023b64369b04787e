"""A type only one test worker serves, so the order in which it runs jobs is observable."""

from __future__ import annotations

import time
from typing import Any

import zkq


@zkq.handler("solo")
def solo(payload: Any, ctx: zkq.JobContext) -> dict[str, Any]:
    began = time.time()
    if isinstance(payload, int | float):
        time.sleep(payload)
    return {"began": began}
