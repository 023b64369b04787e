"""The test session's teardown machinery: nothing the tests start outlives the run.

- At start, :func:`zkq.dev.owner.sweep_stale` cleans up after runs that were killed (from
  any checkout: only owners that are dead are touched).  Then this run becomes an owner
  (:class:`zkq.dev.owner.Owner`): every process it starts carries its mark, a watchdog
  kills them if pytest is killed, and pytest's temporary directories (the state
  directories of every cluster) live in the owner's entry, so they go with it.
- At the end, after every fixture has been torn down (pytest-timeout may have cut one
  short), any process still carrying the mark is a leak: it is killed and the run fails.
- Tiers run in order, unit first, then integration, then cluster, so the cheap tests
  report before a stack is even started, and one tier's stack is never up during the next.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from zkq.dev.owner import OWNERS_ENV, Owner, kill_marked, marked, sweep_stale

TIERS = ("unit", "integration", "cluster", "deploy")
_OWNER = pytest.StashKey[Owner]()
_KEEP = pytest.StashKey[bool]()


def tier(item: pytest.Item) -> int:
    parts = Path(str(item.path)).parts
    for index, name in enumerate(TIERS):
        if "tests" in parts and name in parts[parts.index("tests") :]:
            return index
    return len(TIERS)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: pytest's tmpdir plugin reads --basetemp in its own pytest_configure
    if hasattr(config, "workerinput"):  # pragma: no cover - no xdist here
        return
    sweep_stale()
    owner = Owner()
    owner.claim()
    config.stash[_OWNER] = owner
    if config.option.basetemp is None:
        config.option.basetemp = str(owner.entry / "tmp")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=tier)  # stable: the order within a tier stays as collected


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """At the end of a tier, end the session-scoped fixtures of ours (the integration
    tier's ensemble and MariaDB, the cluster tier's stack): otherwise they would live to
    the session's end, and two stacks would share the machine's cores.  One a later tier
    asks for again is simply started again."""
    try:
        return (yield)
    finally:
        # also when the last test of the tier failed its own teardown: the next tier must
        # not start beside this one's stack
        if nextitem is not None and tier(nextitem) != tier(item):
            _end_session_fixtures(item)


def _end_session_fixtures(item: pytest.Item) -> None:
    """Finish every session fixture defined under tests/ that is set up; each is finished
    even when another one's finalizer raises, and the first error is raised after."""
    # pytest has no public way to end a session fixture early: FixtureDef.finish is what
    # its own teardown calls (pytest is pinned below 10 in pyproject.toml for this).
    manager = item.session._fixturemanager
    request = item._request  # type: ignore[attr-defined]
    errors: list[BaseException] = []
    for node2defs in manager._arg2node2fixturedefs.values():
        for node, defs in node2defs.items():
            if node.nodeid.split("/")[0] != "tests":
                continue  # pytest's own (tmp_path_factory, ...) and plugins'
            for fixturedef in defs:
                if fixturedef.scope == "session" and fixturedef.cached_result is not None:
                    try:
                        fixturedef.finish(request)
                    except Exception as exc:  # every one finished; the first raised after
                        errors.append(exc)
    if errors:
        raise errors[0]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    owner = session.config.stash.get(_OWNER, None)
    if owner is None:
        return
    # multiprocessing's resource tracker (started by tests that use a process pool) is
    # this process's own helper, left to exit with it: stop it now, so that what remains
    # is only what the tests failed to stop
    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]
    leftovers = owner.leftovers()
    if leftovers:
        named = {pid: _cmdline(pid) for pid in leftovers}
        kill_marked(owner.token)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"processes the tests started were still running at the end: {named}"
        if reporter is not None:
            reporter.write_sep("!", message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    session.config.stash[_KEEP] = session.exitstatus != pytest.ExitCode.OK


def pytest_unconfigure(config: pytest.Config) -> None:
    owner = config.stash.get(_OWNER, None)
    if owner is not None:
        # a failed run's files (logs, state directories) stay for a post-mortem until the
        # next run's sweep; a passing run's go now
        owner.release(keep=config.stash.get(_KEEP, True))


def run_owned(
    argv: list[str], timeout: float, cwd: Path
) -> tuple[CompletedProcess[str], list[int]]:
    """Run a command that starts a stack of its own (the bench), and what it left running.

    ``subprocess.run``'s timeout kills the command only, not the stack it started in
    sessions of their own; so everything it starts carries a tag of this run, and whatever
    still carries it afterwards is killed, timeout or not.  The pids found after a normal
    exit are returned: the command should have stopped them itself.
    """
    tag = f"run-{uuid.uuid4().hex}"
    env = {**os.environ, OWNERS_ENV: f"{os.environ.get(OWNERS_ENV, '')} {tag}".strip()}
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        return done, sorted(marked(tag))
    finally:
        kill_marked(tag)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"
