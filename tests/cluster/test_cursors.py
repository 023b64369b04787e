"""List cursors through the whole stack: opaque, for the tenant that got them only."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from tests.cluster.conftest import Stack
from zkq.frontend.models import JOB_ID_PATTERN

pytestmark = pytest.mark.cluster


def test_cursors_page_through_a_tenants_jobs_and_carry_no_job_id(stack: Stack) -> None:
    job_type = f"cursor-{uuid.uuid4().hex[:8]}"
    submitted = [stack.client().submit(job_type, n).id for n in range(3)]
    seen: list[str] = []
    cursors: list[str] = []
    # through the client, which retries a 503: each page may read thousands of records of
    # other tests (schemathesis's above all) to find one of these, on a busy machine
    with stack.client() as client:
        cursor = None
        while True:
            page = client.list(type=job_type, limit=1, cursor=cursor)
            seen += [job.id for job in page.jobs]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            cursors.append(cursor)
    assert seen == submitted
    # one page per job: a cursor after each but perhaps the last (else nothing was checked)
    assert len(cursors) >= len(submitted) - 1 >= 1
    for cursor in cursors:
        assert not re.search(JOB_ID_PATTERN.strip("^$"), cursor), cursor
        assert not any(job_id[:10] in cursor for job_id in submitted)


def test_a_cursor_is_refused_to_another_tenant_and_when_altered(
    stack: Stack, http: requests.Session
) -> None:
    for _ in range(2):
        stack.client().submit("echo", None)
    first = http.get(
        f"{stack.url}/v1/jobs", params={"limit": "1"}, headers=stack.auth(), timeout=10
    ).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    altered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    for who, bad in (("bob", cursor), ("alice", altered), ("alice", cursor[:30])):
        answer = http.get(
            f"{stack.url}/v1/jobs",
            params={"limit": "1", "cursor": bad},
            headers=stack.auth(who),
            timeout=10,
        )
        assert answer.status_code == 400, (who, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "malformed_request"
        assert "without a cursor" in error["message"]
