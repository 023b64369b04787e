"""The cap on distinct job types per tenant, against a real MariaDB."""

from __future__ import annotations

import threading

import pytest

from tests.mysql_support import query, selects
from zkq.coordinator.errors import Conflict, TooManyJobTypes
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.mariadb import MariaDBServer
from zkq.frontend.jobtypes import TenantJobTypes

pytestmark = pytest.mark.integration


def test_a_tenant_gets_its_limit_of_types_and_not_one_more(
    mariadb: MariaDBServer, database: MySQLSettings, pool: ConnectionPool
) -> None:
    frontend, other_frontend = TenantJobTypes(pool, limit=3), TenantJobTypes(pool, limit=3)
    frontend.admit("acme", {"a", "b"})
    other_frontend.admit("acme", {"b", "c"})  # one new: the third
    frontend.admit("acme", {"a", "c"})  # known types stay free to use
    with pytest.raises(TooManyJobTypes, match="at most 3 distinct job types") as refused:
        frontend.admit("acme", {"a", "d"})
    assert isinstance(refused.value, Conflict)  # a 409
    assert "ZKQ_MAX_TYPES_PER_TENANT" in str(refused.value)
    other_frontend.admit("globex", {"d"})  # another tenant's count is its own
    rows = query(mariadb, database.database, "SELECT tenant, job_type FROM tenant_job_types")
    assert sorted(rows) == [("acme", "a"), ("acme", "b"), ("acme", "c"), ("globex", "d")]


def test_known_types_cost_no_query(mariadb: MariaDBServer, pool: ConnectionPool) -> None:
    types = TenantJobTypes(pool, limit=10)
    types.admit("acme", {"a"})
    before = selects(mariadb)
    for _ in range(20):
        types.admit("acme", {"a"})
    assert selects(mariadb) == before


def test_frontends_admitting_a_new_tenants_first_types_at_once_take_turns(
    mariadb: MariaDBServer, database: MySQLSettings, pool: ConnectionPool
) -> None:
    # a tenant with no rows yet: row locks would find nothing to lock, and two admissions
    # at once would deadlock (a 503) instead of one taking the last place
    rounds, frontends = 10, 4
    for round_ in range(rounds):
        tenant = f"new-{round_}"
        barrier = threading.Barrier(frontends)
        outcomes: list[str] = []

        def admit(
            i: int,
            tenant: str = tenant,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            types = TenantJobTypes(pool, limit=1)
            barrier.wait()
            try:
                types.admit(tenant, {f"type-{i}"})
                outcomes.append("admitted")
            except TooManyJobTypes:
                outcomes.append("refused")
            except Exception as exc:  # what else came out is the finding
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=admit, args=(i,)) for i in range(frontends)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["admitted"] + ["refused"] * (frontends - 1), outcomes
    rows = query(mariadb, database.database, "SELECT COUNT(*) FROM tenant_job_types")
    assert rows == [(rounds,)]
