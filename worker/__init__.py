"""The zkq worker: serves the job types its app registers (see :mod:`zkq.worker.registry`)."""

from zkq.worker.registry import JobContext, Registry, handler, registry

__all__ = ["JobContext", "Registry", "handler", "registry"]
