"""The whole stack, started through :class:`DevCluster` the way ``zkq dev up`` does:
ZooKeeper x3, MariaDB, two coordinators, two workers (``zkq.worker.builtin``), two gunicorn
frontends and HAProxy.  Brought down by pid when the fixture ends, also on failure.

``stack`` is shared by the cluster tier (tests/teardown.py ends it with the tier's last
test, so it is never up while another tier runs) and must be left as found; the fault tests start
a stack of their own (``fault_stack``) because they break it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import SESSION_MS
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.cluster import DevCluster
from zkq.dev.frontends import haproxy_servers
from zkq.dev.waiting import wait_until
from zkq.frontend.keys import KeyStore
from zkq.http_client import HttpClient

#: seconds a finished job stays in ZooKeeper before it is archived and pruned
RETENTION = 3
#: how API keys of the tests are made: name -> (tenant, scopes, requests a minute)
KEYS: dict[str, tuple[str, str, int | None]] = {
    "alice": ("acme", "submit,read,admin", 1_000_000),
    "bob": ("globex", "submit,read", 1_000_000),
    "reader": ("acme", "read", 1_000_000),
    "submitter": ("acme", "submit", 1_000_000),
}


@dataclass
class Stack:
    cluster: DevCluster
    url: str  # HAProxy
    keys: dict[str, str] = field(default_factory=dict)  # name -> secret
    key_ids: dict[str, int] = field(default_factory=dict)

    @property
    def pool(self) -> ConnectionPool:
        return ConnectionPool(MySQLSettings.from_url(self.cluster.mysql_url), max_size=2)

    def frontend_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.cluster.member(name).ports['http']}"

    def auth(self, name: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def client(self, name: str = "alice", url: str | None = None) -> HttpClient:
        return HttpClient(url or self.url, self.keys[name], timeout=10.0)

    def new_key(self, tenant: str, scopes: str, rate_limit: int | None) -> tuple[int, str]:
        pool = self.pool
        try:
            return KeyStore(pool).create(tenant, scopes, f"test-{uuid.uuid4().hex[:6]}", rate_limit)
        finally:
            pool.close()

    def servers(self) -> dict[str, str]:
        """HAProxy's view of the frontends: name -> UP / DOWN / ..."""
        return haproxy_servers(self.cluster.member("haproxy"))

    def wait_servers(self, wanted: dict[str, str], timeout: float = 20.0) -> None:
        wait_until(
            lambda: all(self.servers().get(k, "").startswith(v) for k, v in wanted.items()),
            timeout,
            interval=0.05,
            what=f"HAProxy to see {wanted} (it sees {self.servers()})",
        )


@contextmanager
def running_stack(state_dir: Path, **options: Any) -> Iterator[Stack]:
    cluster = DevCluster(state_dir)
    try:
        cluster.up(
            workers=2,
            coordinators=2,
            worker_app="zkq.worker.builtin",
            worker_concurrency=4,
            tick_ms=200,
            session_timeout_ms=SESSION_MS,
            timeout=120.0,
            mysql=True,
            frontends=2,
            # finished jobs leave ZooKeeper for the archive after 3 s, so the API's
            # fallback to the archive is exercised by every test, not just one; and
            # schemathesis submits a new job type nearly every case and tries invalid keys
            # over and over from one address, far past the default caps (their own tests,
            # test_job_type_cap.py and test_auth_flood.py, start frontends with them)
            env={
                "ZKQ_RETENTION": str(RETENTION),
                "ZKQ_MAX_TYPES_PER_TENANT": "1000000",
                "ZKQ_AUTH_FAILURES_PER_MINUTE": "1000000",
            },
            **options,
        )
        stack = Stack(cluster, cluster.haproxy_url)
        for name, (tenant, scopes, limit) in KEYS.items():
            stack.key_ids[name], stack.keys[name] = stack.new_key(tenant, scopes, limit)
        yield stack
    finally:
        cluster.down(timeout=15)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # named as `zkq dev up` names it, so a command run from its folder finds it
    with running_stack(tmp_path_factory.mktemp("stack") / ".zkq-dev") as s:
        yield s


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    try:
        yield session
    finally:
        session.close()


def wait_terminal(stack: Stack, job_id: str, timeout: float = 30.0, key: str = "alice") -> Any:
    """The job's JSON once it has ended (long-polls through HAProxy)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        wait = max(0.1, min(10.0, deadline - time.monotonic()))
        r = requests.get(
            f"{stack.url}/v1/jobs/{job_id}",
            params={"wait": wait},
            headers=stack.auth(key),
            timeout=wait + 10,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        if body["state"] in ("succeeded", "failed", "dead", "cancelled"):
            return body
    raise AssertionError(f"job {job_id} did not end within {timeout}s: {body}")
