"""A job type no live worker serves, against the whole stack: accepted all the same, and
said so where a person looks: the submission's response (``warnings``, ``Zkq-Warning``),
``zkq submit`` on stderr, the leader's log, ``zkq status`` (exit 1 past a threshold), the
timeout of ``zkq submit --wait``; and ``zkq pause`` of a type nobody used wants ``--force``.

The ``zkq`` commands run as a user runs them: the installed console script, in a folder of
their own, with the cluster named in the environment.  Uses the session's ``stack`` and
leaves it as found: jobs left pending are cancelled, the extra worker is stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack
from tests.support import client_of, log_text, operator_env, run_zkq, unique_type
from zkq.coordinator.errors import InvalidTransition, JobNotFound
from zkq.coordinator.serving import unserved_warning
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster

WORKER = "solo-unserved"


@pytest.fixture
def pending(stack: Stack) -> Iterator[list[str]]:
    """Ids of jobs a test leaves pending: cancelled at the end, so the stack's queues are
    as the test found them."""
    ids: list[str] = []
    yield ids
    # through ZooKeeper: whichever tenant the job has (`zkq submit`'s are not alice's)
    with client_of(stack.cluster) as client:
        for job_id in ids:
            # it ended meanwhile (and may be archived already: the stack keeps 3 s)
            with contextlib.suppress(InvalidTransition, JobNotFound):
                client.cancel(job_id)


def zkq(
    stack: Stack, cwd: Path, *args: str, code: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``zkq *args`` as an operator who acts runs it (the coordinator's credential)."""
    return run_zkq(*args, env=operator_env(stack.cluster, **(env or {})), cwd=cwd, code=code)


def post(stack: Stack, path: str, body: Any) -> requests.Response:
    r = requests.post(f"{stack.url}{path}", json=body, headers=stack.auth(), timeout=10)
    assert r.status_code == 201, r.text
    return r


def leader_log(stack: Stack) -> str:
    """What every coordinator has logged: only the leader says anything about queues."""
    return "\n".join(
        log_text(stack.cluster, m.name) for m in stack.cluster.members_of("coordinator")
    )


# -- the submission's response -----------------------------------------------------------------
def test_a_submission_of_a_type_nobody_serves_is_accepted_with_a_warning(
    stack: Stack, pending: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    lonely, other = unique_type(), unique_type()
    r = post(stack, "/v1/jobs", {"type": lonely})
    pending.append(r.json()["id"])
    assert r.json()["state"] == "pending"
    assert r.json()["warnings"] == [unserved_warning(lonely)]
    assert r.headers["Zkq-Warning"] == unserved_warning(lonely)
    served = post(stack, "/v1/jobs", {"type": "echo", "payload": 1})
    assert served.json()["warnings"] == [] and "Zkq-Warning" not in served.headers

    batch = post(stack, "/v1/jobs/batch", {"jobs": [{"type": t} for t in (lonely, "echo", other)]})
    pending += [j["id"] for j in batch.json()["jobs"] if j["type"] != "echo"]
    assert batch.json()["warnings"] == [unserved_warning(t) for t in sorted((lonely, other))]
    assert batch.headers["Zkq-Warning"] == "; ".join(batch.json()["warnings"])
    # many new types: all in the body, the first few in the header, which stays small
    many = sorted(unique_type() for _ in range(5))
    wide = post(stack, "/v1/jobs/batch", {"jobs": [{"type": t} for t in many]})
    pending += [j["id"] for j in wide.json()["jobs"]]
    assert wide.json()["warnings"] == [unserved_warning(t) for t in many]
    assert wide.headers["Zkq-Warning"].endswith("; and 2 more in the body's warnings")

    caplog.set_level(logging.WARNING, "zkq.http_client")
    with stack.client() as client:
        job = client.submit(lonely)
        pending.append(job.id)
        assert client.last_warnings == [unserved_warning(lonely)]
        logged = [r.getMessage() for r in caplog.records if r.name == "zkq.http_client"]
        assert logged == [f"zkq: {unserved_warning(lonely)}"]
        client.submit("noop")
        assert client.last_warnings == []


# -- a worker for the type comes and goes --------------------------------------------------------
def served_now(stack: Stack, job_type: str, pending: list[str], times: int = 1) -> bool:
    """Whether ``times`` submissions in a row (spread by HAProxy over every frontend
    process) came back without a warning."""
    for _ in range(times):
        r = post(stack, "/v1/jobs", {"type": job_type, "payload": 0})
        pending.append(r.json()["id"])
        if r.json()["warnings"]:
            return False
    return True


def test_warnings_logs_and_wait_causes_follow_a_worker_that_comes_and_goes(
    stack: Stack, pending: list[str], tmp_path: Path
) -> None:
    job_type = "solo"  # tests.apps.solo: no worker of the stack serves it
    assert not served_now(stack, job_type, pending)
    # the CLI's submission says so on stderr, and its wait names the cause
    done = zkq(
        stack, tmp_path, "submit", job_type, "--wait", "--wait-timeout", "1", "--json", code=1
    )
    pending.append(json.loads(done.stdout)["id"])
    assert f"zkq: warning: {unserved_warning(job_type)}" in done.stderr
    assert "is still pending after 1s: no live worker serves type 'solo'" in done.stderr
    # and the leader, in its log
    waiting = "pending job(s) of type 'solo' and no live worker serves it"
    wait_until(lambda: waiting in leader_log(stack), 30, what="the leader's line")

    # one slot, no prefetch: a second job waits for the slot, pending
    stack.cluster.add_worker(
        app="tests.apps.solo", concurrency=1, extra_args=["--prefetch", "0"], name=WORKER
    )
    try:
        wait_until(lambda: served_now(stack, job_type, pending, times=8), 60, what="no warning")
        wait_until(
            lambda: "a live worker now serves type 'solo'" in leader_log(stack),
            30,
            what="the leader's line about the new worker",
        )
        # long enough for the command below to start, wait a second and look
        busy = post(stack, "/v1/jobs", {"type": job_type, "payload": 15}).json()["id"]
        pending.append(busy)
        with stack.client() as client:
            wait_until(lambda: str(client.get(busy).state) == "running", 60, what="running")
        done = zkq(
            stack, tmp_path, "submit", job_type, "--wait", "--wait-timeout", "1", "--json", code=1
        )
        pending.append(json.loads(done.stdout)["id"])
        assert "zkq: warning" not in done.stderr
        assert "all 1 slot(s) of the workers serving type 'solo' are busy" in done.stderr
    finally:
        stack.cluster.stop_member(WORKER, timeout=60)  # it drains: the running job ends
    wait_until(lambda: not served_now(stack, job_type, pending), 60, what="the warning again")


# -- zkq status ----------------------------------------------------------------------------------
def test_status_reports_jobs_waiting_longer_than_the_threshold_for_nobody(
    stack: Stack, pending: list[str], tmp_path: Path
) -> None:
    lonely = unique_type()
    done = zkq(stack, tmp_path, "submit", lonely)
    pending.append(done.stdout.strip())
    assert f"zkq: warning: {unserved_warning(lonely)}" in done.stderr
    view = json.loads(
        zkq(stack, tmp_path, "status", "--json", "--unserved-after", "0", code=1).stdout
    )
    assert lonely in [q["type"] for q in view["unserved"]] and view["unserved_after"] == 0
    [problem] = [p for p in view["problems"] if repr(lonely) in p]
    assert "no live worker serves the type" in problem
    text = zkq(stack, tmp_path, "status", env={"ZKQ_UNSERVED_AFTER": "0"}, code=1).stdout
    assert "PROBLEMS:" in text and repr(lonely) in text
    # within the threshold it is shown, not reported
    calm = json.loads(zkq(stack, tmp_path, "status", "--json", "--unserved-after", "3600").stdout)
    assert lonely in [q["type"] for q in calm["unserved"]] and calm["ok"] is True


# -- zkq pause ------------------------------------------------------------------------------------
def test_pause_of_a_type_nobody_used_asks_for_force(stack: Stack, tmp_path: Path) -> None:
    typo = f"never-{uuid.uuid4().hex[:8]}"
    refused = zkq(stack, tmp_path, "pause", typo, code=1)
    [line] = refused.stderr.splitlines()
    assert line.startswith("zkq: ") and f"type {typo!r} was ever submitted" in line
    assert "--force" in line and refused.stdout == ""
    assert "(was not paused)" in zkq(stack, tmp_path, "resume", typo).stdout
    assert zkq(stack, tmp_path, "pause", typo, "--force").stdout.strip() == f"{typo} paused"
    assert zkq(stack, tmp_path, "pause", typo).stdout.strip() == f"{typo} paused (already)"
    zkq(stack, tmp_path, "resume", typo)
    # a type a live worker serves needs no force
    assert zkq(stack, tmp_path, "pause", "echo").stdout.strip() == "echo paused"
    zkq(stack, tmp_path, "resume", "echo")
