"""The README's handler example, as written, served by a real worker (and a coordinator)
against the test ensemble, and a job submitted through its handle.  If the example stops
working, or stops showing what the API does, this fails."""

from __future__ import annotations

import importlib
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import JobState
from zkq.dev import processes
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.worker.registry import Handler, JobContext

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def handler_example() -> tuple[str, str]:
    """The README's one ```python block with handlers: its module name (from its first
    line, ``# myapp.py``) and its source."""
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    examples = [b for b in blocks if "@zkq.handler" in b]
    assert len(examples) == 1, "the README should have one Python block with @zkq.handler"
    first_line = examples[0].splitlines()[0]
    named = re.fullmatch(r"# (\w+)\.py", first_line)
    assert named, f"the handler example should start with '# <module>.py', not {first_line!r}"
    return named.group(1), examples[0]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ModuleType]:
    """The example written to a module of its own and imported here too, for its handles."""
    name, source = handler_example()
    (tmp_path / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


@pytest.fixture
def client(ensemble: ZooKeeperEnsemble, app: ModuleType, tmp_path: Path) -> Iterator[Client]:
    """A coordinator and a worker serving the example (``zkq worker --app <module>``),
    under a root of their own, and a client of them."""
    root = f"/readme-{uuid.uuid4().hex[:8]}"
    zk = ["--zk", ensemble.connect_string, "--root", root]
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "ZKQ_SESSION_TIMEOUT": "3"}
    started: list[ManagedProcess] = []
    zkq_client = Client(ClusterConfig.load({}, hosts=ensemble.connect_string, root=root))
    try:
        for role, args in (
            ("coordinator", []),
            ("worker", ["--app", app.__name__, "--concurrency", "2"]),
        ):
            argv = [sys.executable, "-m", "zkq", role, *zk, *args]
            log = tmp_path / f"{role}.log"
            started.append(processes.start(ProcessSpec(role, argv, log, env=env)))
        zkq_client.start()

        def worker_serves_the_example() -> bool:
            assert all(p.alive() for p in started), "\n".join(p.log_tail() for p in started)
            return any("resize" in w["types"] for w in zkq_client.workers())

        wait_until(worker_serves_the_example, 60, interval=0.1, what="the example's worker")
        yield zkq_client
    finally:
        zkq_client.close()
        processes.stop_all(started, timeout=10)


def test_the_readme_handler_example_runs_as_written(app: ModuleType, client: Client) -> None:
    resize, notify = app.resize, app.notify
    assert isinstance(resize, Handler) and isinstance(notify, Handler)
    payload = {"image": "a.png"}  # what the example's handler reads, as the README submits it

    # the handle is still the function: what it returns here, the worker must record
    local = JobContext("local", resize.type, 1, 1)
    expected = resize(payload, local)

    job = resize.submit(payload, client=client)
    # the declared defaults, not zkq's, went into the record
    assert (job.priority, job.max_attempts, job.timeout) == (
        resize.defaults.priority,
        resize.defaults.max_attempts,
        resize.defaults.timeout,
    )
    done = client.wait(job.id, timeout=60)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.result == expected

    # the child spawned through its handle, with the child handler's own defaults
    assert len(done.children) == len(local.children) == 1
    child = client.wait(done.children[0], timeout=60)
    assert child.type == notify.type and child.parent == done.id
    assert child.priority == notify.defaults.priority
    assert child.state == JobState.SUCCEEDED, child.error
    spawned = local.children[0]
    assert child.result == notify(spawned.payload, JobContext("local", notify.type, 1, 1))
