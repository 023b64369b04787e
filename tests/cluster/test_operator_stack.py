"""Operator tooling against the whole stack: ``zkq status`` reading HAProxy's view of the
frontends (through the ``haproxy-stats`` library, as an operator would run it), a frontend
taken down and seen DOWN, and each frontend's Prometheus ``/metrics``.

Uses the session's ``stack`` and leaves it as found: the stopped frontend is started
again, the extra frontend is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import Result
from prometheus_client.multiprocess import MultiProcessCollector

from tests.cluster.conftest import Stack
from tests.support import FRONTEND_FAMILIES, metric_families, unique_type, zkq_cli
from zkq.coordinator.ids import new_job_id
from zkq.dev.frontends import HaproxyOptions, metrics_dir, start_frontend, wait_ready
from zkq.dev.members import Member
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster

FRONTENDS = {"frontend-1", "frontend-2"}
#: HAProxy marks a server DOWN after `fall` failed checks `inter` apart (the launcher's)
CHECKS = HaproxyOptions()
#: a generous deadline (ten times the checks' own time), not a figure: how soon HAProxy
#: sees a dead frontend is measured by `zkq bench timings`
DOWN_WITHIN = CHECKS.fall * CHECKS.check_inter_ms / 1000 * 10


# -- zkq status -------------------------------------------------------------------------------
def run(stack: Stack, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    # the shared stack holds jobs of types no worker serves (other tests' on purpose): past
    # the default minute `zkq status` reports them, which is not what these tests look at
    return zkq_cli(
        stack.cluster, *args, code=code, env={"ZKQ_UNSERVED_AFTER": "1e9", **(env or {})}
    )


def status_json(stack: Stack, *args: str, code: int = 0, **kw: Any) -> Any:
    return json.loads(run(stack, "status", *args, "--json", code=code, **kw).stdout)


def frontend_rows(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert "frontends_error" not in view, view["frontends_error"]
    return {f["server"]: f for f in view["frontends"] if f["backend"] == "zkq_frontends"}


def stats_port(stack: Stack) -> int:
    return stack.cluster.member("haproxy").ports["stats"]


def test_status_lists_both_frontends_up_as_haproxy_names_them(stack: Stack) -> None:
    stack.wait_servers({name: "UP" for name in FRONTENDS})
    # the address as the launcher records it (the stats page's URL)
    url = stack.cluster.stats_url
    text = run(stack, "status", "--haproxy-stats", url).output
    assert "Frontends (HAProxy)" in text and "frontend-1" in text and "frontend-2" in text
    assert text.rstrip().endswith("OK")
    view = status_json(stack, "--haproxy-stats", url)
    rows = frontend_rows(view)
    assert set(rows) == FRONTENDS
    assert all(r["status"] == "UP" and r["check"] == "L7OK" for r in rows.values()), rows
    # each with its address as HAProxy knows it (the CSV's addr: `stats show-legends`)
    addresses = {n: f"127.0.0.1:{stack.cluster.member(n).ports['http']}" for n in FRONTENDS}
    assert {n: r["address"] for n, r in rows.items()} == addresses
    assert all(address in text for address in addresses.values())
    assert view["ok"] is True and view["problems"] == []
    # the other spellings an operator may have at hand: the same view
    port = stats_port(stack)
    for address in (f"127.0.0.1:{port}", f"127.0.0.1:{port}/stats", f"{url};csv"):
        assert set(frontend_rows(status_json(stack, "--haproxy-stats", address))) == FRONTENDS


def test_status_finds_the_stats_address_by_itself(stack: Stack, tmp_path: Path) -> None:
    port = stats_port(stack)
    from_env = status_json(stack, env={"ZKQ_HAPROXY_STATS": f"127.0.0.1:{port}"})
    assert set(frontend_rows(from_env)) == FRONTENDS
    config = tmp_path / "zkq.toml"
    config.write_text(f'[haproxy]\nstats = "127.0.0.1:{port}"\n')
    from_file = status_json(stack, "--config", str(config))
    assert set(frontend_rows(from_file)) == FRONTENDS
    # without any address, no frontends part at all (not a problem)
    assert "frontends" not in status_json(stack)


def test_status_says_where_it_found_no_stats(stack: Stack) -> None:
    port = stack.cluster.member("haproxy").ports["http"]  # HAProxy, but not its stats
    view = status_json(stack, "--haproxy-stats", f"127.0.0.1:{port}", code=1)
    assert view["frontends"] == [] and "no HAProxy stats at" in view["frontends_error"]
    assert view["frontends_error"] in view["problems"]


def test_a_frontend_down_is_down_in_haproxy_and_in_status(stack: Stack) -> None:
    url = stack.cluster.stats_url
    stack.wait_servers({name: "UP" for name in FRONTENDS})
    stack.cluster.stop_frontend("frontend-2")
    try:
        stack.wait_servers({"frontend-2": "DOWN"}, timeout=DOWN_WITHIN)

        result = run(stack, "status", "--haproxy-stats", url, code=1)
        row = next(line for line in result.output.splitlines() if " frontend-2 " in line)
        assert "DOWN" in row.split(), row
        assert "PROBLEMS:" in result.output and "frontend frontend-2 is DOWN" in result.output

        view = status_json(stack, "--haproxy-stats", url, code=1)
        rows = frontend_rows(view)
        assert rows["frontend-1"]["status"] == "UP"
        assert rows["frontend-2"]["status"] == "DOWN" and rows["frontend-2"]["check"] == "L4CON"
        assert view["ok"] is False
        assert view["problems"] == ["frontend frontend-2 is DOWN"]
        # HAProxy sends everything to the one left: clients see nothing of it
        r = requests.get(f"{stack.url}/v1/jobs", headers=stack.auth(), timeout=10)
        assert r.status_code == 200
    finally:
        stack.cluster.start_frontend("frontend-2")
        stack.wait_servers({name: "UP" for name in FRONTENDS})
    assert status_json(stack, "--haproxy-stats", url)["ok"] is True


# -- /metrics ---------------------------------------------------------------------------------
def scrape(base_url: str) -> dict[str, Any]:
    r = requests.get(f"{base_url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return metric_families(r.text)


def sample(families: dict[str, Any], name: str, suffix: str = "_total", **labels: str) -> float:
    for s in families[name].samples:
        if s.name == name + suffix and s.labels == labels:
            return float(s.value)
    return 0.0


def test_metrics_count_what_a_frontend_serves(stack: Stack) -> None:
    base = stack.frontend_url("frontend-1")  # its own port: the counts of one frontend
    before = scrape(base)
    assert set(before) >= FRONTEND_FAMILIES
    job_route = {"route": "/v1/jobs/{job_id}", "method": "GET"}

    with requests.Session() as http:
        one = http.post(
            f"{base}/v1/jobs", json={"type": unique_type()}, headers=stack.auth(), timeout=10
        )
        assert one.status_code == 201, one.text
        batch = http.post(
            f"{base}/v1/jobs/batch",
            json={"jobs": [{"type": unique_type()} for _ in range(3)]},
            headers=stack.auth(),
            timeout=10,
        )
        assert batch.status_code == 201, batch.text
        assert http.post(f"{base}/v1/jobs", json={"type": "echo"}, timeout=10).status_code == 401
        missing = http.get(f"{base}/v1/jobs/{new_job_id()}", headers=stack.auth(), timeout=10)
        assert missing.status_code == 404
        assert http.get(f"{base}/v1/no-such-route", timeout=10).status_code == 404

    after = scrape(base)
    assert sample(after, "zkq_submissions", outcome="accepted") - sample(
        before, "zkq_submissions", outcome="accepted"
    ) == 4  # fmt: skip
    assert sample(after, "zkq_submissions", outcome="refused") - sample(
        before, "zkq_submissions", outcome="refused"
    ) == 1  # fmt: skip
    assert sample(after, "zkq_http_requests", **job_route, status="404") - sample(
        before, "zkq_http_requests", **job_route, status="404"
    ) == 1  # fmt: skip
    # exactly the one request of each kind made above, not merely "some"
    assert (
        sample(after, "zkq_http_requests", route="unmatched", method="GET", status="404")
        - sample(before, "zkq_http_requests", route="unmatched", method="GET", status="404")
        == 1
    )
    assert sample(after, "zkq_http_request_duration_seconds", "_count", **job_route) - sample(
        before, "zkq_http_request_duration_seconds", "_count", **job_route
    ) == 1  # fmt: skip
    # the paths asked for never become labels
    text = requests.get(f"{base}/metrics", timeout=10).text
    assert one.json()["id"] not in text and "no-such-route" not in text

    # the request log's buffer drains into MySQL within its flush interval (and backoff)
    wait_until(
        lambda: sample(scrape(base), "zkq_request_log_pending", "") == 0,
        15,
        interval=0.3,
        what="the request log to be written",
    )
    assert sample(scrape(base), "zkq_request_log_dropped") == 0


def test_long_polls_in_progress_are_counted(stack: Stack) -> None:
    base = stack.frontend_url("frontend-1")
    job = requests.post(
        f"{base}/v1/jobs", json={"type": unique_type()}, headers=stack.auth(), timeout=10
    ).json()
    answered: list[int] = []

    def poll() -> None:
        r = requests.get(
            f"{base}/v1/jobs/{job['id']}", params={"wait": 3}, headers=stack.auth(), timeout=15
        )
        answered.append(r.status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        wait_until(
            lambda: sample(scrape(base), "zkq_http_long_polls_in_progress", "") == 1,
            5,
            interval=0.1,
            what="the long-poll to be counted",
        )
    finally:
        poller.join(15)
    assert answered == [200]
    assert sample(scrape(base), "zkq_http_long_polls_in_progress", "") == 0


def test_metrics_are_not_served_through_haproxy(stack: Stack) -> None:
    # each frontend is scraped at its own address: through the round robin a scrape would
    # read whichever frontend it reached
    for path in ("/metrics", "/%6detrics", "/metrics?x=1"):
        r = requests.get(f"{stack.url}{path}", timeout=10)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
    for name in FRONTENDS:
        assert set(scrape(stack.frontend_url(name))) >= FRONTEND_FAMILIES


@pytest.fixture
def two_process_frontend(stack: Stack) -> Iterator[Member]:
    """A frontend of two gunicorn worker processes (not behind HAProxy)."""
    member = start_frontend(
        stack.cluster, name="metrics-frontend", env={"ZKQ_GUNICORN_WORKERS": "2"}
    )
    try:
        wait_ready([member], 60)
        yield member
    finally:
        stack.cluster.stop_member(member.name)


def test_a_scrape_shows_every_worker_process_of_the_frontend(
    stack: Stack, two_process_frontend: Member
) -> None:
    member = two_process_frontend
    base = f"http://127.0.0.1:{member.ports['http']}"
    files = metrics_dir(stack.cluster, member.ports["http"])
    master = member.process.pid
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    sent = 0

    def burst() -> None:
        nonlocal sent

        def one(_: int) -> int:
            # a connection each, many at once: both processes accept some
            return requests.get(f"{base}/healthz", timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(one, range(40))) == {200}
        sent += 40

    def counted_by(pid: int) -> float:
        """What one process has counted, read from its own file."""
        path = files / f"counter_{pid}.db"
        if not path.exists():
            return 0.0
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for s in metric.samples:
                if s.name == "zkq_http_requests_total" and s.labels == healthz:
                    return float(s.value)
        return 0.0

    def workers() -> set[int]:
        return set(member.process.group_members()) - {master}

    def both_counted() -> bool:
        burst()
        now = workers()
        return len(now) == 2 and all(counted_by(pid) > 0 for pid in now)

    wait_until(both_counted, 60, interval=0.1, what="both worker processes to serve requests")
    first, second = sorted(workers())
    assert counted_by(first) + counted_by(second) == sent
    assert sample(scrape(base), "zkq_http_requests", **healthz) == sent  # from either one

    # a worker killed outright: gunicorn starts another, and what the dead one counted
    # still counts; its in-progress gauges are dropped (child_exit)
    assert (files / f"gauge_livesum_{first}.db").exists()
    os.kill(first, signal.SIGKILL)  # one of the processes this test started
    wait_until(
        lambda: not (files / f"gauge_livesum_{first}.db").exists(),
        30,
        interval=0.1,
        what="gunicorn to mark the killed worker dead",
    )
    wait_until(
        lambda: len(workers() - {first}) == 2,
        30,
        interval=0.1,
        what="gunicorn to replace the killed worker",
    )
    assert sample(scrape(base), "zkq_http_requests", **healthz) == sent
