"""A test app that keeps a registry of its own, not the one ``@zkq.handler`` fills: its
types exist only where that registry is served."""

from __future__ import annotations

import os
from typing import Any

from zkq.worker.registry import JobContext, Registry

registry = Registry()


@registry.handler("own", max_attempts=2, timeout=30)
def own(payload: Any, ctx: JobContext) -> dict[str, Any]:
    """Spawns its child by type name: the child's declared defaults come from this
    registry, through the context, also in a process pool."""
    ctx.spawn("own-child", payload)
    return {"pid": os.getpid(), "payload": payload}


@registry.handler("own-child", priority=7, max_attempts=4)
def own_child(payload: Any, ctx: JobContext) -> Any:
    return payload
