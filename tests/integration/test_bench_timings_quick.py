"""``zkq bench timings --quick --json`` end to end: its own stack, every figure measured
and printed beside its configured bound, everything stopped.  The figures' values are not
asserted: they depend on the machine's load, which is why they are a benchmark's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support import processes_naming
from tests.teardown import run_owned

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "long-poll lag after finished_at",
    "leader handover after kill -9",
    "requeue of a killed worker's job",
    "HAProxy marks a killed frontend DOWN",
}


@pytest.mark.timeout(420)
def test_quick_timings_bench_prints_every_figure(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    argv = [sys.executable, "-m", "zkq", "bench", "timings", "--quick", "--json"]
    # a timeout kills the bench's CLI, and run_owned whatever it had started
    done, left = run_owned([*argv, "--state-dir", str(state)], timeout=360, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    figures = {f["name"]: f for f in data["figures"]}
    assert set(figures) == FIGURES
    for figure in figures.values():
        # measured (one sample per poll or per round), whatever its value
        assert figure["n"] == len(figure["samples"]) >= 1, figure
        assert figure["bound"], figure
    assert figures["long-poll lag after finished_at"]["n"] == 5
    assert data["meta"]["session_timeout_s"] > 0 and data["meta"]["haproxy_fall"] >= 1

    # every process the bench started is gone: they all name the state directory or the
    # ensemble's connect string in their arguments
    assert not (state / "cluster" / "state.json").exists()
    assert processes_naming(str(state), data["meta"]["connect"]) == []
    assert left == []  # nothing that the bench started, by its mark
