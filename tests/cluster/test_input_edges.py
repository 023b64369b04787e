"""Inputs at the edge of JSON, through HAProxy to the real frontends: each gets a 4xx with a
JSON error before anything is written, and a record that got into ZooKeeper before zkq
checked payloads as it does now stays readable (GET and every list page), live, then
quarantined by the archive once pruned.

Each test uses a tenant of its own, so its list pages hold only its own jobs.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack
from zkq.coordinator.acl import Role
from zkq.coordinator.client import Client
from zkq.coordinator.errors import JobNotFound
from zkq.coordinator.job import JobSpec
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def tenant(stack: Stack) -> dict[str, str]:
    """Authorization headers of a key of a fresh tenant."""
    _, secret = stack.new_key(f"edge-{uuid.uuid4().hex[:8]}", "submit,read", None)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    cluster = stack.cluster
    # the coordinator's credential: the test writes a record as an older zkq would have
    config = cluster.config(Role.COORDINATOR, mysql_url=cluster.mysql_url)
    with Client(config) as c:
        c.start()
        yield c


def _list(stack: Stack, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = requests.get(f"{stack.url}/v1/jobs", params={"limit": 1000}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    jobs: list[dict[str, Any]] = r.json()["jobs"]
    return jobs


#: bodies that got a 500 (or were stored as something else) before, and what the 400 says
BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("lone surrogate", b'{"type":"echo","payload":"\\ud800"}', "lone surrogate"),
    ("surrogate key", b'{"type":"echo","payload":{"\\udc00":1}}', "lone surrogate"),
    (
        "nested 100,000 deep",
        b'{"type":"echo","payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nests",
    ),
    (
        "nested past the archive",
        b'{"type":"echo","payload":' + b"[" * 31 + b"]" * 31 + b"}",
        "deeper",
    ),
    ("1e400 (inf)", b'{"type":"echo","payload":{"x":1e400}}', "out of range"),
    ("NaN", b'{"type":"echo","payload":NaN}', "not JSON"),
    (
        "batch of one bad",
        b'{"jobs":[{"type":"echo"},{"type":"echo","payload":"\\udfff"}]}',
        "jobs[1]",
    ),
]


@pytest.mark.parametrize(("name", "body", "words"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_bad_body_gets_a_400_and_writes_nothing(
    stack: Stack, tenant: dict[str, str], name: str, body: bytes, words: str
) -> None:
    path = "/v1/jobs/batch" if body.startswith(b'{"jobs"') else "/v1/jobs"
    headers = {**tenant, "Content-Type": "application/json"}
    r = requests.post(f"{stack.url}{path}", data=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "malformed_request" or error["code"] == "invalid_input", error
    assert words in error["message"], error
    assert _list(stack, tenant) == []


def test_a_record_written_before_validation_stays_readable_live_and_archived(
    stack: Stack, tenant: dict[str, str], client: Client
) -> None:
    # the tenant's name, as the frontend stores it, from a job it submits over HTTP
    r = requests.post(
        f"{stack.url}/v1/jobs", json={"type": "nothing-serves-this"}, headers=tenant, timeout=30
    )
    assert r.status_code == 201, r.text
    # the client's session may be on another ensemble member than the frontend's: it sees
    # the write once its member has it
    owned = wait_until(
        lambda: client.get(r.json()["id"]),
        30,
        what="the job on the client's member",
        ignore=(JobNotFound,),
    )
    # a record an older zkq let in: a lone surrogate and NaN (a non-ASCII type too, but
    # its pending entry would be elsewhere: tests/integration/test_retention.py has it)
    job = client.store.submit(
        JobSpec("nothing-serves-this", None, tenant=owned.tenant), time.monotonic() + 10
    )
    legacy = job.replace(payload={"text": "\ud800", "ratio": float("nan")})
    client.session.set(client.store.layout.job(job.id), legacy.to_bytes())

    def read() -> dict[str, Any]:
        r = requests.get(f"{stack.url}/v1/jobs/{job.id}", headers=tenant, timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    # likewise the frontends' members catch up with the client's writes
    wait_until(
        lambda: read()["payload"] == {"text": "\ud800", "ratio": None},
        30,
        what="the frontend to read the legacy record",
        ignore=(AssertionError,),
    )
    wait_until(
        lambda: [j["id"] for j in _list(stack, tenant)] == [owned.id, job.id],
        30,
        what="both jobs in the tenant's list",
    )

    # once it ends and is pruned, the archive refuses it: quarantined, and still read
    for job_id in (owned.id, job.id):
        url = f"{stack.url}/v1/jobs/{job_id}"
        wait_until(
            lambda: requests.delete(url, headers=tenant, timeout=30).status_code == 200,  # noqa: B023
            30,
            what=f"{job_id} cancelled",
        )

    def pruned() -> bool:
        try:
            client.store.get(job.id)
            return False
        except JobNotFound:
            return True

    wait_until(pruned, 60, what="the legacy record to be pruned")
    body = read()
    assert body["state"] == "cancelled" and body["payload"]["text"] == "\ud800"
    kept = client.get(job.id).payload  # nothing lost: the record as it was
    assert kept["text"] == "\ud800" and math.isnan(kept["ratio"])
    # the list merges ZooKeeper and the archive; a quarantined job is found by its id
    assert owned.id in [j["id"] for j in _list(stack, tenant)]


@pytest.mark.parametrize("size", [6_000, 12_000])
def test_a_long_url_gets_the_json_error_shape(
    stack: Stack, tenant: dict[str, str], size: int
) -> None:
    # past gunicorn's old request-line limit of 4 KB (an HTML 414), within HAProxy's buffer
    r = requests.get(f"{stack.url}/v1/jobs?limit={'9' * size}", headers=tenant, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_request"
