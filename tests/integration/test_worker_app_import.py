"""``zkq worker --app myapp`` from the app's folder, as Celery and RQ users start theirs:
no PYTHONPATH, the installed command.  The app is found in the working directory by the
worker, by the children of its process pool, and as ``MODULE:NAME`` for a registry of the
app's own; the app's own sibling modules import too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import JobState
from zkq.dev import processes
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

ZKQ = str(Path(sys.executable).with_name("zkq"))

APP = """
import os

import zkq
from settings import GREETING  # a sibling module: found on the same path


@zkq.handler("app-thread")
def in_thread(payload, ctx):
    return {"greeting": GREETING, "pid": os.getpid()}


@zkq.handler("app-process")
def in_process(payload, ctx):
    return {"greeting": GREETING, "pid": os.getpid()}


registry = zkq.Registry()


@registry.handler("app-registry")
def in_registry(payload, ctx):
    return {"greeting": GREETING, "pid": os.getpid()}
"""

#: what each worker is started with, and the type only it serves
WORKERS = {
    "app-thread": ["--app", "myapp", "--types", "app-thread"],
    "app-process": ["--app", "myapp", "--types", "app-process", "--pool", "process"],
    "app-registry": ["--app", "myapp:registry"],
}


def test_the_app_is_imported_from_the_working_directory(
    ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    app_dir = tmp_path / "myproject"
    app_dir.mkdir()
    (app_dir / "myapp.py").write_text(textwrap.dedent(APP))
    (app_dir / "settings.py").write_text("GREETING = 'hello from myproject'\n")
    root = f"/app-import-{uuid.uuid4().hex[:8]}"
    zk = ["--zk", ensemble.connect_string, "--root", root, "--session-timeout", "3"]
    # "" sets nothing on the import path: only what zkq itself puts there
    env = {"PYTHONPATH": "", "PYTHONSAFEPATH": "1"}
    started: list[ManagedProcess] = []
    client = Client(ClusterConfig.load({}, hosts=ensemble.connect_string, root=root))
    try:
        started.append(
            processes.start(
                ProcessSpec("coordinator", [ZKQ, "coordinator", *zk], tmp_path / "c.log", env=env)
            )
        )
        for job_type, args in WORKERS.items():
            argv = [ZKQ, "worker", *zk, *args, "--concurrency", "1"]
            log = tmp_path / f"{job_type}.log"
            started.append(processes.start(ProcessSpec(job_type, argv, log, env, app_dir)))
        client.start()

        def all_serving() -> bool:
            assert all(p.alive() for p in started), "\n".join(p.log_tail() for p in started)
            served = {t for w in client.workers() for t in w["types"]}
            return set(WORKERS) <= served

        wait_until(all_serving, 90, interval=0.2, what="the three workers registered")
        pids = {job_type: p.pid for job_type, p in zip(WORKERS, started[1:], strict=True)}
        for job_type in WORKERS:
            done = client.wait(client.submit(job_type, None).id, 90)
            assert done.state == JobState.SUCCEEDED, (done.error, started[0].log_tail())
            assert done.result["greeting"] == "hello from myproject"
            # the process pool ran it in a child, which imported the app on its own
            in_child = done.result["pid"] != pids[job_type]
            assert in_child == (job_type == "app-process"), (job_type, done.result, pids)
    finally:
        client.close()
        processes.stop_all(started, timeout=15)


def test_worker_help_says_where_the_app_is_imported_from() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKQ_")}
    done = subprocess.run(
        [ZKQ, "worker", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "working directory" in " ".join(done.stdout.split())
