"""Newest-first listing and bulk cancel/requeue through the whole stack: the installed
``zkq`` command as an operator runs it (no terminal, a terminal, ``--yes``), and
``POST /v1/jobs/bulk/{cancel,requeue}`` with its tenant confinement, scopes and dry run.

Jobs of a type of their own are served by no worker, so they stay pending until acted on.
Uses the session's ``stack`` and leaves it as found (its own jobs only are touched).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack
from tests.support import ZKQ, operator_env, run_zkq, unique_type
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster


def env_of(stack: Stack) -> dict[str, str]:
    return operator_env(stack.cluster)


def zkq(stack: Stack, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """The installed command, with no terminal (stdin is /dev/null)."""
    return run_zkq(*args, env=env_of(stack), code=code)


def states(stack: Stack, job_ids: list[str], key: str = "alice") -> list[str]:
    with stack.client(key) as client:
        return [str(client.get(job_id).state) for job_id in job_ids]


def submit(stack: Stack, job_type: str, count: int, key: str = "alice") -> list[str]:
    with stack.client(key) as client:
        return [client.submit(job_type, n).id for n in range(count)]


# -- zkq jobs ---------------------------------------------------------------------------------
def test_jobs_lists_newest_first_with_oldest_and_time_filters(stack: Stack) -> None:
    job_type = unique_type()
    made = submit(stack, job_type, 3)
    listed = json.loads(zkq(stack, "jobs", "--type", job_type, "--json").stdout)
    assert [j["id"] for j in listed["jobs"]] == made[::-1]
    oldest = json.loads(zkq(stack, "jobs", "--type", job_type, "--oldest", "--json").stdout)
    assert [j["id"] for j in oldest["jobs"]] == made
    paged = json.loads(zkq(stack, "jobs", "--type", job_type, "--limit", "2", "--json").stdout)
    assert [j["id"] for j in paged["jobs"]] == made[:0:-1] and paged["next"]
    rest = zkq(stack, "jobs", "--type", job_type, "--after", paged["next"], "--json").stdout
    assert [j["id"] for j in json.loads(rest)["jobs"]] == made[:1]
    recent = json.loads(zkq(stack, "jobs", "--type", job_type, "--since", "1h", "--json").stdout)
    assert len(recent["jobs"]) == 3
    none = json.loads(zkq(stack, "jobs", "--type", job_type, "--until", "1h", "--json").stdout)
    assert none["jobs"] == []
    bad = zkq(stack, "jobs", "--since", "yesterday", code=2)
    assert "not a time" in bad.stderr
    zkq(stack, "cancel", "--type", job_type, "--yes")  # leave no pending job behind


# -- zkq cancel / requeue with filters --------------------------------------------------------
def test_bulk_cancel_without_a_terminal_needs_yes(stack: Stack) -> None:
    job_type = unique_type()
    made = submit(stack, job_type, 3)
    refused = zkq(stack, "cancel", "--type", job_type, "--state", "pending", code=2)
    assert refused.stderr.count("\n") == 1 and "--yes" in refused.stderr
    assert f"cancel 3 job(s) of type {job_type} in state pending" in refused.stderr
    counted = json.loads(zkq(stack, "cancel", "--type", job_type, "--dry-run", "--json").stdout)
    assert counted["matched"] == 3 and counted["done"] == 0 and counted["dry_run"]
    assert states(stack, made) == ["pending"] * 3
    done = json.loads(
        zkq(stack, "cancel", "--type", job_type, "--state", "pending", "--yes", "--json").stdout
    )
    assert (done["matched"], done["done"], done["skipped"], done["failed"]) == (3, 3, 0, 0)
    assert states(stack, made) == ["cancelled"] * 3
    again = zkq(stack, "cancel", "--type", job_type, "--yes")
    assert "no job" in again.stdout
    both = zkq(stack, "cancel", made[0], "--type", job_type, code=2)
    assert "not both" in both.stderr
    neither = zkq(stack, "cancel", code=2)
    assert "filters" in neither.stderr


def read_until(fd: int, wanted: str, timeout: float = 60.0) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                break
            seen += chunk.decode(errors="replace")
    return seen


def test_bulk_cancel_asks_on_a_terminal_and_skips_a_job_ended_meanwhile(stack: Stack) -> None:
    job_type = unique_type()
    made = submit(stack, job_type, 4)
    main, child = pty.openpty()
    process = subprocess.Popen(
        [ZKQ, "cancel", "--type", job_type, "--state", "pending"],
        env=env_of(stack),
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=child,
        text=True,
    )
    os.close(child)
    try:
        prompt = read_until(main, "[y/N]")
        assert f"cancel 4 job(s) of type {job_type} in state pending?" in prompt
        # one of the four ends while the operator reads the question
        with stack.client() as client:
            client.cancel(made[1])
        os.write(main, b"y\n")
        out, _ = process.communicate(timeout=120)
        progress = read_until(main, "failed 0")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    assert process.returncode == 0, out
    assert "cancelled 3, skipped 1" in out and "failed 0" in out
    assert "cancel: 4/4" in progress  # the progress line, on the terminal
    assert states(stack, made) == ["cancelled"] * 4


def test_bulk_requeue_takes_running_jobs_back_on_the_cli_and_over_http(
    stack: Stack, http: requests.Session
) -> None:
    # running jobs: a finished one leaves ZooKeeper within the stack's 3 s retention
    since = f"{time.time() - 1:.3f}"
    with stack.client("bob") as bob, stack.client("alice") as alice:
        made = {"bob": bob.submit("sleep", 15).id, "alice": alice.submit("sleep", 15).id}
    wait_until(
        lambda: [states(stack, [j], k)[0] for k, j in made.items()] == ["running"] * 2,
        60,
        what="both jobs running",
    )
    args = ["requeue", "--type", "sleep", "--state", "running", "--state", "assigned"]
    args += ["--since", since, "--tenant", "globex"]
    done = json.loads(zkq(stack, *args, "--yes", "--json").stdout)
    assert (done["matched"], done["done"], done["failed"]) == (1, 1, 0)
    # over HTTP: requeueing is an admin's
    body = {"type": "sleep", "state": ["running"], "since": since}
    refused = bulk(stack, http, "requeue", "bob", **body)  # its own tenant's jobs
    assert refused.status_code == 403, refused.text
    assert "admin" in refused.json()["error"]["message"]
    with stack.client("alice") as admin:
        assert admin.bulk_requeue(**body, tenant="acme")["done"] == 1
    for key, job_id in made.items():
        with stack.client(key) as client:
            job = client.get(job_id)
            assert str(job.state) in ("pending", "assigned", "running")
            assert job.history[0].ended_at is not None  # the attempt taken back
    with stack.client("alice") as admin:  # left as found: ended
        assert admin.bulk_cancel(type="sleep", since=since)["done"] == 2


# -- over HTTP --------------------------------------------------------------------------------
def bulk(
    stack: Stack, http: requests.Session, action: str, key: str, **body: Any
) -> requests.Response:
    return http.post(
        f"{stack.url}/v1/jobs/bulk/{action}", json=body, headers=stack.auth(key), timeout=60
    )


def test_bulk_cancel_over_http_is_confined_to_the_keys_tenant(
    stack: Stack, http: requests.Session
) -> None:
    job_type = unique_type()
    theirs = submit(stack, job_type, 2, key="alice")  # tenant acme
    mine = submit(stack, job_type, 5, key="bob")  # tenant globex
    counted = bulk(stack, http, "cancel", "bob", type=job_type, dry_run=True)
    assert counted.status_code == 200, counted.text
    assert counted.json()["matched"] == 5 and counted.json()["done"] == 0
    refused = bulk(stack, http, "cancel", "bob", type=job_type, tenant="acme")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    everything = bulk(stack, http, "cancel", "bob")
    assert everything.status_code == 400, everything.text
    # small steps: the client follows the cursor to the end and sums the counts
    with stack.client("bob") as client:
        summed = client.bulk_cancel(type=job_type, state=["pending"], limit=2)
    assert (summed["matched"], summed["done"], summed["skipped"]) == (5, 5, 0)
    assert states(stack, mine, "bob") == ["cancelled"] * 5
    assert states(stack, theirs) == ["pending"] * 2
    # an admin key reaches every tenant, or the one it names
    with stack.client("alice") as admin:
        assert admin.bulk_cancel(type=job_type, tenant="globex", dry_run=True)["matched"] == 0
        assert admin.bulk_cancel(type=job_type, dry_run=True)["matched"] == 2
        assert admin.bulk_cancel(type=job_type)["done"] == 2
    assert states(stack, theirs) == ["cancelled"] * 2
    pool = stack.pool
    try:

        def logged() -> list[tuple[Any, ...]]:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT status, method FROM request_log WHERE key_id = %s AND path = %s",
                    (stack.key_ids["bob"], "/v1/jobs/bulk/cancel"),
                )
                return list(cur.fetchall())

        wait_until(lambda: len(logged()) >= 5, 15, what="bob's bulk requests in the log")
        rows = logged()
    finally:
        pool.close()
    assert {tuple(r) for r in rows} >= {(200, "POST"), (403, "POST"), (400, "POST")}


def test_list_over_http_newest_first_and_by_time(stack: Stack) -> None:
    job_type = unique_type()
    made = submit(stack, job_type, 3)
    with stack.client() as client:
        assert [j.id for j in client.iter_jobs(type=job_type)] == made  # the default: oldest
        newest = [j.id for j in client.iter_jobs(type=job_type, order="newest", limit=2)]
        assert newest == made[::-1]
        assert [j.id for j in client.iter_jobs(type=job_type, since="10m")] == made
        assert list(client.iter_jobs(type=job_type, until="10m")) == []
        client.bulk_cancel(type=job_type)
