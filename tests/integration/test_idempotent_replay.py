"""An Idempotency-Key replayed at any age within the key's retention returns the original
job, never a 400: the ids stored with the key were chosen when it was first used, and are
not held to the clock skew allowed for a new id.  Aged without waiting: the key's row is
given ids dated hours ago, as a submission made then would have left it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.mysql_support import fresh_database, pool_of
from zkq.coordinator.ids import id_for_time
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.frontend.app import create_app
from zkq.frontend.keys import KeyStore
from zkq.frontend.resources import of


@pytest.fixture
def app(ensemble: ZooKeeperEnsemble, mariadb: MariaDBServer) -> Iterator[Flask]:
    mysql = fresh_database(mariadb)
    app = create_app(
        {
            "ZK_HOSTS": ensemble.connect_string,
            "ROOT": f"/idem-{uuid.uuid4().hex[:8]}",
            "MYSQL_URL": mysql.url,
        }
    )
    with pool_of(mysql) as pool:
        _, app.config["TEST_SECRET"] = KeyStore(pool).create("acme", "submit,read", "t", None)
    try:
        yield app
    finally:
        of(app).stop()


def age_the_key(app: Flask, key: str, job_id: str, hours: float) -> None:
    """Make the key's row what a first use ``hours`` ago left: ids dated then."""
    with of(app).mysql.pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET job_ids = %s, "
            "created_at = UTC_TIMESTAMP(6) - INTERVAL %s SECOND WHERE idem_key = %s",
            (job_id, int(hours * 3600), key),
        )
        assert cur.rowcount == 1


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/batch"])
def test_a_replay_hours_later_returns_the_original_job(app: Flask, path: str) -> None:
    client = app.test_client()
    key = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {app.config['TEST_SECRET']}", "Idempotency-Key": key}
    one = {"type": "nobody-serves-this", "payload": {"k": key}}
    body = one if path == "/v1/jobs" else {"jobs": [one]}

    def ids(response: object) -> list[str]:
        data = response.get_json()  # type: ignore[attr-defined]
        return [j["id"] for j in data["jobs"]] if "jobs" in data else [data["id"]]

    first = client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    # the first use was three hours ago, and the frontend that made it died before it
    # wrote the job: the replay writes it, under the id chosen then
    old_id = id_for_time(time.time() - 3 * 3600)
    age_the_key(app, key, old_id, hours=3)
    replay = client.post(path, json=body, headers=headers)
    assert replay.status_code == 201, replay.get_json()
    assert ids(replay) == [old_id] and replay.headers["Idempotent-Replayed"] == "true"
    # and once written, a later replay finds it
    again = client.post(path, json=body, headers=headers)
    assert again.status_code == 201, again.get_json()
    assert ids(again) == [old_id]
    got = client.get(f"/v1/jobs/{old_id}", headers=headers)
    assert got.status_code == 200 and got.get_json()["state"] == "pending"
