"""The zkq worker: serves the job types its app registers (see :mod:`zkq.worker.registry`).
Applications write handlers with ``zkq.handler``; these names are the worker's own."""

from zkq.worker.registry import Handler, JobContext, JobDefaults, Registry, handler

# (not the default registry itself: it would hide the submodule `worker.registry`)
__all__ = ["Handler", "JobContext", "JobDefaults", "Registry", "handler"]
