"""A test run killed halfway (SIGKILL: no teardown, no finally, no atexit) leaves nothing
behind: its watchdog kills what it started and removes its state directories, and when the
watchdog is gone too, the next run's start sweeps them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from zkq.dev.owner import REGISTRY_ENV, sweep_stale
from zkq.dev.processes import read_stat
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Starts one real ZooKeeper node through the launcher, says where, and blocks.
INNER = """
import json, os, time
from zkq.dev.zookeeper import ZooKeeperEnsemble

def test_blocks(tmp_path):
    zk = ZooKeeperEnsemble(tmp_path / "zk", size=1)
    zk.start(timeout=120)
    node = zk.nodes[0].process
    ready = {"pid": node.pid, "ticks": node.start_ticks, "dir": str(tmp_path)}
    with open(os.environ["READY"] + ".tmp", "w") as f:
        json.dump(ready, f)
    os.rename(os.environ["READY"] + ".tmp", os.environ["READY"])
    time.sleep(600)
"""


def running(pid: int, ticks: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.start_ticks == ticks and stat.state not in "ZXx"


@pytest.fixture
def killed_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A pytest run of INNER, with a registry of its own, up to the point it blocks."""
    registry, inner = tmp_path / "registry", tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(INNER)
    (inner / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        REGISTRY_ENV: str(registry),
        "READY": str(tmp_path / "ready.json"),
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "-m", "pytest", "-p", "tests.teardown", "-p", "no:cacheprovider"]
    with open(tmp_path / "inner.log", "wb") as log:
        run = subprocess.Popen(
            [*argv, "-q", "test_inner.py"],
            cwd=inner,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: (tmp_path / "ready.json").exists() or run.poll() is not None,
            180,
            what="the inner run to start its ZooKeeper node",
        )
        assert run.poll() is None, (tmp_path / "inner.log").read_text()[-3000:]
        yield tmp_path, run
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
        # whatever the test did, the inner run's processes go (the sweep is idempotent)
        sweep_stale(registry)


def watchdogs(registry: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        # a dead one may linger as a zombie: its parent, the killed run, cannot reap it
        if p.info["status"] != psutil.STATUS_ZOMBIE
        and "zkq.dev.owner" in (p.info["cmdline"] or ())
        and any(str(registry) in arg for arg in p.info["cmdline"])
    ]


def test_watchdog_cleans_up_after_a_killed_run(
    killed_run: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    tmp_path, run = killed_run
    ready = json.loads((tmp_path / "ready.json").read_text())
    assert running(ready["pid"], ready["ticks"])
    assert len(watchdogs(tmp_path / "registry")) == 1

    run.send_signal(signal.SIGKILL)
    run.wait()
    wait_until(
        lambda: (
            not running(ready["pid"], ready["ticks"])
            and not Path(ready["dir"]).exists()
            and not any((tmp_path / "registry").iterdir())
        ),
        60,
        what="the watchdog to kill the ZooKeeper node and remove the run's files",
    )
    # and, its work done, the watchdog itself is gone
    wait_until(lambda: not watchdogs(tmp_path / "registry"), 30, what="the watchdog to exit")


def test_next_run_sweeps_a_killed_run_whose_watchdog_died(
    killed_run: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    tmp_path, run = killed_run
    registry = tmp_path / "registry"
    ready = json.loads((tmp_path / "ready.json").read_text())
    for watchdog in watchdogs(registry):
        watchdog.kill()
    wait_until(lambda: not watchdogs(registry), 30, what="the watchdog to die")
    run.send_signal(signal.SIGKILL)
    run.wait()
    # nobody is left to clean up: the node runs on, orphaned, and the files stay
    assert running(ready["pid"], ready["ticks"])
    assert Path(ready["dir"]).exists()

    swept = sweep_stale(registry)  # what the next run's start does

    assert len(swept) == 1
    assert not running(ready["pid"], ready["ticks"])
    assert not Path(ready["dir"]).exists()
    assert list(registry.iterdir()) == []


LEAKY = """
from zkq.dev.processes import ProcessSpec, start

def test_leaks(tmp_path):
    # started in a session of its own, like every service, and never stopped
    leaked = start(ProcessSpec("sleeper", ["sleep", "600"], tmp_path / "sleeper.log"))
    print("LEAKED", leaked.pid, leaked.start_ticks)
"""


def test_a_run_that_leaves_a_process_running_fails_and_kills_it(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_leaky.py").write_text(LEAKY)
    (inner / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, REGISTRY_ENV: str(tmp_path / "registry"), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "pytest", "-p", "tests.teardown", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*argv, "-q", "-s", "test_leaky.py"],
        cwd=inner,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pid, ticks = (int(w) for w in done.stdout.split("LEAKED ")[1].split()[:2])
    try:
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:]
        assert "1 passed" in done.stdout  # the test itself passed: the run failed for the leak
        assert "still running at the end" in done.stdout
        assert not running(pid, ticks)
    finally:
        if running(pid, ticks):
            os.kill(pid, signal.SIGKILL)
