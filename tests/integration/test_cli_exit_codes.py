"""The exit statuses the README promises, from the installed ``zkq`` command as a user
runs it: 0 done, 1 refused or unwell, 2 usage, 3 unreachable, 130 interrupted; and every
error one line on stderr.  Against the session's ensemble, under a root of its own with no
coordinator or worker, so a submitted job stays pending as long as the test needs."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import ZKQ, run_zkq, user_env
from zkq.cli_errors import EXAMPLE_JOB_ID
from zkq.coordinator.serving import unserved_warning
from zkq.dev.ports import free_port
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration


def environment(ensemble: ZooKeeperEnsemble, root: str) -> dict[str, str]:
    return user_env(ZKQ_ZK_HOSTS=ensemble.connect_string, ZKQ_ROOT=root)


def zkq(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_zkq(*args, env=env, cwd=cwd, code=None)


def test_exit_statuses_as_documented(ensemble: ZooKeeperEnsemble, tmp_path: Path) -> None:
    env = environment(ensemble, f"/exits-{uuid.uuid4().hex[:8]}")
    submitted = zkq(env, tmp_path, "submit", "exits-nobody-serves")
    assert submitted.returncode == 0, submitted.stderr
    pending = submitted.stdout.strip()
    cancelled = zkq(env, tmp_path, "submit", "exits-nobody-serves").stdout.strip()
    assert zkq(env, tmp_path, "cancel", cancelled).returncode == 0
    nowhere = f"127.0.0.1:{free_port()}"

    table = [
        (0, ["jobs"]),
        (0, ["job", pending]),
        (0, ["job", pending.lower()]),
        (1, ["job", EXAMPLE_JOB_ID]),  # well formed, unknown
        (1, ["cancel", cancelled]),  # refused: it has ended
        (1, ["requeue", EXAMPLE_JOB_ID]),
        (1, ["status"]),  # unwell: no coordinator leads
        (1, ["submit", "exits-nobody-serves", "--wait", "--wait-timeout", "0.5"]),
        (2, ["job", "not-a-job-id"]),
        (2, ["cancel", pending + "0"]),
        (2, ["jobs", "--state", "sleeping"]),
        (2, ["status", "--root", "relative"]),
        (3, ["jobs", "--zk", nowhere]),
        (3, ["job", pending, "--zk", nowhere]),
    ]
    seen = []
    for code, args in table:
        done = zkq(env, tmp_path, *args)
        seen.append((args, done.returncode))
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        if code in (2, 3) or (code == 1 and not done.stdout):
            lines = done.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("zkq: "), (args, done.stderr)
    # the pending job was read, not changed, by all of that
    shown = json.loads(zkq(env, tmp_path, "job", pending, "--json").stdout)
    assert shown["state"] == "pending", seen


def test_ctrl_c_is_one_line_and_exit_130(ensemble: ZooKeeperEnsemble, tmp_path: Path) -> None:
    env = environment(ensemble, f"/interrupt-{uuid.uuid4().hex[:8]}")
    job_type = "interrupt-nobody-serves"
    waiting = subprocess.Popen(
        [str(ZKQ), "submit", job_type, "--wait", "--wait-timeout", "300"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # once its job exists, the command is waiting for it to end
        def submitted() -> bool:
            listed = zkq(env, tmp_path, "jobs", "--type", job_type, "--json")
            return listed.returncode == 0 and bool(json.loads(listed.stdout)["jobs"])

        wait_until(submitted, 60, interval=0.2, what="the submission")
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 130, (out, err)
    # the submission's own warning (no live worker serves the type), then the interrupt
    assert err.splitlines() == [f"zkq: warning: {unserved_warning(job_type)}", "zkq: interrupted"]


@pytest.mark.parametrize(
    ("code", "args"),
    [
        (0, ["jobs"]),
        (0, ["workers"]),
        (0, ["stats"]),
        (1, ["status"]),
        (1, ["job", EXAMPLE_JOB_ID]),
        (1, ["cancel", EXAMPLE_JOB_ID]),
        (1, ["drain", "nobody-1-abcdef"]),
        (1, ["zk", "get", "/no/such/znode"]),
        (1, ["zk", "ls", "/no/such/znode"]),
        (0, ["zk", "tree"]),
        (1, ["requeue", EXAMPLE_JOB_ID]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_root_nothing_ever_used_answers_without_a_traceback(
    ensemble: ZooKeeperEnsemble, tmp_path: Path, code: int, args: list[str]
) -> None:
    """A mistyped ``--root`` is a newcomer's first mistake: an answer, never a traceback."""
    env = environment(ensemble, f"/never-{uuid.uuid4().hex[:8]}")
    done = zkq(env, tmp_path, *args)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    if code and not done.stdout:  # `status` reports unwell on stdout: not an error
        assert len(done.stderr.splitlines()) == 1, done.stderr
