"""An Idempotency-Key claimed in MySQL whose ZooKeeper write then failed.

The claim (an INSERT into ``idempotency_keys``) comes before the write to ZooKeeper, so a
frontend that loses ZooKeeper in between leaves a claimed key and no job.  The client
must be told to retry (a 503 with ``Retry-After``, as docs/http.md promises), and its
retry with the same key, to any frontend, must make exactly one job: the one whose id was
claimed, not "already claimed" forever and not a second job.

Two real frontend applications on the session's MariaDB and ZooKeeper: ``cut`` reaches
ZooKeeper through a :class:`CuttingProxy`, ``whole`` directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.mysql_support import fresh_database, pool_of, query
from zkq.coordinator.mysql import MySQLSettings
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.frontend.app import create_app
from zkq.frontend.keys import KeyStore
from zkq.frontend.resources import of

pytestmark = pytest.mark.integration


@dataclass
class Frontends:
    cut: Flask
    whole: Flask
    proxy: CuttingProxy
    mysql: MySQLSettings
    headers: dict[str, str]


@pytest.fixture
def frontends(ensemble: ZooKeeperEnsemble, mariadb: MariaDBServer) -> Iterator[Frontends]:
    mysql = fresh_database(mariadb)
    root = f"/idem-zk-{uuid.uuid4().hex[:8]}"
    with pool_of(mysql) as pool:
        _, secret = KeyStore(pool).create("acme", "submit,read", "t", None)
    with CuttingProxy("127.0.0.1", ensemble.client_port(0)) as proxy:
        cut = create_app(
            {"ZK_HOSTS": f"127.0.0.1:{proxy.port}", "ROOT": root, "MYSQL_URL": mysql.url}
        )
        try:
            whole = create_app(
                {"ZK_HOSTS": ensemble.connect_string, "ROOT": root, "MYSQL_URL": mysql.url}
            )
            try:
                yield Frontends(cut, whole, proxy, mysql, {"Authorization": f"Bearer {secret}"})
            finally:
                of(whole).stop()
        finally:
            of(cut).stop()


def submit(app: Flask, headers: dict[str, str], key: str, job_type: str) -> Any:
    return app.test_client().post(
        "/v1/jobs",
        json={"type": job_type, "payload": {"key": key}},
        headers={**headers, "Idempotency-Key": key},
    )


def jobs_of_type(app: Flask, headers: dict[str, str], job_type: str) -> list[str]:
    r = app.test_client().get("/v1/jobs", query_string={"type": job_type}, headers=headers)
    assert r.status_code == 200, r.get_json()
    assert not r.get_json().get("next_cursor")
    return [j["id"] for j in r.get_json()["jobs"]]


def claimed_ids(f: Frontends, mariadb: MariaDBServer, key: str) -> list[str]:
    rows = query(
        mariadb,
        f.mysql.database,
        "SELECT job_ids FROM idempotency_keys WHERE idem_key = %s",
        key,
    )
    return [str(ids) for (ids,) in rows]


def connect_cut(f: Frontends, job_type: str) -> None:
    """Connect the ``cut`` frontend to ZooKeeper (its first request does), before a test
    takes ZooKeeper away from it."""
    warm = f.cut.test_client().get("/v1/jobs", query_string={"type": job_type}, headers=f.headers)
    assert warm.status_code == 200, warm.get_json()


def test_a_claimed_key_whose_write_never_reached_zookeeper_is_retried_into_one_job(
    frontends: Frontends, mariadb: MariaDBServer
) -> None:
    f = frontends
    job_type = f"t{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    connect_cut(f, job_type)
    f.proxy.partition()
    wait_until(
        lambda: not of(f.cut).zk.connected,
        60,
        interval=0.1,
        what="the cut frontend to notice it lost ZooKeeper",
    )
    first = submit(f.cut, f.headers, key, job_type)
    assert first.status_code == 503, first.get_json()
    assert first.get_json()["error"]["code"] == "unavailable"
    assert int(first.headers["Retry-After"]) >= 1
    # the key was claimed before the write failed: that is the corner under test
    [claimed] = claimed_ids(f, mariadb, key)
    assert jobs_of_type(f.whole, f.headers, job_type) == []
    # the client retries with the same key, and another frontend makes the claimed job
    retry = submit(f.whole, f.headers, key, job_type)
    assert retry.status_code == 201, retry.get_json()
    assert retry.get_json()["id"] == claimed
    assert retry.headers["Idempotent-Replayed"] == "true"
    # once ZooKeeper is back, the frontend that failed finds that job too
    f.proxy.heal()
    wait_until(
        lambda: of(f.cut).zk.connected,
        60,
        interval=0.1,
        what="the cut frontend to reconnect to ZooKeeper",
    )
    again = submit(f.cut, f.headers, key, job_type)
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["id"] == claimed
    assert jobs_of_type(f.whole, f.headers, job_type) == [claimed]


def test_a_claimed_key_whose_write_lost_its_reply_is_retried_into_one_job(
    frontends: Frontends, mariadb: MariaDBServer
) -> None:
    f = frontends
    job_type = f"t{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    connect_cut(f, job_type)
    # the write reaches ZooKeeper and is applied; its reply never comes back
    f.proxy.cut_after_next_request(min_bytes=200)
    first = submit(f.cut, f.headers, key, job_type)
    assert f.proxy.cuts == 1, "the reply was not lost: the test proves nothing"
    [claimed] = claimed_ids(f, mariadb, key)
    # the frontend retries the write itself (submission by id is idempotent), or tells
    # the client to; never a second job, never another error
    if first.status_code == 201:
        assert first.get_json()["id"] == claimed
    else:
        assert first.status_code == 503, first.get_json()
        assert int(first.headers["Retry-After"]) >= 1
    # the write was applied before its reply was lost (what this test is about): the job
    # is there before anyone retries (waited for: the other app's member may lag)
    wait_until(
        lambda: jobs_of_type(f.whole, f.headers, job_type) == [claimed],
        30,
        what="the job whose reply was lost to be in ZooKeeper",
    )
    retry = submit(f.whole, f.headers, key, job_type)
    assert retry.status_code == 201, retry.get_json()
    assert retry.get_json()["id"] == claimed
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert jobs_of_type(f.whole, f.headers, job_type) == [claimed]
