"""A flood of requests with wrong keys, through HAProxy, from one client address: it costs
MySQL a bounded number of queries, and soon gets 429 with Retry-After in the API's error
shape.

The shared stack's frontends lift the limit (schemathesis tries invalid keys thousands of
times), so these tests add a frontend with the default limit and an HAProxy of its own in
front of it to the stack.  The client connects from an address of its own on loopback
(127.0.0.0/8 is all local), which HAProxy forwards in X-Forwarded-For."""

from __future__ import annotations

import http.client
import json
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.cluster.conftest import Stack
from tests.mysql_support import selects
from zkq.dev.frontends import HaproxyOptions, start_frontend, start_haproxy, wait_ready

pytestmark = pytest.mark.cluster

#: bad-key requests sent
FLOOD = 600
#: frontend processes behind the test's HAProxy (1 frontend, 1 gunicorn worker), and the
#: failures each lets an address make before it refuses (ZKQ_AUTH_FAILURES_PER_MINUTE's
#: default)
PROCESSES, BUDGET = 1, 60


@pytest.fixture(scope="module")
def proxy_url(stack: Stack) -> Iterator[str]:
    """HAProxy, plain HTTP, in front of one frontend with the default limit."""
    cluster = stack.cluster
    frontend = start_frontend(cluster, env={"ZKQ_AUTH_FAILURES_PER_MINUTE": str(BUDGET)})
    started = [frontend.name]
    try:
        wait_ready([frontend], 60)
        proxy = start_haproxy(cluster, [frontend], HaproxyOptions(tls=False), "haproxy-flood")
        started.append(proxy.name)
        wait_ready([proxy], 60)
        yield f"http://127.0.0.1:{proxy.ports['http']}"
    finally:
        for name in reversed(started):
            cluster.stop_member(name)


def _source() -> str:
    """A loopback address of this test's own."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(2, 255)}"


def _connection(url: str) -> http.client.HTTPConnection:
    """A connection to ``url`` from a loopback address of its own (see :func:`_source`)."""
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    return http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(_source(), 0)
    )


def test_a_flood_of_wrong_keys_costs_bounded_queries_and_gets_429(
    stack: Stack, proxy_url: str
) -> None:
    server = stack.cluster.mariadb
    assert server is not None
    conn = _connection(proxy_url)
    statuses: Counter[int] = Counter()
    before, started = selects(server), time.monotonic()
    try:
        for _ in range(FLOOD):
            wrong = "zkq_" + secrets.token_urlsafe(32)  # a new wrong key every time
            conn.request("GET", "/v1/workers", headers={"Authorization": f"Bearer {wrong}"})
            answer = conn.getresponse()
            body = answer.read()
            statuses[answer.status] += 1
        last_retry_after = answer.getheader("Retry-After")
    finally:
        conn.close()
    spent, took = selects(server) - before, time.monotonic() - started

    assert set(statuses) == {401, 429}, statuses
    # each process's budget, and what it refilled (BUDGET a minute) while the flood went on
    allowed = PROCESSES * (BUDGET + math.ceil(took * BUDGET / 60))
    assert statuses[401] <= allowed, (statuses, took)
    assert answer.status == 429
    assert last_retry_after is not None and int(last_retry_after) >= 1
    error = json.loads(body)["error"]
    assert error["code"] == "rate_limited" and "invalid API key" in error["message"]
    # each 401 cost one lookup; the 429s none.  The rest of the stack (health checks of
    # /readyz, the coordinators) reads a little meanwhile: far fewer than FLOOD.
    assert spent < allowed + 150, (spent, statuses, took)
    print(f"{FLOOD} bad keys in {took:.1f}s: {dict(statuses)}, {spent} SELECTs in all")


def test_a_valid_key_from_a_refused_address_still_works(stack: Stack, proxy_url: str) -> None:
    # The key is verified (and so known to each process) before the address fails; the
    # limit protects MySQL from lookups, and a known key costs none.
    conn = _connection(proxy_url)
    good = stack.auth("alice")
    try:
        for _ in range(PROCESSES * 2):  # round robin: each process verifies it
            conn.request("GET", "/v1/workers", headers=good)
            assert conn.getresponse().read() and True
        refused = 0
        for _ in range(PROCESSES * BUDGET * 2):
            conn.request("GET", "/v1/workers", headers={"Authorization": "Bearer zkq_nope"})
            answer = conn.getresponse()
            answer.read()
            refused += answer.status == 429
        assert refused > 0
        conn.request("GET", "/v1/workers", headers=good)
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
    finally:
        conn.close()
