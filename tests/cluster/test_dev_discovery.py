"""Commands run as a user runs them after ``make run``: the installed ``zkq`` from the folder
that holds ``.zkq-dev``, with nothing in the environment, finds the session's ``stack``
(started as ``zkq dev up`` starts a cluster); a flag or a variable still wins; and ``eval
"$(zkq dev env)"`` points another shell, in another folder, at it.  On a cluster of its own:
a stopped cluster is not used, and an `up` after a `down` keeps the ports and the demo key.

Leaves the stack as found: the worker started here is drained and gone at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.cluster.conftest import Stack
from tests.support import ZKQ, run_zkq
from zkq.demo import DEMO_KEY, demo_key
from zkq.dev.cluster import DevCluster
from zkq.dev.owner import OWNERS_ENV
from zkq.dev.portbook import in_use
from zkq.dev.ports import free_port
from zkq.dev.waiting import wait_until
from zkq.http_client import HttpClient
from zkq.output import EXIT_UNAVAILABLE

pytestmark = pytest.mark.cluster


def bare_env(**variables: str) -> dict[str, str]:
    """An empty environment but for ``variables`` and the test run's mark (so whatever the
    command starts goes with the run, tests/teardown.py)."""
    mark = {OWNERS_ENV: os.environ[OWNERS_ENV]} if OWNERS_ENV in os.environ else {}
    return {**mark, **variables}


def zkq_in(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return run_zkq(*args, env=bare_env(**variables), cwd=folder, code=None)


def folder_of(stack: Stack) -> Path:
    assert stack.cluster.state_dir.name == ".zkq-dev"
    return stack.cluster.state_dir.parent


def workers_seen(folder: Path) -> list[dict[str, Any]]:
    done = zkq_in(folder, "workers", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_commands_run_from_the_folder_use_the_dev_cluster(stack: Stack) -> None:
    folder = folder_of(stack)
    done = zkq_in(folder, "status", "--json")
    # 1: some other test's jobs may wait for a type nobody serves; never 3 (unreachable)
    assert done.returncode in (0, 1), done.stderr
    view = json.loads(done.stdout)
    expected = stack.cluster.connect_string.split(",")
    assert sorted(m["address"] for m in view["ensemble"]) == sorted(expected)
    # HAProxy's view, from the stats address the cluster wrote for its commands
    assert {f["server"] for f in view["frontends"] if f["backend"] == "zkq_frontends"} >= {
        "frontend-1",
        "frontend-2",
    }
    # its MySQL too: keys, which said "no database" before
    keys = zkq_in(folder, "keys", "list", "--json")
    assert keys.returncode == 0, keys.stderr
    submitted = zkq_in(folder, "submit", "echo", "--payload", '{"from": "the folder"}', "--wait")
    assert submitted.returncode == 0, submitted.stderr + submitted.stdout


def test_a_flag_or_a_variable_wins_over_the_dev_cluster(stack: Stack) -> None:
    folder, nowhere = folder_of(stack), f"127.0.0.1:{free_port()}"
    for args, variables, origin in (
        (("--zk", nowhere), {}, "(from --zk)"),
        ((), {"ZKQ_ZK_HOSTS": nowhere}, "(from ZKQ_ZK_HOSTS)"),
    ):
        done = zkq_in(folder, "status", *args, **variables)
        assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
        line = done.stderr
        assert line.startswith(f"zkq: could not reach ZooKeeper at {nowhere} {origin}"), line
        assert line.count("\n") == 1 and 'eval "$(zkq dev env)"' in line, line


def test_a_worker_started_in_the_folder_joins_as_a_worker(stack: Stack, tmp_path: Path) -> None:
    folder = folder_of(stack)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(ZKQ), "worker", "--app", "zkq.worker.builtin", "--concurrency", "1"],
            cwd=folder,
            env=bare_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    mine = f"-{worker.pid}-"
    try:
        wait_until(
            lambda: worker.poll() is None and any(mine in w["id"] for w in workers_seen(folder)),
            60,
            interval=0.5,
            what=f"the worker started in {folder} to register",
        )
        assert f"the dev cluster in {stack.cluster.state_dir}, as worker" in log_path.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)  # drains: it runs nothing
        try:
            worker.wait(30)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
    assert worker.returncode == 0, log_path.read_text()[-2000:]
    wait_until(
        lambda: not any(mine in w["id"] for w in workers_seen(folder)),
        30,
        what="the worker to leave",
    )


def test_dev_env_points_another_shell_in_another_folder_at_it(stack: Stack) -> None:
    folder = folder_of(stack)
    venv = str(ZKQ.parent)
    script = (
        'cd "$1" && eval "$(zkq dev env)" && cd / && '
        'zkq workers --json > "$2" && printf "%s\\n" "$ZKQ_URL" "$ZKQ_CA_FILE" "$ZKQ_CONFIG"'
    )
    answer = folder / "workers-from-elsewhere.json"
    done = subprocess.run(
        ["bash", "-c", script, "bash", str(folder), str(answer)],
        env=bare_env(PATH=f"{venv}:/usr/bin:/bin"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(answer.read_text())) >= 2  # the stack's workers, seen from /
    url, ca_file, config = done.stdout.split()
    status = stack.cluster.status()
    assert (url, ca_file) == (status["https_url"], status["ca_file"])
    assert config == str(stack.cluster.state_dir / "zk-auth" / "coordinator.toml")
    # what the exports are for: HTTPS through HAProxy, verified with the cluster's CA
    assert requests.get(f"{url}/v1/openapi.json", verify=ca_file, timeout=10).status_code == 200
    as_json = zkq_in(folder, "dev", "env", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "ZKQ_CONFIG": config,
        "ZKQ_URL": url,
        "ZKQ_CA_FILE": ca_file,
    }


# -- a cluster of its own: down, then up again ------------------------------------------------
def test_up_after_down_keeps_the_ports_and_the_demo_key(tmp_path: Path) -> None:
    """As `make down` then `make run`: the same addresses and key, so bookmarks and exported
    variables still work; in between, a command from the folder says the cluster is down."""
    cluster = DevCluster(tmp_path / ".zkq-dev")
    key_file = cluster.state_dir / DEMO_KEY
    # the parts that hold ports: ZooKeeper, MariaDB, a frontend and HAProxy
    options: dict[str, Any] = {"workers": 0, "coordinators": 0, "tick_ms": 200}
    options.update(timeout=120.0, mysql=True, frontends=1)
    try:
        cluster.up(**options)
        before = in_use(cluster.ensemble, cluster.members)
        key = demo_key(key_file, cluster.mysql_url)
        cluster.down()

        done = zkq_in(tmp_path, "status")
        assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
        line = done.stderr
        assert f"as the dev cluster in {cluster.state_dir} is not running)" in line, line
        assert "start it with `zkq dev up`" in line and line.count("\n") == 1, line

        cluster.up(**options)
        assert in_use(cluster.ensemble, cluster.members) == before
        assert demo_key(key_file, cluster.mysql_url) == key
        status = cluster.status()
        client = HttpClient(status["https_url"], api_key=key, ca_file=status["ca_file"])
        assert client.list().jobs == []  # the key works through HAProxy on its old port
        client.close()
    finally:
        cluster.down()
