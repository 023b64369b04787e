"""zkq's one exception tree.

::

    ZkqError
    ├── ConfigError            a setting is missing or malformed
    ├── InvalidInput           the caller's mistake: fix the request and send it again
    │   ├── PayloadTooLarge    payload or result over the configured limit
    │   └── InvalidJobId       not a job id zkq could have issued
    ├── JobNotFound            no such job (never existed, or pruned and not archived)
    ├── ApiKeyNotFound         no API key with that id or prefix
    ├── Conflict               the request collides with the job's current state
    │   ├── InvalidTransition  e.g. cancelling a job that already succeeded
    │   ├── JobIdTaken         a job id reused with different contents
    │   └── Fenced             lost a version race: another actor changed the job first
    ├── DatabaseError          MySQL refused a statement: schema not migrated, or a bug
    ├── LeadershipLost         a coordinator acted as leader after its election node was gone
    └── Unavailable            ZooKeeper cannot be reached (or the session is gone): retry later
        ├── Timeout            gave up waiting
        └── DatabaseUnavailable  MySQL cannot be reached or dropped the connection: retry later

kazoo's exceptions are translated into these in exactly one place, :mod:`zkq.coordinator.zk`,
and pymysql's in one other, :mod:`zkq.coordinator.mysql`, each with ``raise ... from exc``.
Nothing in this package knows about HTTP; the frontend maps these classes to statuses in
one table.
"""

from __future__ import annotations


class ZkqError(Exception):
    """Base of every error zkq raises on purpose."""

    #: a short stable identifier, usable as a machine-readable error code
    code = "zkq_error"


class ConfigError(ZkqError):
    code = "config_error"


class InvalidInput(ZkqError):
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class InvalidJobId(InvalidInput):
    code = "invalid_job_id"


class JobNotFound(ZkqError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}: check the id, or it may have been pruned")
        self.job_id = job_id


class Conflict(ZkqError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class JobIdTaken(Conflict):
    code = "job_id_taken"


class Fenced(Conflict):
    """The job record's version moved on: another actor owns the job now."""

    code = "fenced"


class LeadershipLost(ZkqError):
    code = "leadership_lost"


class Unavailable(ZkqError):
    code = "unavailable"


class Timeout(Unavailable):
    code = "timeout"


class DatabaseUnavailable(Unavailable):
    """MySQL is down, unreachable, refused our login or dropped the connection."""

    code = "database_unavailable"


class DatabaseError(ZkqError):
    """MySQL refused a statement for a reason retrying will not fix."""

    code = "database_error"


class ApiKeyNotFound(ZkqError):
    code = "api_key_not_found"
