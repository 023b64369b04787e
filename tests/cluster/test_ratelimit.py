"""One key's rate limit holds for the sum of its requests to every frontend: the counter
lives in MySQL, not in a frontend's memory."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

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


#: requests sent at once by CONCURRENT threads, half to each frontend, over one key
CONCURRENT = 48
CONCURRENT_LIMIT = 12


def logged_statuses(stack: Stack, key_id: int) -> dict[int, int]:
    """The request log's rows of ``key_id``: status -> count."""
    pool = stack.pool
    try:
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT status, COUNT(*) FROM request_log WHERE key_id = %s GROUP BY status",
                (key_id,),
            )
            return {int(status): int(n) for status, n in cur.fetchall()}
    finally:
        pool.close()


def test_concurrent_hits_on_two_frontends_admit_exactly_the_limit(stack: Stack) -> None:
    """Many requests of one key at the same moment, half to each frontend: the counter's
    single conditional increment must admit exactly the limit in total.  A check-then-add
    in two statements, or a counter per process, admits more under this load."""
    key_id, secret = stack.new_key("acme", "read", CONCURRENT_LIMIT)
    headers = {"Authorization": f"Bearer {secret}"}
    # one fixed window with room to spare: a boundary crossed mid-burst lets the sliding
    # estimate grant one more (see the test above)
    wait_until(lambda: time.time() % 60 < 30, 35, interval=0.2, what="the start of a minute")
    urls = [stack.frontend_url(name) for name in ("frontend-1", "frontend-2")]
    start = threading.Barrier(CONCURRENT)

    def one(i: int) -> requests.Response:
        with requests.Session() as session:
            # connect first (a liveness probe needs no key, so it counts for nothing):
            # the counted requests then arrive on open connections at once, instead of
            # one after another through the frontends' accept loops
            probe = session.get(f"{urls[i % 2]}/healthz", timeout=60)
            assert probe.status_code == 200, probe.text
            start.wait(60)  # released together, so the increments race in MySQL
            return session.get(
                f"{urls[i % 2]}/v1/jobs", params={"limit": 1}, headers=headers, timeout=60
            )

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(one, range(CONCURRENT)))
    statuses = Counter(r.status_code for r in answers)
    print(f"statuses: {dict(statuses)}")
    assert set(statuses) <= {200, 429}, [(r.status_code, r.text) for r in answers]
    assert statuses[200] == CONCURRENT_LIMIT  # in total, not per frontend
    assert statuses[429] == CONCURRENT - CONCURRENT_LIMIT
    for r in answers:
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "rate_limited", r.text
            assert int(r.headers["Retry-After"]) >= 1
    # every request, admitted or refused, is logged under the key, once (the log is
    # written by a background flusher about once a second, hence the wait)
    wait_until(
        lambda: sum(logged_statuses(stack, key_id).values()) >= CONCURRENT,
        30,
        interval=0.5,
        what=f"the request log to hold {CONCURRENT} rows of key {key_id}",
    )
    assert logged_statuses(stack, key_id) == {
        200: CONCURRENT_LIMIT,
        429: CONCURRENT - CONCURRENT_LIMIT,
    }
