"""Tiers run in order, unit first, and a tier's session fixtures end with the tier: the
integration tier's servers are down before the cluster tier's stack starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zkq.dev.owner import REGISTRY_ENV

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
import os
import pytest

def note(what):
    with open(os.environ["EVENTS"], "a") as f:
        f.write(what + "\\n")

@pytest.fixture(scope="session")
def servers():
    note("servers up")
    yield
    note("servers down")
"""

FILES = {
    # named so that, collected as given, cluster comes first and unit last
    "tests/cluster/test_a_cluster.py": "from conftest import note\n"
    "def test_cluster():\n    note('cluster test')\n",
    "tests/integration/test_b_integration.py": "from conftest import note\n"
    "def test_integration(servers):\n    note('integration test')\n",
    "tests/unit/test_c_unit.py": "from conftest import note\n"
    "def test_unit():\n    note('unit test')\n",
}


def test_tiers_run_in_order_and_end_their_fixtures(tmp_path: Path) -> None:
    root = tmp_path / "inner"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\n")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    events = tmp_path / "events"
    env = {
        **os.environ,
        REGISTRY_ENV: str(tmp_path / "registry"),
        "PYTHONPATH": str(REPO),
        "EVENTS": str(events),
    }
    argv = [sys.executable, "-m", "pytest", "-p", "tests.teardown", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*argv, "-q", *sorted(FILES)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == pytest.ExitCode.OK, done.stdout[-3000:]
    assert events.read_text().splitlines() == [
        "unit test",
        "servers up",
        "integration test",
        "servers down",
        "cluster test",
    ]
