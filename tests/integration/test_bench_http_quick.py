"""``zkq bench http --quick --json`` end to end: its own stack (ZooKeeper, MariaDB,
coordinators, workers, frontends, HAProxy), every section reported with real figures,
everything stopped afterwards."""

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
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.timeout(240)
def test_quick_http_bench_reports_every_section(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    argv = ["bench", "http", "--quick", "--json", "--state-dir", str(state)]
    # a timeout kills the bench's CLI, and run_owned whatever it had started
    done, left = run_owned([sys.executable, "-m", "zkq", *argv], timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)

    rows = {r["name"]: r for r in data["throughput"]}
    assert set(rows) == {"HTTP, auth on", "HTTP, auth off", "direct"}
    for row in rows.values():
        assert positive(row["ok"]) and positive(row["per_s"]), row
        assert positive(row["latency"]["p50"]) and positive(row["latency"]["p99"]), row
        assert row["errors"] == {}, row  # nothing throttled, refused or failed
    assert data["ratios"] and all(positive(v) for v in data["ratios"].values())

    latency = data["latency"]
    assert positive(latency["target_rate"]) and positive(latency["achieved_rate"])
    assert positive(latency["latency"]["p50"]) and positive(latency["latency"]["p99"])

    assert len(data["memory"]) == 2  # two frontends: a master and a gevent worker each
    for frontend in data["memory"]:
        roles = sorted(p["role"] for p in frontend["processes"])
        assert roles == ["master", "worker"]
        for proc in frontend["processes"]:
            assert positive(proc["idle_mib"]) and positive(proc["after_load_mib"])

    run = data["retention"]
    assert len(run["samples"]) >= 6
    assert all(positive(s["data_bytes"]) and positive(s["znodes"]) for s in run["samples"])
    assert positive(run["samples"][-1]["processed"])
    assert run["archived_after"] > run["archived_before"]

    verdicts = {v["name"]: v["verdict"] for v in data["summary"]}
    assert len(verdicts) == 6 and set(verdicts.values()) <= {"PASS", "MISS", "n/a"}
    assert verdicts["every submission accepted"] == "PASS"

    # every process the bench started is gone: the ZooKeeper JVMs, MariaDB and HAProxy
    # name the state directory in their arguments, the services the connect string
    assert not (state / "cluster" / "state.json").exists()
    assert processes_naming(str(state), data["meta"]["connect"]) == []
    assert left == []  # nothing that the bench started, by its mark
