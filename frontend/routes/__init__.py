"""The API's routes, one module per resource; importing them registers them with
:data:`frontend.api.api`."""

from zkq.frontend.routes import cluster, health, jobs

__all__ = ["cluster", "health", "jobs"]
