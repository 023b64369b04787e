"""The zkq worker: serves the job types its app registers (see :mod:`worker.registry`)."""

from worker.registry import JobContext, Registry, handler, registry

__all__ = ["JobContext", "Registry", "handler", "registry"]
