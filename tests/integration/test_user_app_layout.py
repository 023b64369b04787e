"""A user's app may hold modules named like zkq's parts: zkq installs no top-level
``worker``, ``coordinator`` or ``frontend`` package to collide with them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import client_of, running_cluster
from zkq.coordinator.job import JobState

pytestmark = pytest.mark.integration

#: the `zkq` console script of this environment: unlike `python -m zkq`, it does not put
#: the working directory on the import path itself, so the test sees `--app` do it
ZKQ = Path(sys.executable).with_name("zkq")


def test_an_app_with_its_own_worker_module_runs_under_zkq_worker(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    # the user's own worker.py, imported by their app: before zkq lived under `zkq.`, one
    # of the two `worker` packages shadowed the other
    (app_dir / "worker.py").write_text("GREETING = 'from the app'\n")
    (app_dir / "shopapp.py").write_text(
        textwrap.dedent(
            """
            import worker

            import zkq


            @zkq.handler("greet")
            def greet(payload, ctx):
                return {"greeting": worker.GREETING, "to": payload}
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with running_cluster(tmp_path / "cluster", workers=0, coordinators=1) as cluster:
        env.update(cluster.zk_env("worker"))
        # from the app's folder, as a user runs it: no PYTHONPATH, no checkout around
        argv = [str(ZKQ), "worker", "--zk", cluster.connect_string, "--root", cluster.root]
        log = (tmp_path / "worker.log").open("wb")
        process = subprocess.Popen(
            [*argv, "--app", "shopapp", "--concurrency", "1"],
            cwd=app_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with client_of(cluster) as client:
                done = client.wait(client.submit("greet", "ann").id, 60)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            log.close()
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")[-2000:]
    assert done.state == JobState.SUCCEEDED, (done, worker_log)
    assert done.result == {"greeting": "from the app", "to": "ann"}
