"""A cap on the distinct job types each tenant may use.

Every new type costs the cluster for as long as it exists: pending znodes, a heap in the
leader, a series per metric.  So a tenant may use at most ``limit`` types
(``ZKQ_MAX_TYPES_PER_TENANT``, 100); a submission that would bring a new one past that is a
409 naming the limit, and writes nothing.

The types a tenant has used are rows of ``tenant_job_types`` (migration 0007).  Each process
remembers the ones it has seen admitted, which are admitted for good, so a submission of
known types costs no query; a new type costs one short transaction, which locks the
tenant's rows (``FOR UPDATE``) so that two frontends admitting different new types at once
cannot both take the last place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from zkq.coordinator.errors import TooManyJobTypes
from zkq.coordinator.mysql import ConnectionPool

#: (tenant, type) pairs remembered per process before the memory starts over
REMEMBER_MAX = 100_000


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
        with self.pool.connection() as conn, conn.cursor() as cur:
            conn.begin()
            cur.execute(
                "SELECT job_type FROM tenant_job_types WHERE tenant = %s FOR UPDATE", (tenant,)
            )
            used = {str(row[0]) for row in cur.fetchall()}
            adding = sorted(new - used)
            if len(used) + len(adding) > self.limit:
                conn.rollback()
                raise TooManyJobTypes(
                    f"tenant {tenant!r} may use at most {self.limit} distinct job types and "
                    f"has used {len(used)}; this would add {len(adding)} more "
                    f"({', '.join(adding[:5])}{', ...' if len(adding) > 5 else ''}): "
                    "submit under a type already in use, or ask an operator to raise "
                    "ZKQ_MAX_TYPES_PER_TENANT"
                )
            if adding:
                cur.executemany(
                    "INSERT INTO tenant_job_types (tenant, job_type) VALUES (%s, %s)",
                    [(tenant, t) for t in adding],
                )
            conn.commit()
        with self._lock:
            if len(self._admitted) + len(new) > REMEMBER_MAX:
                self._admitted.clear()
            self._admitted.update((tenant, t) for t in new)
