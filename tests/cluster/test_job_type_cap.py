"""The cap on distinct job types per tenant, through a frontend of the stack started with a
cap of 3: the fourth type is a 409 that names the limit, and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.cluster.conftest import Stack
from zkq.dev.frontends import start_frontend, wait_ready

pytestmark = pytest.mark.cluster


@pytest.fixture
def capped_url(stack: Stack) -> Iterator[str]:
    member = start_frontend(stack.cluster, env={"ZKQ_MAX_TYPES_PER_TENANT": "3"})
    try:
        wait_ready([member], 60)
        yield f"http://127.0.0.1:{member.ports['http']}"
    finally:
        stack.cluster.stop_member(member.name)


def test_a_tenant_past_its_types_is_refused_with_409_and_nothing_written(
    stack: Stack, capped_url: str, http: requests.Session
) -> None:
    tenant = f"capped-{uuid.uuid4().hex[:8]}"
    _, secret = stack.new_key(tenant, "submit,read", 1_000_000)
    headers = {"Authorization": f"Bearer {secret}"}

    def submit(*types: str) -> requests.Response:
        body = {"jobs": [{"type": t} for t in types]}
        return http.post(f"{capped_url}/v1/jobs/batch", json=body, headers=headers, timeout=10)

    assert submit("t1", "t2").status_code == 201
    assert submit("t3", "t1").status_code == 201
    refused = submit("t2", "t4")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "too_many_job_types"
    assert "at most 3 distinct job types" in error["message"] and "t4" in error["message"]
    listed = http.get(f"{capped_url}/v1/jobs", headers=headers, timeout=10).json()["jobs"]
    assert sorted(job["type"] for job in listed) == ["t1", "t1", "t2", "t3"]  # no t2 again
    again = submit("t3")
    assert again.status_code == 201  # the types it has stay open
    # no worker serves these types: cancel them, leaving the shared stack as found
    for job_id in [job["id"] for job in listed] + [j["id"] for j in again.json()["jobs"]]:
        http.delete(f"{capped_url}/v1/jobs/{job_id}", headers=headers, timeout=10)
