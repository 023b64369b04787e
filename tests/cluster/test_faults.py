"""Faults on the HTTP side, through HAProxy: a frontend killed under load, MySQL stopped,
ZooKeeper unreachable from a frontend, the whole ensemble stopped.  Each test leaves the
stack as it found it, but the module has a stack of its own (it breaks things).

Figures (detection time, failed requests) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack, running_stack
from zkq.coordinator.mysql import MySQLSettings
from zkq.dev.ports import free_port
from zkq.dev.waiting import wait_until
from zkq.frontend.config import DEFAULTS

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

#: HAProxy checks every 300 ms and needs 2 failures: a dead frontend is out within ~1 s;
#: allow generously for a loaded two-core machine
DETECTION_SLACK = 3.0
#: a request's ZooKeeper work ends within ZK_TIMEOUT, and a lost connection is waited for
#: ZK_DISCONNECTED_WAIT: a request ends within their sum, here times a generous factor.
#: Each fault lasts longer than this, so an answer within it came without ZooKeeper's
#: return; how soon is printed (the figure), not asserted
ZK_BOUND = (DEFAULTS["ZK_TIMEOUT"] + DEFAULTS["ZK_DISCONNECTED_WAIT"]) * 2
#: likewise for MySQL: a refused connection fails at once, a silent server after
#: connect_timeout, a stalled query after read_timeout
MYSQL_BOUND = (MySQLSettings.connect_timeout + MySQLSettings.read_timeout) * 2


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults") / "dev") as s:
        yield s


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    job_id: str | None
    detail: str = ""


def submit_load(stack: Stack, secret: str, stop: threading.Event, out: list[Outcome]) -> None:
    """Submit noop jobs back to back through HAProxy, with no retries of our own."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {secret}"}
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        try:
            r = session.post(
                f"{stack.url}/v1/jobs",
                json={"type": "noop", "payload": n},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                timeout=15,
            )
            job_id = r.json().get("id") if r.status_code == 201 else None
            out.append(Outcome(started, time.monotonic(), r.status_code, job_id, r.text[:120]))
        except requests.RequestException as exc:
            out.append(Outcome(started, time.monotonic(), None, None, repr(exc)[:120]))
    session.close()


def all_jobs(stack: Stack, secret: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = requests.get(
            f"{stack.url}/v1/jobs",
            params=params,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        found.update({j["id"]: j for j in body["jobs"]})
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def test_killed_frontend_is_routed_around_and_no_accepted_job_is_lost(
    fault_stack: Stack,
) -> None:
    stack = fault_stack
    _, secret = stack.new_key(f"load-{uuid.uuid4().hex[:6]}", "submit,read", None)
    stop = threading.Event()
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(target=submit_load, args=(stack, secret, stop, outcomes)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(outcomes) >= 50, 30, what="the load to get going")
        killed_at = time.monotonic()
        stack.cluster.kill_frontend("frontend-1")
        stack.wait_servers({"frontend-1": "DOWN"}, timeout=15)
        down_at = time.monotonic()
        before = len(outcomes)
        wait_until(lambda: len(outcomes) >= before + 100, 60, what="load after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    accepted = {o.job_id for o in outcomes if o.status == 201 and o.job_id}
    failed = [o for o in outcomes if o.status != 201]
    print(
        f"\nfrontend kill: {len(outcomes)} requests, {len(accepted)} accepted, "
        f"{len(failed)} failed; HAProxy marked it down {down_at - killed_at:.2f}s after the "
        f"kill; failures: {[(o.status, o.detail[:60]) for o in failed][:5]}"
    )
    # failures only while HAProxy had not noticed yet, and never a 500
    assert all(o.status is None or o.status in (502, 503) for o in failed), failed
    for o in failed:
        assert killed_at - 0.5 <= o.started <= down_at + DETECTION_SLACK, (o, killed_at, down_at)
    assert len(failed) <= 0.1 * len(outcomes)
    # every accepted job exists and runs to the end; the only others are from requests
    # whose answer was lost (accepted by the killed frontend but never answered)
    wait_until(
        lambda: (
            all(
                j["state"] == "succeeded"
                for i, j in all_jobs(stack, secret).items()
                if i in accepted
            )
            and accepted <= set(all_jobs(stack, secret))
        ),
        90,
        interval=1.0,
        what="every accepted job to succeed",
    )
    extra = set(all_jobs(stack, secret)) - accepted
    assert len(extra) <= len(failed), extra
    # bring it back: HAProxy's checks put it in rotation again by themselves
    stack.cluster.start_frontend("frontend-1")
    stack.wait_servers({"frontend-1": "UP", "frontend-2": "UP"})


def test_mysql_stopped_gives_503_then_recovers(fault_stack: Stack) -> None:
    stack = fault_stack
    headers = stack.auth()
    stack.cluster.stop_mysql()
    try:
        statuses = []
        for _ in range(10):
            started = time.monotonic()
            r = requests.post(
                f"{stack.url}/v1/jobs",
                json={"type": "noop"},
                headers=headers,
                timeout=MYSQL_BOUND + 30,
            )
            took = time.monotonic() - started
            statuses.append(r.status_code)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] in ("database_unavailable", "unavailable")
            assert int(r.headers["Retry-After"]) >= 1
            assert took < MYSQL_BOUND, took
        # both frontends report not ready, so HAProxy takes them out (and answers 503 itself)
        for name in ("frontend-1", "frontend-2"):
            ready = requests.get(f"{stack.frontend_url(name)}/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json() == {"status": "not ready", "zookeeper": True, "mysql": False}
        stack.wait_servers({"frontend-1": "DOWN", "frontend-2": "DOWN"})
        r = requests.post(f"{stack.url}/v1/jobs", json={"type": "noop"}, headers=headers)
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert r.json()["error"]["code"] == "unavailable"
    finally:
        stack.cluster.start_mysql()
    stack.wait_servers({"frontend-1": "UP", "frontend-2": "UP"}, timeout=30)

    def accepted() -> bool:
        r = requests.post(f"{stack.url}/v1/jobs", json={"type": "noop"}, headers=headers)
        assert r.status_code in (201, 503), r.text
        return r.status_code == 201

    wait_until(accepted, 30, interval=0.2, what="submissions to be accepted again")


def test_frontend_without_zookeeper_answers_503_and_leaves_rotation(fault_stack: Stack) -> None:
    stack = fault_stack
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    stack.cluster.stop_frontend("frontend-2")
    stack.cluster.start_frontend("frontend-2", zk_hosts=nowhere, wait=False)
    try:
        url = stack.frontend_url("frontend-2")
        wait_until(
            lambda: requests.get(f"{url}/healthz", timeout=10).status_code == 200,
            60,
            what="frontend-2 to serve",
            # a slow answer on a loaded machine is "not yet", like a refused connection
            ignore=(requests.ConnectionError, requests.Timeout),
        )
        for _ in range(3):
            started = time.monotonic()
            r = requests.post(
                f"{url}/v1/jobs", json={"type": "noop"}, headers=stack.auth(), timeout=ZK_BOUND + 30
            )
            took = time.monotonic() - started
            print(f"\nno ZooKeeper: 503 after {took * 1000:.0f} ms")
            assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
            assert int(r.headers["Retry-After"]) >= 1
            assert took < ZK_BOUND, took
        ready = requests.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["zookeeper"] is False
        stack.wait_servers({"frontend-2": "DOWN", "frontend-1": "UP"})
        for _ in range(20):
            r = requests.post(
                f"{stack.url}/v1/jobs", json={"type": "noop"}, headers=stack.auth(), timeout=10
            )
            assert r.status_code == 201, r.text
    finally:
        stack.cluster.stop_frontend("frontend-2")
        stack.cluster.start_frontend("frontend-2")
    stack.wait_servers({"frontend-1": "UP", "frontend-2": "UP"})


def test_ensemble_stopped_fails_fast_and_recovers(fault_stack: Stack) -> None:
    """Sessions that were connected lose the ensemble: requests in flight and new ones get
    a 503 while it is away (within ZK_BOUND), not when ZooKeeper returns."""
    stack = fault_stack
    job = requests.post(
        f"{stack.url}/v1/jobs", json={"type": "sleep", "payload": 0.1}, headers=stack.auth()
    ).json()
    for i in range(3):
        stack.cluster.stop_zk_node(i, timeout=15)
    try:
        for name in ("frontend-1", "frontend-2"):
            url = stack.frontend_url(name)
            for path in (f"/v1/jobs/{job['id']}", "/v1/queues"):
                started = time.monotonic()
                r = requests.get(f"{url}{path}", headers=stack.auth(), timeout=ZK_BOUND + 30)
                took = time.monotonic() - started
                print(f"\nensemble stopped: {name} {path} 503 after {took * 1000:.0f} ms")
                assert r.status_code == 503, r.text
                assert took < ZK_BOUND, (name, path, took)
        stack.wait_servers({"frontend-1": "DOWN", "frontend-2": "DOWN"})
    finally:
        for i in range(3):
            stack.cluster.start_zk_node(i, wait=False)
    stack.wait_servers({"frontend-1": "UP", "frontend-2": "UP"}, timeout=60)
    with stack.client() as zkq:
        done = zkq.wait(zkq.submit("echo", "back").id, timeout=60)
    assert str(done.state) == "succeeded" and done.result == "back"


def test_paused_ensemble_bounds_every_request(fault_stack: Stack) -> None:
    """A hung ensemble (SIGSTOP: connections stay open, nothing answers) is the worst case:
    kazoo queues requests and waits for a reconnection with no limit.  Every request must
    still end, with a 503, within the frontend's ZooKeeper deadline (ZK_TIMEOUT, 5 s)."""
    stack = fault_stack
    ensemble = stack.cluster.ensemble
    assert ensemble is not None
    job_id = requests.post(
        f"{stack.url}/v1/jobs", json={"type": "noop"}, headers=stack.auth()
    ).json()["id"]
    for i in range(ensemble.size):
        ensemble.pause_node(i)
    timings = []
    try:
        url = stack.frontend_url("frontend-1")
        for method, path, body in (
            ("GET", f"/v1/jobs/{job_id}", None),
            ("POST", "/v1/jobs", {"type": "noop"}),
            ("GET", "/v1/queues", None),
        ):
            started = time.monotonic()
            r = requests.request(
                method, f"{url}{path}", json=body, headers=stack.auth(), timeout=30
            )
            timings.append(round(time.monotonic() - started, 2))
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
        print(f"\npaused ensemble: 503 after {timings} s")
        assert max(timings) < ZK_BOUND, timings
    finally:
        for i in range(ensemble.size):
            ensemble.resume_node(i)
    stack.wait_servers({"frontend-1": "UP", "frontend-2": "UP"}, timeout=60)
    with stack.client() as zkq:
        assert str(zkq.wait(zkq.submit("noop").id, timeout=60).state) == "succeeded"
