"""Cooperative handlers for the lease tests: each polls its attempt's lease and writes what
it saw to the marker file its payload names, so a test can tell that it stopped and why."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from zkq.worker.control import Cancelled
from zkq.worker.registry import JobContext, Registry

registry = Registry()

#: how long a handler waits for what the test expects before it gives up (a test's bound)
PATIENCE = 60.0


def _mark(payload: dict[str, Any], text: str) -> None:
    Path(payload["marker"]).write_text(text)


@registry.handler("renewing", max_attempts=1, timeout=2)
def renewing(payload: dict[str, Any], ctx: JobContext) -> str:
    """Runs ``seconds``, far past its timeout of 2 s, renewing its lease as it goes: once
    with ``extend`` (mode "extend") or with a heartbeat every few tenths (mode "beat")."""
    if payload["mode"] == "extend":
        ctx.extend(30)
    end = time.monotonic() + payload["seconds"]
    while time.monotonic() < end:
        if payload["mode"] == "beat":
            ctx.heartbeat()
        time.sleep(0.2)
    return "done"


@registry.handler("polite", max_attempts=1, timeout=2)
def polite(payload: dict[str, Any], ctx: JobContext) -> str:
    """Never renews; waits until its attempt is over (taken back or cancelled), then says
    why, and what told it: its next heartbeat, or the pool stopping it."""
    if payload.get("renew"):
        ctx.extend(payload["renew"])
    end = time.monotonic() + PATIENCE
    try:
        while not ctx.cancelled and time.monotonic() < end:
            time.sleep(0.05)
        ctx.heartbeat()
        raised = "nothing"
    except Cancelled as exc:
        # at its next heartbeat; or raised into its thread by the pool, which stops an
        # attempt taken back at once (another worker may already run the job)
        raised = type(exc).__name__
    _mark(payload, f"{ctx.cancel_reason} {raised}")
    return "stopped"


@registry.handler("quick", max_attempts=1, timeout=30)
def quick(payload: Any, ctx: JobContext) -> Any:
    return payload
