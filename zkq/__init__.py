"""zkq's public API: what an application needs, in one import.

::

    import zkq

    @zkq.handler("resize", max_attempts=3, timeout=60)      # a worker app's handler
    def resize(payload, ctx):
        return {"width": 640}

    client = zkq.HttpClient("http://lb:8080", api_key=KEY)  # over HTTP, from anywhere
    client = zkq.Client.connect("zk1:2181,zk2:2181")        # inside the cluster: ZooKeeper
    job = resize.submit({"image": "a.png"}, client=client)  # through either
    done = client.wait(job.id, timeout=60)                  # zkq.WaitTimeout if not ended
    if done.state is zkq.JobState.SUCCEEDED: ...

Errors are one tree, rooted at :class:`ZkqError` (drawn in :mod:`zkq.coordinator.errors`), and
the HTTP client raises the same classes as the rest.  This package is also the ``zkq``
command's, so importing it stays cheap: the clients and the handler registry (kazoo,
``requests``) are imported on first use, and never Flask, the frontend, the benchmarks or
the local cluster launcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkq.coordinator.errors import (
    ApiKeyNotFound,
    BadGateway,
    BodyTooLarge,
    ConfigError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    Fenced,
    Forbidden,
    GatewayTimeout,
    IdempotencyKeyReused,
    InternalError,
    InvalidInput,
    InvalidJobId,
    InvalidTransition,
    JobIdTaken,
    JobNotFound,
    LeadershipLost,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Timeout,
    TooManyJobTypes,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    WaitTimeout,
    WorkerNotFound,
    ZkqError,
)
from zkq.coordinator.job import Job, JobState

if TYPE_CHECKING:
    from zkq.coordinator.backoff import Backoff
    from zkq.coordinator.client import Client
    from zkq.http_client import HttpClient
    from zkq.worker.control import Cancelled, LeaseLost, Retry
    from zkq.worker.registry import JobContext, Registry, handler, set_client

__all__ = [
    "ApiKeyNotFound",
    "Backoff",
    "BadGateway",
    "BodyTooLarge",
    "Cancelled",
    "Client",
    "ConfigError",
    "Conflict",
    "DatabaseError",
    "DatabaseUnavailable",
    "Fenced",
    "Forbidden",
    "GatewayTimeout",
    "HttpClient",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidInput",
    "InvalidJobId",
    "InvalidTransition",
    "Job",
    "JobContext",
    "JobIdTaken",
    "JobNotFound",
    "JobState",
    "LeadershipLost",
    "LeaseLost",
    "MalformedRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Registry",
    "Retry",
    "Timeout",
    "TooManyJobTypes",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMediaType",
    "WaitTimeout",
    "WorkerNotFound",
    "ZkqError",
    "handler",
    "set_client",
]


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): every `zkq` command imports this package, and a
    # web application that only submits over HTTP should not load kazoo, nor a worker
    # load `requests`.  Once found, a name is kept, so this runs once per name.
    value: Any
    if name == "Client":
        from zkq.coordinator.client import Client

        value = Client
    elif name == "HttpClient":
        from zkq.http_client import HttpClient

        value = HttpClient
    elif name == "Backoff":
        from zkq.coordinator.backoff import Backoff

        value = Backoff
    elif name in ("Cancelled", "LeaseLost", "Retry"):
        from zkq.worker import control

        value = getattr(control, name)
    elif name in ("JobContext", "Registry", "handler", "set_client"):
        from zkq.worker import registry

        value = getattr(registry, name)
    else:
        raise AttributeError(f"module 'zkq' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
