"""A user's app may hold modules named like zkq's parts: zkq installs no top-level
``worker``, ``coordinator`` or ``frontend`` package to collide with them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support import client_of, running_cluster
from zkq.coordinator.job import JobState

pytestmark = pytest.mark.integration


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
    with running_cluster(tmp_path / "cluster", workers=0, coordinators=1) as cluster:
        cluster.add_worker(app="shopapp", env={"PYTHONPATH": str(app_dir)}, name="shop")
        with client_of(cluster) as client:
            done = client.wait(client.submit("greet", "ann").id, 60)
    assert done.state == JobState.SUCCEEDED, done
    assert done.result == {"greeting": "from the app", "to": "ann"}
