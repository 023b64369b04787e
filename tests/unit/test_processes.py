"""Process supervision by pid and start time, with plain ``sleep`` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zkq.dev import processes
from zkq.dev.ports import free_port, free_ports
from zkq.dev.processes import ManagedProcess, ProcessSpec, read_stat
from zkq.dev.waiting import wait_until

Starter = Callable[..., ManagedProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    """Start processes for one test; every one of them (and its group) is stopped after."""
    started: list[ManagedProcess] = []

    def _start(*argv: str, name: str = "p", env: dict[str, str] | None = None) -> ManagedProcess:
        proc = processes.start(ProcessSpec(name, list(argv), tmp_path / f"{name}.log", env=env))
        started.append(proc)
        return proc

    try:
        yield _start
    finally:
        processes.stop_all(started, timeout=2.0)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_started_process_is_alive_and_round_trips_through_json(start: Starter) -> None:
    proc = start("sleep", "60")
    assert proc.alive()
    again = ManagedProcess.from_dict(json.loads(json.dumps(proc.to_dict())))
    assert again == proc
    assert again.alive()
    assert read_stat(proc.pid) is not None
    assert proc.start_ticks == read_stat(proc.pid).start_ticks  # type: ignore[union-attr]
    assert (proc.rss_bytes() or 0) > 0


def test_output_goes_to_the_log_file_and_stdin_is_devnull(start: Starter) -> None:
    # The log's header line repeats argv, so the greeting is computed, not spelled.
    proc = start(*_python("import time; print('hel' + 'lo', flush=True); time.sleep(60)"))
    wait_until(lambda: "hello" in proc.log_path.read_text(), 10, what="the greeting")
    assert os.readlink(f"/proc/{proc.pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{proc.pid}/fd/1") == str(proc.log_path)
    assert os.readlink(f"/proc/{proc.pid}/fd/2") == str(proc.log_path)
    # Its own session, hence its own process group: stopping it cannot hit pytest.
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)


def test_env_is_laid_over_ours(start: Starter) -> None:
    code = "import os; print(os.environ['ZKQ_TEST_VALUE'], 'PATH' in os.environ, flush=True)"
    proc = start(*_python(code), env={"ZKQ_TEST_VALUE": "42"})
    assert proc.wait(10) == 0
    assert "42 True" in proc.log_path.read_text()


def test_stop_terminates_and_reports_the_exit_code(start: Starter) -> None:
    proc = start("sleep", "60")
    proc.stop(timeout=5)
    assert not proc.alive()
    assert proc.exit_code == -signal.SIGTERM
    assert read_stat(proc.pid) is None  # reaped, not left a zombie


def test_a_recycled_pid_is_never_signalled(start: Starter) -> None:
    # The record names a live pid, but with another start time: as if the process we
    # started had died and the kernel had handed its pid to this one.
    victim = start("sleep", "60")
    stale = ManagedProcess.from_dict({**victim.to_dict(), "start_ticks": victim.start_ticks - 1})
    assert not stale.alive()
    assert not stale.signal(signal.SIGKILL)
    assert not stale.kill()
    # Its group is the victim's now (the pid leads it), so nothing is swept either.
    assert stale.group_members() == []
    stale.stop(timeout=1)
    assert victim.alive()


def test_exited_child_is_not_alive_even_from_a_fresh_record(start: Starter) -> None:
    proc = start("true")
    # A record built from JSON has no Popen handle: it reads /proc, sees the zombie, and
    # reaps it because the start time proves it is ours.
    copy = ManagedProcess.from_dict(proc.to_dict())
    wait_until(lambda: not copy.alive(), 10, what="true to exit")
    assert not proc.alive()


def test_zombie_of_another_parent_is_not_alive(start: Starter) -> None:
    # The parent forks a child that exits at once and is never reaped: a zombie that is
    # not our child, so only /proc/<pid>/stat can tell it is dead.
    parent = start(
        *_python(
            "import os, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0)\n"
            "print(pid, flush=True)\n"
            "time.sleep(60)\n"
        )
    )
    line = wait_until(
        lambda: [s for s in parent.log_path.read_text().splitlines() if s.isdigit()],
        10,
        what="the child's pid",
    )
    pid = int(line[0])
    wait_until(lambda: getattr(read_stat(pid), "state", None) == "Z", 10, what="a zombie")
    stat = read_stat(pid)
    assert stat is not None
    zombie = ManagedProcess("zombie", pid, ["?"], parent.log_path, 0.0, stat.start_ticks)
    assert not zombie.alive()
    assert not zombie.signal(signal.SIGTERM)


def test_stop_sweeps_the_whole_group(start: Starter) -> None:
    proc = start("sh", "-c", "sleep 60 & sleep 60 & wait")
    members = wait_until(lambda: len(proc.group_members()) == 3 and proc.group_members(), 10)
    proc.stop(timeout=5)
    assert proc.group_members() == []
    assert all(read_stat(pid) is None or read_stat(pid).state == "Z" for pid in members)  # type: ignore[union-attr]


def test_children_of_a_killed_leader_are_swept_by_stop(start: Starter) -> None:
    proc = start("sh", "-c", "sleep 60 & wait")
    wait_until(lambda: len(proc.group_members()) == 2, 10, what="sh and its sleep")
    assert proc.kill()  # kill -9 of the leader only, as a crash would
    proc.wait(10)
    orphans = proc.group_members()
    assert len(orphans) == 1
    proc.stop(timeout=5)
    assert proc.group_members() == []


def test_stop_escalates_to_sigkill(start: Starter) -> None:
    stubborn = start(
        *_python(
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('rea' + 'dy', flush=True)\n"
            "time.sleep(60)\n"
        )
    )
    wait_until(lambda: "ready" in stubborn.log_path.read_text(), 10, what="the handler")
    stubborn.stop(timeout=0.5)
    assert stubborn.exit_code == -signal.SIGKILL


def test_pause_resume_and_stopping_a_paused_process(start: Starter) -> None:
    proc = start("sleep", "60")
    assert proc.pause()
    wait_until(lambda: read_stat(proc.pid).state == "T", 5, what="stopped state")  # type: ignore[union-attr]
    assert proc.alive()  # paused is not dead
    assert proc.resume()
    wait_until(lambda: read_stat(proc.pid).state == "S", 5, what="sleeping state")  # type: ignore[union-attr]
    proc.pause()
    # SIGTERM alone would wait for a SIGCONT; stop() sends both, so no SIGKILL is needed.
    proc.stop(timeout=5)
    assert proc.exit_code == -signal.SIGTERM


def test_pause_returns_once_every_busy_thread_has_stopped(start: Starter) -> None:
    # four threads spinning on the CPU, like a server answering requests: a signal stops
    # a running thread only at its next kernel crossing, so pause() must wait for that
    code = (
        "import threading\n"
        "def spin():\n    while True: pass\n"
        "for _ in range(3): threading.Thread(target=spin, daemon=True).start()\n"
        "spin()\n"
    )
    proc = start(*_python(code))
    wait_until(lambda: len(os.listdir(f"/proc/{proc.pid}/task")) == 4, 10, what="4 threads")
    for _ in range(5):
        assert proc.pause()
        states = [
            (Path(f"/proc/{proc.pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()[0])
            for tid in os.listdir(f"/proc/{proc.pid}/task")
        ]
        assert len(states) == 4 and set(states) == {"T"}, states
        assert proc.resume()
        wait_until(lambda: read_stat(proc.pid).state == "R", 5, what="running again")  # type: ignore[union-attr]


def test_stat_parsing_survives_odd_command_names(tmp_path: Path, start: Starter) -> None:
    odd = tmp_path / "a) b ("
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    proc = start(str(odd), "60")
    stat = read_stat(proc.pid)
    assert stat is not None and stat.state in "RS" and stat.pgrp == proc.pid
    assert proc.alive()


def test_rss_and_signal_of_a_dead_process(start: Starter) -> None:
    proc = start("true")
    proc.wait(10)
    assert proc.rss_bytes() is None
    assert not proc.signal(signal.SIGTERM)
    assert proc.exit_code == 0


def test_start_of_a_missing_program_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        processes.start(ProcessSpec("x", ["/nonexistent/zkq-test"], tmp_path / "x.log"))


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert processes.tail(log, 2) == "line 98\nline 99"
    assert processes.tail(tmp_path / "missing") == ""


def test_wait_until_returns_the_value_or_names_what_timed_out() -> None:
    calls = iter([0, 0, 7])
    assert wait_until(lambda: next(calls), 5, interval=0.001) == 7
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, 0.05, what="the moon")


def test_wait_until_can_ignore_expected_errors() -> None:
    attempts = []

    def flaky() -> bool:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError
        return True

    assert wait_until(flaky, 5, interval=0.001, ignore=(ConnectionRefusedError,))
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, 5)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    port = free_port()
    bind = "import socket, sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))"
    with subprocess.Popen([*_python(bind), str(port)]) as p:
        assert p.wait(10) == 0
