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

from pathlib import Path

import pytest

from zkq.dev.owner import Owner, kill_marked, sweep_stale

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


def pytest_sessionfinish(session: pytest.Session) -> None:
    owner = session.config.stash.get(_OWNER, None)
    if owner is None:
        return
    leftovers = owner.leftovers()
    if leftovers:
        kill_marked(owner.token)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"processes the tests started were still running at the end: {leftovers}"
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
