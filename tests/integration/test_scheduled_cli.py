"""``zkq submit --delay/--at/--backoff``, ``zkq jobs --state scheduled``, ``zkq job`` and
``zkq requeue --at`` from the installed command, against the session's ensemble under a
root of its own with no coordinator: nothing promotes or runs the jobs, so each stays as
the command left it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from tests.support import run_zkq, user_env
from zkq.coordinator.paths import Layout
from zkq.coordinator.timestamps import epoch_seconds
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

XMAS = "2026-12-24T18:00:00Z"


def zkq(env: dict[str, str], cwd: Path, *args: str, code: int = 0) -> str:
    done: subprocess.CompletedProcess[str] = run_zkq(*args, env=env, cwd=cwd, code=None)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    if code:
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("zkq: "), (args, done.stderr)
    return done.stdout


def job(env: dict[str, str], cwd: Path, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(zkq(env, cwd, "job", job_id, "--json"))
    return data


def test_submit_later_list_show_and_requeue_at(ensemble: ZooKeeperEnsemble, tmp_path: Path) -> None:
    root = f"/later-{uuid.uuid4().hex[:8]}"
    env = user_env(ZKQ_ZK_HOSTS=ensemble.connect_string, ZKQ_ROOT=root)
    job_type = "later-nobody-serves"
    before = time.time()
    delayed = json.loads(
        zkq(
            env,
            tmp_path,
            "submit",
            job_type,
            "--delay",
            "3600",
            "--max-attempts",
            "3",
            "--backoff",
            "fixed",
            "--backoff-delay",
            "30",
            "--json",
        )
    )
    assert delayed["state"] == "scheduled" and delayed["scheduled_for"] == "delay"
    assert before + 3600 <= delayed["run_at"] <= time.time() + 3600
    assert delayed["retry"] == {"backoff": "fixed", "delay": 30.0}
    at = zkq(env, tmp_path, "submit", job_type, "--at", XMAS, "--backoff-base", "2").strip()
    now = zkq(env, tmp_path, "submit", job_type).strip()

    listed = json.loads(zkq(env, tmp_path, "jobs", "--state", "scheduled", "--json"))
    assert sorted(j["id"] for j in listed["jobs"]) == sorted([delayed["id"], at])
    shown = job(env, tmp_path, at)
    assert shown["run_at"] == epoch_seconds(XMAS) and shown["retry"]["backoff"] == "exponential"
    human = zkq(env, tmp_path, "job", at)
    assert "run at" in human and "(delay)" in human and "retry      exponential" in human
    assert "run at" not in zkq(env, tmp_path, "job", now)

    # a cancelled job goes back to wait for a time; --at on one not ended is refused
    assert zkq(env, tmp_path, "cancel", delayed["id"]).split() == [delayed["id"], "cancelled"]
    zkq(env, tmp_path, "requeue", delayed["id"], "--at", XMAS)
    revived = job(env, tmp_path, delayed["id"])
    assert revived["state"] == "scheduled" and revived["run_at"] == epoch_seconds(XMAS)
    assert revived["history"][-1]["kind"] == "requeue"
    # with the due-time entry the leader promotes it by
    entry = Layout(root).scheduled_entry(epoch_seconds(XMAS) or 0.0, delayed["id"])
    zk = KazooClient(hosts=ensemble.connect_string)
    zk.start(timeout=30)
    try:
        assert zk.exists(entry) is not None
    finally:
        zk.stop()
        zk.close()
    zkq(env, tmp_path, "requeue", now, "--at", XMAS, code=1)

    # every bad value: one line, exit 2, naming the flag
    for args in (
        ["--delay", "-5"],
        ["--at", "2026-12-24 18:00"],
        ["--at", "soon"],
        ["--delay", "5", "--at", XMAS],
        ["--backoff", "sometimes"],
        ["--backoff", "fixed", "--backoff-base", "2", "--backoff-delay", "1"],
        ["--backoff-factor", "50"],
    ):
        zkq(env, tmp_path, "submit", job_type, *args, code=2)
    assert len(json.loads(zkq(env, tmp_path, "jobs", "--json"))["jobs"]) == 3
