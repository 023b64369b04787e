"""zkq's one exception tree, for every process and for clients over HTTP alike.

::

    ZkqError                    .code; over HTTP also .status and .retry_after
    ├── ConfigError             a setting is missing or malformed
    ├── InvalidInput            the caller's mistake: fix the request and send it again
    │   ├── MalformedRequest    bad JSON, a wrong type, an unknown field
    │   ├── InvalidJobId        not a job id zkq could have issued
    │   ├── UnsupportedMediaType  a body that is not JSON
    │   └── PayloadTooLarge     payload or result over the configured limit
    │       └── BodyTooLarge    a whole request body over the server's limit
    ├── Unauthenticated         no API key, or one nobody knows
    ├── Forbidden               the API key lacks the scope
    ├── NotFound                no such thing (a route, for one)
    │   ├── JobNotFound         never existed, or pruned and not archived (or another tenant's)
    │   ├── WorkerNotFound      no live worker with that id
    │   └── ApiKeyNotFound      no API key with that id or prefix
    ├── MethodNotAllowed        .allowed: the methods the route has
    ├── Conflict                the request collides with the job's current state
    │   ├── InvalidTransition   e.g. cancelling a job that already succeeded
    │   ├── JobIdTaken          a job id reused with different contents
    │   ├── IdempotencyKeyReused  an Idempotency-Key reused for another request
    │   ├── Fenced              lost a version race: another actor changed the job first
    │   └── TooManyJobTypes     a new job type past the tenant's limit of distinct types
    ├── RateLimited             over the API key's rate: wait .retry_after seconds
    ├── DatabaseError           MySQL refused a statement: schema not migrated, or a bug
    ├── LeadershipLost          a coordinator acted as leader after its election node was gone
    ├── InternalError           a bug on the server (it is logged there)
    ├── WaitTimeout             (also a builtin TimeoutError) a client's wait() ran out of
    │                           time before the job ended; .job is the record as it was then
    └── Unavailable             ZooKeeper cannot be reached (or the session is gone): retry later
        ├── Timeout             gave up waiting
        │   └── GatewayTimeout  the load balancer had no answer in time
        ├── ConnectionLost      (coordinator.zk.errors) a ZooKeeper request may or may not
        │                       have been applied; RequestTimedOut is also a Timeout
        ├── BadGateway          the load balancer got a bad answer from a frontend
        └── DatabaseUnavailable  MySQL cannot be reached or dropped the connection

Every class has its own ``code``, the machine-readable name an HTTP error body carries;
:func:`from_code` turns a code back into its class, so the HTTP client raises exactly
what the server raised.  kazoo's exceptions are translated in exactly one place,
:mod:`zkq.coordinator.zk.kazoo_session` (into these, or into the outcomes of
:mod:`zkq.coordinator.zk.errors` that callers inspect), and pymysql's in one other,
:mod:`zkq.coordinator.mysql`, each with ``raise ... from exc``.  Which HTTP status each
class gets is chosen in one table, :mod:`zkq.frontend.errors`; nothing here depends on HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from zkq.coordinator.job import Job


class ZkqError(Exception):
    """Base of every error zkq raises on purpose."""

    #: a short stable identifier, the machine-readable code of an HTTP error body
    code = "zkq_error"
    #: the HTTP status the error came with, when the HTTP client raised it
    status: int | None = None
    #: seconds the server asked the caller to wait before trying again, when it said
    retry_after: float | None = None

    @classmethod
    def from_message(cls, message: str) -> Self:
        """The error as rebuilt from an error body, which carries only its message."""
        return cls(message)


class ConfigError(ZkqError):
    code = "config_error"


class InvalidInput(ZkqError):
    code = "invalid_input"


class MalformedRequest(InvalidInput):
    code = "malformed_request"


class InvalidJobId(InvalidInput):
    code = "invalid_job_id"


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class BodyTooLarge(PayloadTooLarge):
    code = "body_too_large"


class Unauthenticated(ZkqError):
    code = "unauthenticated"


class Forbidden(ZkqError):
    code = "forbidden"


class NotFound(ZkqError):
    code = "not_found"


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: str | None = None, message: str | None = None) -> None:
        super().__init__(message or f"no job {job_id!r}: check the id, or it may have been pruned")
        #: None when rebuilt from an HTTP error body, which names the job only in its message
        self.job_id = job_id

    @classmethod
    def from_message(cls, message: str) -> Self:
        return cls(None, message)


class WorkerNotFound(NotFound):
    code = "worker_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class MethodNotAllowed(ZkqError):
    code = "method_not_allowed"

    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed or []


class Conflict(ZkqError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class JobIdTaken(Conflict):
    code = "job_id_taken"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class Fenced(Conflict):
    """The job record's version moved on: another actor owns the job now."""

    code = "fenced"


class TooManyJobTypes(Conflict):
    """The tenant has used as many distinct job types as it may."""

    code = "too_many_job_types"


class RateLimited(ZkqError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseError(ZkqError):
    """MySQL refused a statement for a reason retrying will not fix."""

    code = "database_error"


class LeadershipLost(ZkqError):
    code = "leadership_lost"


class InternalError(ZkqError):
    """A bug on the server side; the server logged it with its traceback."""

    code = "internal_error"


class WaitTimeout(ZkqError, TimeoutError):
    """``wait()`` gave up before the job ended (or its ``until`` held).  Not an error of the
    cluster: the job may still be pending or running.  ``.job`` is its record as last read,
    so a caller can tell where it was, wait again, or cancel it."""

    code = "wait_timeout"

    def __init__(self, message: str, job: Job | None = None) -> None:
        super().__init__(message)
        #: the job as it was when the wait gave up; None when rebuilt from an error body
        self.job = job

    @classmethod
    def waited(cls, job: Job, timeout: float) -> WaitTimeout:
        return cls(
            f"job {job.id} was still {job.state} after waiting {timeout:g}s: wait again with a "
            "longer timeout, or cancel it (.job is the record as it was then)",
            job,
        )


class Unavailable(ZkqError):
    code = "unavailable"


class Timeout(Unavailable):
    code = "timeout"


class GatewayTimeout(Timeout):
    code = "gateway_timeout"


class BadGateway(Unavailable):
    code = "bad_gateway"


class DatabaseUnavailable(Unavailable):
    """MySQL is down, unreachable, refused our login or dropped the connection."""

    code = "database_unavailable"


def _tree(cls: type[ZkqError]) -> Iterator[type[ZkqError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _tree(sub)


def _codes() -> dict[str, type[ZkqError]]:
    # Only this module's classes: a subclass defined elsewhere (the dev launcher's) is not
    # an answer a server gives, and the table must not depend on what happens to be imported.
    table: dict[str, type[ZkqError]] = {}
    for cls in _tree(ZkqError):
        if cls.__module__ != __name__:
            continue
        if cls.code in table:
            raise RuntimeError(f"{cls.__name__} and {table[cls.code].__name__} share a code")
        table[cls.code] = cls
    return table


#: every code of the tree, and its class: the one table both sides of HTTP use
CODES: dict[str, type[ZkqError]] = _codes()


def from_code(code: str, message: str) -> ZkqError:
    """The error an error body's ``code`` names.  A code this version does not know (a
    newer server's, or one a proxy made up) gives a plain :class:`ZkqError` carrying it."""
    cls = CODES.get(code)
    if cls is None:
        error = ZkqError(message)
        error.code = code
        return error
    return cls.from_message(message)
