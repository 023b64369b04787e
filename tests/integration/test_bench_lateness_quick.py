"""``zkq bench lateness --quick --json`` end to end: its own stack, every run measured and
every job succeeded, everything stopped.  The figures' values are not asserted: they
depend on the machine's load, which is why they are a benchmark's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support import processes_naming
from tests.teardown import run_owned

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
def test_quick_lateness_bench_runs_and_every_job_succeeds(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    argv = [sys.executable, "-m", "zkq", "bench", "lateness", "--quick", "--json"]
    done, left = run_owned([*argv, "--state-dir", str(state)], timeout=360, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    runs = data["runs"]
    assert [r["jobs"] for r in runs] == [50, 50, 200]
    for r in runs:
        assert r["succeeded"] == r["jobs"] == r["n"], r
        assert {"p50", "p90", "p99", "max"} <= set(r), r
    assert runs[2]["rate_per_s"] > 0
    assert not (state / "cluster" / "state.json").exists()
    assert processes_naming(str(state), data["meta"]["connect"]) == []
    assert left == []
