"""``zkq bench --quick --json`` end to end: its own ensemble, coordinators, workers and
LockingQueue consumers, every section reported with real figures, everything stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import processes_naming
from tests.teardown import run_owned

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and value > 0


@pytest.mark.timeout(240)
def test_quick_bench_reports_every_section(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    # a timeout kills the bench's CLI, and run_owned whatever it had started
    argv = ["bench", "--quick", "--json", "--state-dir", str(state)]
    done, left = run_owned([sys.executable, "-m", "zkq", *argv], timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)

    assert {r["mode"] for r in data["zk_raw"]} == {"pipelined", "sequential"}
    for row in data["zk_raw"]:
        assert positive(row["ops_per_s"])
        assert row["transactions"] == row["ops"]  # the zxid counts one per create

    assert len(data["zkq_throughput"]) >= 2
    for row in data["zkq_throughput"]:
        assert row["succeeded"] == row["jobs"] > 0
        assert positive(row["jobs_per_s"])
        assert positive(row["transactions_per_job"])
        assert positive(row["notifications_per_job"])

    assert len(data["lockingqueue"]) >= 2
    for row in data["lockingqueue"]:
        assert positive(row["completed"]) and positive(row["jobs_per_s"])
        assert positive(row["notifications_per_job"])

    assert data["ratios"] and all(positive(r["ratio"]) for r in data["ratios"])
    # each list non-empty first: all() and a for loop hold over nothing
    zkq_tx, zkq_notes = data["transactions"]["zkq"], data["notifications"]["zkq"]
    assert zkq_tx and all(positive(t["per_job"]) for t in zkq_tx)
    assert zkq_notes and all(positive(n["per_job"]) for n in zkq_notes)
    assert data["memory"] and data["cpu"]
    for mem in data["memory"]:
        assert positive(mem["leader_idle_mib"]) and positive(mem["worker_after_mib"])
    assert all(positive(c["ms_per_job"]["zookeeper"]) for c in data["cpu"])
    assert {v["verdict"] for v in data["summary"]} <= {"PASS", "MISS", "n/a"}
    assert len(data["summary"]) == 5

    # every process the bench started is gone: the ZooKeeper JVMs name the state directory
    # in their arguments, the services and consumers name the ensemble's connect string
    assert not (state / "cluster" / "state.json").exists()
    assert processes_naming(str(state), data["meta"]["connect"]) == []
    assert left == []  # nothing that the bench started, by its mark
