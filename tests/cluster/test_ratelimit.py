"""One key's rate limit holds for the sum of its requests to every frontend: the counter
lives in MySQL, not in a frontend's memory."""

from __future__ import annotations

import time

import pytest
import requests

from tests.cluster.conftest import Stack
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster

LIMIT = 20


def test_limit_holds_across_two_frontends(stack: Stack, http: requests.Session) -> None:
    _, secret = stack.new_key("acme", "read", LIMIT)
    headers = {"Authorization": f"Bearer {secret}"}
    # Stay inside one fixed window: the sliding estimate weighs in the previous window
    # (empty for a new key), so crossing a boundary could grant one more.
    wait_until(lambda: time.time() % 60 < 40, 25, interval=0.2, what="the start of a minute")
    allowed = {"frontend-1": 0, "frontend-2": 0}
    refused = 0
    for i in range(2 * LIMIT):
        name = ("frontend-1", "frontend-2")[i % 2]  # directly, not through HAProxy
        r = http.get(
            f"{stack.frontend_url(name)}/v1/jobs", params={"limit": 1}, headers=headers, timeout=10
        )
        assert r.status_code in (200, 429), r.text
        if r.status_code == 200:
            allowed[name] += 1
        else:
            refused += 1
            assert int(r.headers["Retry-After"]) >= 1
    print(f"allowed per frontend: {allowed}, refused: {refused}")
    # each frontend alone would have allowed LIMIT; together they allowed LIMIT
    assert sum(allowed.values()) == LIMIT
    assert refused == LIMIT
    assert allowed["frontend-1"] > 0 and allowed["frontend-2"] > 0
