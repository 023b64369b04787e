"""Handlers: the functions that run jobs, registered by type with a decorator.

::

    from zkq.worker import handler

    @handler("resize")
    def resize(payload, ctx):
        ...                      # return anything JSON-serialisable: the job's result
        ctx.spawn("notify", {"image": payload["image"]})   # optional child jobs

A handler takes the job's payload and a :class:`JobContext`.  Raising fails the attempt
(the traceback is kept in the record); the worker carries on.  Children spawned with
:meth:`JobContext.spawn` are created in the same transaction that records the parent's
success, so they exist exactly when the parent succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zkq.coordinator.store import JobSpec

MAX_CHILDREN = 100


@dataclass
class JobContext:
    """What a handler knows of the job it runs.  Picklable, for process pools."""

    job_id: str
    type: str
    attempt: int
    max_attempts: int
    parent: str | None = None
    children: list[JobSpec] = field(default_factory=list)

    def spawn(
        self,
        job_type: str,
        payload: Any = None,
        priority: int = 0,
        max_attempts: int = 1,
        timeout: float = 300.0,
    ) -> None:
        """Ask for a child job, created when (and only if) this job succeeds."""
        if len(self.children) >= MAX_CHILDREN:
            raise ValueError(f"a job may spawn at most {MAX_CHILDREN} children")
        self.children.append(JobSpec(job_type, payload, priority, max_attempts, timeout))


Handler = Callable[[Any, JobContext], Any]


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def handler(self, job_type: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add(job_type, fn)
            return fn

        return register

    def add(self, job_type: str, fn: Handler) -> None:
        existing = self._handlers.get(job_type)
        if existing is not None and existing is not fn:
            raise ValueError(f"a handler for {job_type!r} is already registered: {existing!r}")
        self._handlers[job_type] = fn

    def get(self, job_type: str) -> Handler:
        return self._handlers[job_type]

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._handlers)


#: the registry ``@handler`` fills, and the one ``zkq worker --app`` serves
registry = Registry()
handler = registry.handler
