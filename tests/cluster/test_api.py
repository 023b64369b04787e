"""The REST API through HAProxy, against the real stack: every endpoint, and every status
a client can cause."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from kazoo.client import KazooClient
from ulid import ULID

import zkq
from tests.cluster.conftest import RETENTION, Stack, wait_terminal
from tests.support import unique_type
from zkq.coordinator.errors import InvalidTransition, JobNotFound
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import JobState
from zkq.coordinator.paths import Layout
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.waiting import wait_until
from zkq.frontend.cursors import ClusterSecrets, admin_view
from zkq.http_client import HttpClient

pytestmark = pytest.mark.cluster

JSON = {"Content-Type": "application/json"}


def error_of(r: requests.Response) -> str:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return str(body["error"]["code"])


# -- probes and the document ------------------------------------------------------------------
def test_probes_and_openapi(stack: Stack, http: requests.Session) -> None:
    assert http.get(f"{stack.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = http.get(f"{stack.url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "zookeeper": True, "mysql": True}
    doc = http.get(f"{stack.url}/v1/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/jobs", "/v1/jobs/batch", "/v1/jobs/{job_id}", "/v1/workers", "/v1/queues"} <= set(
        doc["paths"]
    )
    submit = doc["paths"]["/v1/jobs"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobSubmission"
    }
    assert {"201", "400", "401", "403", "409", "413", "415", "429", "503"} <= set(
        submit["responses"]
    )
    assert doc["components"]["schemas"]["JobSubmission"]["additionalProperties"] is False


# -- submit, read, wait ----------------------------------------------------------------------
def test_submit_get_and_wait(stack: Stack, http: requests.Session) -> None:
    r = http.post(
        f"{stack.url}/v1/jobs",
        json={"type": "echo", "payload": {"hello": [1, 2.5, "x", None]}, "priority": 7},
        headers=stack.auth(),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "pending" and job["priority"] == 7
    assert job["tenant"] == "acme"  # alice's key is an admin's: it sees whose jobs it reads
    done = wait_terminal(stack, job["id"])
    assert done["state"] == "succeeded"
    assert done["result"] == {"hello": [1, 2.5, "x", None]}
    assert done["history"][0]["outcome"] == "succeeded"
    again = http.get(f"{stack.url}/v1/jobs/{job['id']}", headers=stack.auth(), timeout=10)
    assert again.status_code == 200 and again.json()["state"] == "succeeded"


def test_python_client_round_trip(stack: Stack) -> None:
    with stack.client() as zkq:
        job = zkq.submit("echo", {"n": 1}, max_attempts=2)
        done = zkq.wait(job.id, timeout=30)
        assert str(done.state) == "succeeded" and done.result == {"n": 1}
        failed = zkq.wait(zkq.submit("fail", "boom").id, timeout=30)
        assert str(failed.state) == "failed" and failed.error
        batch = zkq.submit_batch([{"type": "noop"}, {"type": "echo", "payload": 3}])
        assert len({j.id for j in batch}) == 2
        assert zkq.wait(batch[1].id, 30).result == 3
        pending = zkq.submit(unique_type())
        assert str(zkq.cancel(pending.id).state) == "cancelled"
        with pytest.raises(InvalidTransition) as conflict:
            zkq.cancel(job.id)
        assert conflict.value.code == "invalid_transition"
        with pytest.raises(JobNotFound) as missing:
            zkq.get(new_job_id())
        assert missing.value.status == 404 and missing.value.code == "job_not_found"
        assert len(zkq.workers()) == 2


#: a long-poll's wait, far longer than the half-second job: an answer before it ran out
#: came from the job's completion, not from the wait timing out
LONG_POLL_WAIT = 30


def test_long_poll_returns_on_the_job_finishing_not_at_its_timeout(
    stack: Stack, http: requests.Session
) -> None:
    """A long-poll answers when the job finishes: after ``finished_at``, with the finished
    job, before its wait runs out and before the job is pruned.  How soon after (the lag)
    is a figure of ``zkq bench timings``, which depends on the machine's load."""
    for _ in range(3):
        r = http.post(
            f"{stack.url}/v1/jobs",
            json={"type": "sleep", "payload": 0.5},
            headers=stack.auth(),
            timeout=10,
        )
        job_id = r.json()["id"]
        asked = time.monotonic()
        r = http.get(
            f"{stack.url}/v1/jobs/{job_id}",
            params={"wait": LONG_POLL_WAIT},
            headers=stack.auth(),
            timeout=LONG_POLL_WAIT + 30,
        )
        answered = time.time()
        body = r.json()
        assert r.status_code == 200 and body["state"] == "succeeded", body
        assert answered >= body["finished_at"]  # in that order
        assert time.monotonic() - asked < LONG_POLL_WAIT  # on the event, not the timeout
        # nor on the job's pruning, RETENTION after it ended, which also ends the wait (the
        # record is gone; the answer then comes from the archive): a deadline of seconds
        # against a lag of milliseconds
        assert answered - body["finished_at"] < RETENTION, (answered, body)


def test_long_poll_times_out_with_the_job_as_it_stands(
    stack: Stack, http: requests.Session
) -> None:
    r = http.post(f"{stack.url}/v1/jobs", json={"type": unique_type()}, headers=stack.auth())
    started = time.monotonic()
    wait = 1.0
    r = http.get(
        f"{stack.url}/v1/jobs/{r.json()['id']}", params={"wait": wait}, headers=stack.auth()
    )
    assert r.status_code == 200 and r.json()["state"] == "pending"
    # it waited its time, and then answered: a generous deadline (the wait plus 15 s), as a
    # loaded machine may answer late but never early
    assert wait - 0.1 <= time.monotonic() - started < wait + 15


# -- idempotency ----------------------------------------------------------------------------
def test_idempotency_key_returns_the_same_job_from_any_frontend(
    stack: Stack, http: requests.Session
) -> None:
    key = str(uuid.uuid4())
    body = {"type": "echo", "payload": {"k": key}}
    headers = {**stack.auth(), "Idempotency-Key": key}
    answers = [
        http.post(f"{stack.frontend_url(name)}/v1/jobs", json=body, headers=headers, timeout=10)
        for name in ("frontend-1", "frontend-2", "frontend-1")
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert "Idempotent-Replayed" not in answers[0].headers
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    # after it ran, a replay still returns it (and does not run it again)
    done = wait_terminal(stack, answers[0].json()["id"])
    replay = http.post(f"{stack.url}/v1/jobs", json=body, headers=headers, timeout=10)
    assert replay.json()["id"] == done["id"] and replay.json()["attempts"] == 1
    # the same key for another request is refused
    other = http.post(
        f"{stack.url}/v1/jobs", json={"type": "echo", "payload": 2}, headers=headers, timeout=10
    )
    assert other.status_code == 409 and error_of(other) == "idempotency_key_reused"
    # keys belong to a tenant: bob's identical key is his own submission
    bobs = http.post(
        f"{stack.url}/v1/jobs",
        json=body,
        headers={**stack.auth("bob"), "Idempotency-Key": key},
        timeout=10,
    )
    assert bobs.status_code == 201 and bobs.json()["id"] != done["id"]
    bad = http.post(
        f"{stack.url}/v1/jobs", json=body, headers={**stack.auth(), "Idempotency-Key": "a b"}
    )
    assert bad.status_code == 400


def test_idempotent_batch(stack: Stack, http: requests.Session) -> None:
    headers = {**stack.auth(), "Idempotency-Key": str(uuid.uuid4())}
    body = {"jobs": [{"type": "noop"} for _ in range(5)]}
    first = http.post(f"{stack.url}/v1/jobs/batch", json=body, headers=headers, timeout=10)
    second = http.post(f"{stack.url}/v1/jobs/batch", json=body, headers=headers, timeout=10)
    assert first.status_code == second.status_code == 201
    assert [j["id"] for j in first.json()["jobs"]] == [j["id"] for j in second.json()["jobs"]]


# -- batch ----------------------------------------------------------------------------------
def test_batch_of_a_thousand_and_its_limits(stack: Stack, http: requests.Session) -> None:
    job_type = unique_type()
    body = {"jobs": [{"type": job_type, "payload": i} for i in range(1000)]}
    r = http.post(f"{stack.url}/v1/jobs/batch", json=body, headers=stack.auth(), timeout=60)
    assert r.status_code == 201, r.text
    ids = [j["id"] for j in r.json()["jobs"]]
    assert len(set(ids)) == 1000 and ids == sorted(ids)  # submission order kept
    queues = http.get(f"{stack.url}/v1/queues", headers=stack.auth(), timeout=10).json()
    [queue] = [q for q in queues["queues"] if q["type"] == job_type]
    assert queue["depth"] == 1000 and queue["running"] == 0
    assert queue["oldest_age_seconds"] is not None and queue["oldest_age_seconds"] >= 0

    too_many = {"jobs": [{"type": "noop"}] * 1001}
    r = http.post(f"{stack.url}/v1/jobs/batch", json=too_many, headers=stack.auth(), timeout=30)
    assert r.status_code == 400 and error_of(r) == "malformed_request"
    r = http.post(f"{stack.url}/v1/jobs/batch", json={"jobs": []}, headers=stack.auth())
    assert r.status_code == 400
    big = {"jobs": [{"type": "noop"}, {"type": "echo", "payload": "x" * 70_000}]}
    r = http.post(f"{stack.url}/v1/jobs/batch", json=big, headers=stack.auth(), timeout=10)
    assert r.status_code == 413 and error_of(r) == "payload_too_large"
    assert "jobs[1]" in r.json()["error"]["message"]


# -- cancel, list, tenants ------------------------------------------------------------------
def test_cancel(stack: Stack, http: requests.Session) -> None:
    r = http.post(f"{stack.url}/v1/jobs", json={"type": unique_type()}, headers=stack.auth())
    job_id = r.json()["id"]
    r = http.delete(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = http.delete(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth(), timeout=10)
    assert r.status_code == 409 and error_of(r) == "invalid_transition"
    r = http.delete(f"{stack.url}/v1/jobs/{new_job_id()}", headers=stack.auth(), timeout=10)
    assert r.status_code == 404


def test_a_job_for_later_is_scheduled_read_listed_replayed_and_cancelled(
    stack: Stack, http: requests.Session
) -> None:
    job_type = unique_type()  # served by no worker
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"type": job_type, "delay": 3600, "retry": {"backoff": "fixed", "delay": 30}}
    before = time.time()
    r = http.post(f"{stack.url}/v1/jobs", json=body, headers={**stack.auth(), **key}, timeout=10)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "scheduled" and job["scheduled_for"] == "delay"
    assert before + 3000 < job["run_at"] < time.time() + 3700  # the frontend's clock
    assert job["retry"] == {"backoff": "fixed", "delay": 30.0}
    again = http.post(f"{stack.url}/v1/jobs", json=body, headers={**stack.auth(), **key})
    assert again.status_code == 201 and again.json()["id"] == job["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    r = http.post(
        f"{stack.url}/v1/jobs/batch",
        json={"jobs": [{"type": job_type, "run_at": "2026-12-24T19:00:00+01:00"}]},
        headers=stack.auth(),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    [at] = r.json()["jobs"]
    assert at["state"] == "scheduled" and at["run_at"] == 1798135200.0
    later = stack.client().submit(job_type, retry=zkq.Backoff(base=2), delay=600)
    assert later.state == JobState.SCHEDULED and later.retry == zkq.Backoff(base=2).to_dict()
    now = http.post(f"{stack.url}/v1/jobs", json={"type": job_type}, headers=stack.auth())
    assert "run_at" not in now.json() and now.json()["state"] == "pending"

    r = http.get(f"{stack.url}/v1/jobs/{job['id']}", headers=stack.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["run_at"] == job["run_at"]
    r = http.get(
        f"{stack.url}/v1/jobs",
        params={"type": job_type, "state": "scheduled"},
        headers=stack.auth(),
        timeout=10,
    )
    assert sorted(j["id"] for j in r.json()["jobs"]) == sorted([job["id"], at["id"], later.id])
    for waiting in (job["id"], at["id"], later.id, now.json()["id"]):
        r = http.delete(f"{stack.url}/v1/jobs/{waiting}", headers=stack.auth(), timeout=10)
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text


def test_a_failed_attempt_waits_out_its_backoff_scheduled(stack: Stack) -> None:
    client = stack.client()
    job = client.submit("fail", "try later", max_attempts=2, retry=zkq.Backoff.fixed(600))

    def settled() -> bool:  # waiting out the backoff, or (were it not kept) dead at once
        return client.get(job.id).state in (JobState.SCHEDULED, JobState.DEAD)

    wait_until(settled, 60, what="the failed attempt to be recorded")
    waiting = client.get(job.id)
    assert waiting.state == JobState.SCHEDULED, waiting
    assert waiting.scheduled_for == "retry" and waiting.attempts == 1
    assert waiting.run_at is not None and waiting.run_at >= waiting.updated_at + 600
    assert waiting.tries()[-1].outcome == "error"
    assert (waiting.error or {}).get("message") == "try later"
    assert client.cancel(job.id).state == JobState.CANCELLED


def test_list_pages_filters_and_tenants(stack: Stack, http: requests.Session) -> None:
    job_type = unique_type()
    ids = []
    for i in range(7):
        r = http.post(
            f"{stack.url}/v1/jobs", json={"type": job_type, "payload": i}, headers=stack.auth()
        )
        ids.append(r.json()["id"])
    http.delete(f"{stack.url}/v1/jobs/{ids[3]}", headers=stack.auth())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"type": job_type, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = http.get(f"{stack.url}/v1/jobs", params=params, headers=stack.auth(), timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 20
        if cursor is None:
            break
    assert seen == ids  # all of them, oldest first, once each
    r = http.get(
        f"{stack.url}/v1/jobs",
        params={"type": job_type, "state": "cancelled"},
        headers=stack.auth(),
    )
    assert [j["id"] for j in r.json()["jobs"]] == [ids[3]]
    # another tenant sees none of them, and cannot read or cancel them
    r = http.get(f"{stack.url}/v1/jobs", params={"type": job_type}, headers=stack.auth("bob"))
    assert r.status_code == 200 and r.json()["jobs"] == []
    r = http.get(f"{stack.url}/v1/jobs/{ids[0]}", headers=stack.auth("bob"))
    assert r.status_code == 404 and error_of(r) == "job_not_found"
    r = http.delete(f"{stack.url}/v1/jobs/{ids[0]}", headers=stack.auth("bob"))
    assert r.status_code == 404
    r = http.get(f"{stack.url}/v1/jobs/{ids[0]}", params={"wait": 5}, headers=stack.auth("bob"))
    assert r.status_code == 404


def test_workers_and_queues(stack: Stack, http: requests.Session) -> None:
    workers = http.get(f"{stack.url}/v1/workers", headers=stack.auth(), timeout=10).json()
    assert len(workers["workers"]) == 2
    assert all("echo" in w["types"] and w["slots"] == 4 for w in workers["workers"])
    job_type = unique_type()
    http.post(f"{stack.url}/v1/jobs", json={"type": job_type}, headers=stack.auth())
    queues = http.get(f"{stack.url}/v1/queues", headers=stack.auth(), timeout=10).json()
    assert any(q["type"] == job_type and q["depth"] == 1 for q in queues["queues"])


# -- every status a client can cause --------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_request"),
        (b'{"type": "echo", "priority": "5"}', "malformed_request"),  # wrong type
        (b'{"type": "echo", "priority": true}', "malformed_request"),
        (b'{"type": "echo", "priority": 1000}', "malformed_request"),  # out of range
        (b'{"type": "echo", "colour": "red"}', "malformed_request"),  # unknown field
        (b'{"payload": 1}', "malformed_request"),  # missing type
        (b'{"type": "no spaces"}', "malformed_request"),
        (b'{"type": "echo", "payload": NaN}', "malformed_request"),
        (b"[]", "malformed_request"),
        (b"\xff\xfe", "malformed_request"),
        (b'{"type": "echo", "delay": -1}', "malformed_request"),
        (b'{"type": "echo", "delay": "30"}', "malformed_request"),
        (b'{"type": "echo", "delay": 5, "run_at": 1}', "malformed_request"),
        (b'{"type": "echo", "run_at": "2026-12-24T18:00:00"}', "malformed_request"),  # no zone
        (b'{"type": "echo", "run_at": "soon"}', "malformed_request"),
        (b'{"type": "echo", "run_at": 9e15}', "invalid_input"),  # past the 366 days ahead
        (b'{"type": "echo", "retry": {"backoff": "fixed"}}', "malformed_request"),
        (
            b'{"type": "echo", "retry": {"backoff": "fixed", "delay": 1, "base": 2}}',
            "malformed_request",
        ),
        (
            b'{"type": "echo", "retry": {"backoff": "exponential", "factor": 50}}',
            "malformed_request",
        ),
        (b'{"type": "echo", "retry": {"delay": 3}}', "malformed_request"),
    ],
)
def test_400_for_bad_bodies(stack: Stack, http: requests.Session, body: bytes, code: str) -> None:
    r = http.post(f"{stack.url}/v1/jobs", data=body, headers={**stack.auth(), **JSON}, timeout=10)
    assert r.status_code == 400, r.text
    assert error_of(r) == code


def test_400_for_bad_ids_and_queries(stack: Stack, http: requests.Session) -> None:
    for path, params in [
        ("/v1/jobs/not-a-ulid", {}),
        ("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAVX", {}),  # 27 characters
        (f"/v1/jobs/{new_job_id()}", {"wait": "soon"}),
        (f"/v1/jobs/{new_job_id()}", {"wait": "-1"}),
        (f"/v1/jobs/{new_job_id()}", {"colour": "red"}),
        ("/v1/jobs", {"limit": "0"}),
        ("/v1/jobs", {"limit": "1001"}),
        ("/v1/jobs", {"state": "sleeping"}),
        ("/v1/jobs", {"cursor": "nope"}),
    ]:
        r = http.get(f"{stack.url}{path}", params=params, headers=stack.auth(), timeout=10)
        assert r.status_code == 400, (path, params, r.text)
        assert error_of(r) in ("malformed_request", "invalid_job_id")


def test_401_403_404_405_415(stack: Stack, http: requests.Session) -> None:
    url = f"{stack.url}/v1/jobs"
    r = http.post(url, json={"type": "echo"}, timeout=10)
    assert r.status_code == 401 and error_of(r) == "unauthenticated"
    r = http.post(url, json={"type": "echo"}, headers={"Authorization": "Bearer zkq_nope"})
    assert r.status_code == 401
    r = http.post(url, json={"type": "echo"}, headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401
    r = http.post(
        url, json={"type": "echo"}, headers={"Authorization": "Bearer " + "zkq_" + "A" * 43}
    )
    assert r.status_code == 401
    # X-API-Key works as well as the bearer token
    r = http.post(url, json={"type": "echo"}, headers={"X-API-Key": stack.keys["alice"]})
    assert r.status_code == 201
    # scopes
    r = http.post(url, json={"type": "echo"}, headers=stack.auth("reader"))
    assert r.status_code == 403 and error_of(r) == "forbidden"
    r = http.get(url, headers=stack.auth("submitter"))
    assert r.status_code == 403
    r = http.get(f"{stack.url}/v1/workers", headers=stack.auth("bob"))
    assert r.status_code == 403
    # 401 comes before anything about the body
    r = http.post(url, data=b"{broken", headers=JSON)
    assert r.status_code == 401
    r = http.get(f"{stack.url}/v1/jobs/{new_job_id()}", headers=stack.auth())
    assert r.status_code == 404 and error_of(r) == "job_not_found"
    r = http.get(f"{stack.url}/v2/jobs", headers=stack.auth())
    assert r.status_code == 404 and error_of(r) == "not_found"
    r = http.put(url, json={}, headers=stack.auth())
    assert r.status_code == 405 and error_of(r) == "method_not_allowed"
    assert "POST" in r.headers["Allow"]
    r = http.post(url, data="type=echo", headers=stack.auth())
    assert r.status_code == 415 and error_of(r) == "unsupported_media_type"
    r = http.post(
        url, data=b'{"type":"echo"}', headers={**stack.auth(), "Content-Type": "text/plain"}
    )
    assert r.status_code == 415


def test_413_payload_and_body_limits(stack: Stack, http: requests.Session) -> None:
    url = f"{stack.url}/v1/jobs"
    r = http.post(url, json={"type": "echo", "payload": "x" * 70_000}, headers=stack.auth())
    assert r.status_code == 413 and error_of(r) == "payload_too_large"
    huge = b'{"type": "echo", "payload": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = http.post(url, data=huge, headers={**stack.auth(), **JSON}, timeout=30)
    assert r.status_code == 413 and error_of(r) == "body_too_large"


def test_429_with_retry_after(stack: Stack, http: requests.Session) -> None:
    _, secret = stack.new_key("acme", "read", 3)
    headers = {"Authorization": f"Bearer {secret}"}
    statuses = []
    for _ in range(6):
        r = http.get(f"{stack.url}/v1/jobs", params={"limit": 1}, headers=headers, timeout=10)
        statuses.append(r.status_code)
    assert statuses.count(200) == 3 and statuses.count(429) == 3, statuses
    assert error_of(r) == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 120
    assert r.headers["X-RateLimit-Limit"] == "3"


def test_every_request_is_logged_with_the_client_address(
    stack: Stack, http: requests.Session
) -> None:
    """HAProxy appends the client's address to X-Forwarded-For; the frontend trusts that
    one hop only, so an address the client wrote itself is not what gets logged."""
    job_id = new_job_id()
    r = http.get(
        f"{stack.url}/v1/jobs/{job_id}",
        headers={**stack.auth(), "X-Forwarded-For": "10.9.8.7"},
        timeout=10,
    )
    assert r.status_code == 404
    pool = stack.pool
    try:

        def logged() -> tuple[object, ...] | None:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT status, key_id, tenant, method, path, client_addr FROM request_log "
                    "WHERE job_id = %s",
                    (job_id,),
                )
                row: tuple[object, ...] | None = cur.fetchone()
                return row

        row = wait_until(logged, 15, interval=0.2, what="the request-log row")
    finally:
        pool.close()
    assert row == (404, stack.key_ids["alice"], "acme", "GET", f"/v1/jobs/{job_id}", "127.0.0.1")


def test_client_retries_a_submission_without_duplicating_it(stack: Stack) -> None:
    """Same Idempotency-Key on every attempt: a submission whose reply was lost is resent,
    and the resend finds the job the first attempt made."""
    port = stack.cluster.member("frontend-1").ports["http"]
    key = str(uuid.uuid4())
    with CuttingProxy("127.0.0.1", port) as proxy:
        # the POST reaches the frontend, which creates the job; its reply never comes back
        proxy.cut_after_next_request(min_bytes=200)
        with HttpClient(f"http://127.0.0.1:{proxy.port}", stack.keys["alice"]) as zkq:
            first = zkq.submit("noop", payload={"key": key}, idempotency_key=key)
        assert proxy.cuts == 1, "no connection was cut: the retry was not exercised"
    # the job the cut attempt made is the one the retry answered with: once more, directly
    with stack.client() as direct:
        again = direct.submit("noop", payload={"key": key}, idempotency_key=key)
        assert again.id == first.id
        assert direct.wait(first.id, 30).state == JobState.SUCCEEDED


def test_pruned_job_is_served_from_the_archive(stack: Stack, http: requests.Session) -> None:
    """Once the leader archives a finished job to MySQL and prunes it from ZooKeeper, the
    API still reads, lists and replays it, and refuses to cancel it."""
    key = str(uuid.uuid4())
    body = {"type": "echo", "payload": {"archived": key}}
    headers = {**stack.auth(), "Idempotency-Key": key}
    job_id = http.post(f"{stack.url}/v1/jobs", json=body, headers=headers).json()["id"]
    done = wait_terminal(stack, job_id)
    zk = KazooClient(hosts=stack.cluster.connect_string)
    zk.start(timeout=15)
    try:
        path = Layout(stack.cluster.root).job(job_id)
        wait_until(lambda: zk.exists(path) is None, 60, interval=0.2, what="the job's pruning")
    finally:
        zk.stop()
        zk.close()
    r = http.get(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth(), timeout=10)
    assert r.status_code == 200 and r.json() == done
    started = time.monotonic()
    r = http.get(
        f"{stack.url}/v1/jobs/{job_id}",
        params={"wait": LONG_POLL_WAIT},
        headers=stack.auth(),
        timeout=LONG_POLL_WAIT + 30,
    )
    # an archived job has ended: the long-poll answers at once, not when its wait runs out
    assert r.status_code == 200 and time.monotonic() - started < LONG_POLL_WAIT
    assert http.get(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth("bob")).status_code == 404
    r = http.delete(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth(), timeout=10)
    assert r.status_code == 409 and error_of(r) == "invalid_transition"
    replay = http.post(f"{stack.url}/v1/jobs", json=body, headers=headers, timeout=10)
    replayed = replay.json()
    assert replay.status_code == 201 and replayed.pop("warnings") == []
    assert replayed == done  # not submitted again
    listed = http.get(
        f"{stack.url}/v1/jobs",
        params={"cursor": _just_before(stack, job_id), "limit": "5"},
        headers=stack.auth(),
    ).json()
    assert listed["jobs"][0] == done


def _just_before(stack: Stack, job_id: str) -> str:
    """A cursor that makes ``job_id`` the first of alice's page (ids sort by time), sealed
    with the cluster's secret as the frontends seal theirs (alice's key is an admin's: for
    its listing of every tenant's jobs)."""
    after = str(ULID.from_int(int(ULID.from_str(job_id)) - 1))
    pool = stack.pool
    try:
        return ClusterSecrets(pool).cursors().seal(admin_view(None), after)
    finally:
        pool.close()
