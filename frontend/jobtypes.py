"""A cap on the distinct job types each tenant may use.

Every new type costs the cluster for as long as it exists: pending znodes, a heap in the
leader, a series per metric.  So a tenant may use at most ``limit`` types
(``ZKQ_MAX_TYPES_PER_TENANT``, 100); a submission that would bring a new one past that is a
409 naming the limit, and writes nothing.

The types a tenant has used are rows of ``tenant_job_types`` (migration 0007).  Each process
remembers the ones it has seen admitted, which are admitted for good, so a submission of
known types costs no query; a new type costs one short transaction under a named lock per
tenant (``GET_LOCK``), so that two frontends admitting different new types at once cannot
both take the last place.  Not ``SELECT ... FOR UPDATE``: for a tenant with no rows yet it
takes only gap locks, which do not exclude each other, and the two inserts then deadlock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import Any

from zkq.coordinator.errors import DatabaseUnavailable, TooManyJobTypes
from zkq.coordinator.mysql import ConnectionPool

#: (tenant, type) pairs remembered per process before the memory starts over
REMEMBER_MAX = 100_000
#: how long an admission waits for another one of the same tenant (seconds)
LOCK_WAIT = 5


class TenantJobTypes:
    def __init__(self, pool: ConnectionPool, limit: int) -> None:
        self.pool = pool
        self.limit = limit
        self._admitted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def admit(self, tenant: str, types: Iterable[str]) -> None:
        """Record ``types`` as used by ``tenant``, or raise :class:`TooManyJobTypes` (and
        record none of them) when the new ones would take it past the limit."""
        with self._lock:
            new = {t for t in types if (tenant, t) not in self._admitted}
        if not new:
            return
        # MySQL's lock names are at most 64 characters: a tenant's name may be longer
        lock = "zkq_types_" + hashlib.sha256(tenant.encode()).hexdigest()[:40]
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (lock, LOCK_WAIT))
            row = cur.fetchone()
            if not row or row[0] != 1:
                raise DatabaseUnavailable(
                    "the job types of this tenant are being recorded by another request; retry"
                )
            try:
                self._record(cur, tenant, new)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
        with self._lock:
            if len(self._admitted) + len(new) > REMEMBER_MAX:
                self._admitted.clear()
            self._admitted.update((tenant, t) for t in new)

    def _record(self, cur: Any, tenant: str, new: set[str]) -> None:
        cur.execute("SELECT job_type FROM tenant_job_types WHERE tenant = %s", (tenant,))
        used = {str(row[0]) for row in cur.fetchall()}
        adding = sorted(new - used)
        if len(used) + len(adding) > self.limit:
            raise TooManyJobTypes(
                f"tenant {tenant!r} may use at most {self.limit} distinct job types and "
                f"has used {len(used)}; this would add {len(adding)} more "
                f"({', '.join(adding[:5])}{', ...' if len(adding) > 5 else ''}): "
                "submit under a type already in use, or ask an operator to raise "
                "ZKQ_MAX_TYPES_PER_TENANT"
            )
        if adding:  # one statement: all of them or none
            cur.execute(
                "INSERT INTO tenant_job_types (tenant, job_type) VALUES "
                + ", ".join(["(%s, %s)"] * len(adding)),
                [v for t in adding for v in (tenant, t)],
            )
