"""Two frontends racing on one Idempotency-Key.

The same submission, released at the same moment to both frontends directly with the same
key, must make one job, and both answers must name it: the key's primary key in MySQL
decides which frontend's ids win, the other frontend writes (or finds) those same ids, and
submission by id is idempotent in ZooKeeper.  The same key with a different body, raced
the same way, makes one job and one 409.  Many rounds, since one round may not overlap.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack

pytestmark = pytest.mark.cluster

ROUNDS = 12
FRONTENDS = ("frontend-1", "frontend-2")


def race(stack: Stack, path: str, key: str, bodies: list[Any]) -> list[requests.Response]:
    """POST ``bodies[i]`` to frontend i, with the same key, all released together."""
    start = threading.Barrier(len(bodies))

    def one(i: int) -> requests.Response:
        headers = {**stack.auth(), "Idempotency-Key": key}
        with requests.Session() as session:
            # connect first, so both POSTs leave at once on open connections
            probe = session.get(f"{stack.frontend_url(FRONTENDS[i])}/healthz", timeout=60)
            assert probe.status_code == 200, probe.text
            start.wait(60)
            return session.post(
                f"{stack.frontend_url(FRONTENDS[i])}{path}",
                json=bodies[i],
                headers=headers,
                timeout=60,
            )

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, range(len(bodies))))


def ids_of(response: requests.Response) -> list[str]:
    data = response.json()
    return [j["id"] for j in data["jobs"]] if "jobs" in data else [data["id"]]


def jobs_of_type(stack: Stack, job_type: str) -> list[str]:
    """Every job of ``job_type`` the tenant has, all pages."""
    ids: list[str] = []
    params: dict[str, Any] = {"type": job_type, "limit": 1000}
    while True:
        r = requests.get(f"{stack.url}/v1/jobs", params=params, headers=stack.auth(), timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [j["id"] for j in page["jobs"]]
        if not page.get("next_cursor"):
            return ids
        params["cursor"] = page["next_cursor"]


def single(job_type: str, n: int) -> dict[str, Any]:
    return {"type": job_type, "payload": {"round": n}}


def batch(job_type: str, n: int) -> dict[str, Any]:
    return {"jobs": [single(job_type, n), {"type": job_type, "payload": {"round": n, "i": 1}}]}


ENDPOINTS: list[tuple[str, Callable[[str, int], dict[str, Any]], int]] = [
    ("/v1/jobs", single, 1),
    ("/v1/jobs/batch", batch, 2),
]


@pytest.mark.parametrize(("path", "body", "per_round"), ENDPOINTS)
def test_the_same_key_and_body_on_both_frontends_at_once_make_one_submission(
    stack: Stack, path: str, body: Callable[[str, int], dict[str, Any]], per_round: int
) -> None:
    # a type no worker serves: the jobs stay pending, to be counted
    job_type = f"race{uuid.uuid4().hex[:8]}"
    answered: set[str] = set()
    for n in range(ROUNDS):
        answers = race(stack, path, str(uuid.uuid4()), [body(job_type, n)] * 2)
        assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
        first, second = (ids_of(r) for r in answers)
        assert first == second and len(first) == per_round, (first, second)
        # exactly one of the two made the jobs; the other replayed them
        replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in answers]
        assert sorted(replayed) == [False, True], replayed
        answered.update(first)
    assert sorted(jobs_of_type(stack, job_type)) == sorted(answered)
    assert len(answered) == ROUNDS * per_round


@pytest.mark.parametrize(("path", "body", "per_round"), ENDPOINTS)
def test_the_same_key_with_two_bodies_at_once_makes_one_submission_and_one_409(
    stack: Stack, path: str, body: Callable[[str, int], dict[str, Any]], per_round: int
) -> None:
    job_type = f"race{uuid.uuid4().hex[:8]}"
    answered: set[str] = set()
    for n in range(ROUNDS):
        answers = race(stack, path, str(uuid.uuid4()), [body(job_type, n), body(job_type, -n - 1)])
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201, 409], [r.text for r in answers]
        [won] = [r for r in answers if r.status_code == 201]
        [lost] = [r for r in answers if r.status_code == 409]
        assert lost.json()["error"]["code"] == "idempotency_key_reused", lost.text
        assert "Idempotent-Replayed" not in won.headers
        answered.update(ids_of(won))
    assert sorted(jobs_of_type(stack, job_type)) == sorted(answered)
    assert len(answered) == ROUNDS * per_round
