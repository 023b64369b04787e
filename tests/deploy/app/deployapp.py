"""The handlers the deployment tests ship to their worker hosts, as a team ships its own:
a folder with a module, named by the inventory (``worker_app_src``, ``worker_app``)."""

from __future__ import annotations

import socket
import time
from typing import Any

import zkq


@zkq.handler("deploy.echo")
def echo(payload: Any, ctx: zkq.JobContext) -> dict[str, Any]:
    """The payload back, and which worker host ran it."""
    return {"echo": payload, "host": socket.gethostname()}


@zkq.handler("deploy.sleep")
def sleep(payload: dict[str, Any], ctx: zkq.JobContext) -> dict[str, Any]:
    time.sleep(float(payload.get("seconds", 1)))
    return {"slept": payload.get("seconds", 1), "host": socket.gethostname()}
