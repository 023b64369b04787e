"""The API's routes, one module per resource; importing them registers them with
:data:`frontend.api.api`."""

from zkq.frontend.routes import bulk, cluster, health, jobs, schedules

__all__ = ["bulk", "cluster", "health", "jobs", "schedules"]
