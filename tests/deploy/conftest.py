"""The deployment test's fixtures: the test hosts (one session for the whole folder: they
take minutes to provision) and the cluster Ansible puts on them.

Every host, namespace, mount and process the testbed makes is removed at the end, also
when a test fails (tests/deploy/testbed: ``Testbed.down``).  The figures the tests measure
(converge times, failover, restart times) are printed in pytest's summary.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import ansible_run
from tests.deploy.testbed import Testbed

#: the figures measured by the tests, printed at the end of the run
FIGURES: list[str] = []

if os.geteuid() != 0:  # pragma: no cover - the suite runs as root
    pytest.skip("the test hosts need root (namespaces, mounts)", allow_module_level=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("deployment figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def figure(text: str) -> None:
    FIGURES.append(text)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ansible-logs")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    # A SIGTERM (a CI job cancelled, `timeout`) would skip the teardown below and leave the
    # hosts running: make it an interrupt, which pytest answers by tearing fixtures down.
    signal.signal(signal.SIGTERM, _interrupt)
    addresses = ansible_run.inventory_hosts()
    octets = {host: int(address.rsplit(".", 1)[1]) for host, address in addresses.items()}
    bed = Testbed(octets)
    started = time.monotonic()
    try:
        bed.up()
        figure(f"test hosts up ({len(octets)} hosts): {time.monotonic() - started:.0f} s")
        yield bed
    finally:
        bed.down()


@pytest.fixture(scope="session")
def deployed(testbed: Testbed, logs: Path) -> ansible_run.PlaybookRun:
    """site.yml converged onto the bare test hosts."""
    run = ansible_run.playbook("site.yml", logs)
    assert run.returncode == 0, f"site.yml failed:\n{run.tail()}"
    figure(f"site.yml from bare hosts: {run.seconds:.0f} s")
    return run


@pytest.fixture(scope="session")
def api_key(deployed: ansible_run.PlaybookRun, testbed: Testbed) -> str:
    """A key made as an operator would, with `zkq keys create` on a host of the cluster."""
    import json

    # the tests submit every 50 ms and long-poll each job: more than a default key's 600
    # requests a minute
    made = testbed.run(
        "db1",
        "zkq keys create --tenant deploy-test --scopes submit,read --rate-limit 100000 --json",
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["secret"])
