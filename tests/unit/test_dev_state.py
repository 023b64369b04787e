"""The launcher's bookkeeping, without starting anything: the state file, the services'
command lines and session settings, and when an ensemble counts as serving."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from zkq.dev.errors import BadState, DevClusterError
from zkq.dev.services import ServiceSettings, session_timeout
from zkq.dev.statedir import STATE_VERSION, changing, read_state, start_afresh, write_state
from zkq.dev.zookeeper import all_serving


def test_the_state_file_round_trips_and_no_file_means_no_cluster(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "state.json"
    assert read_state(path) is None
    write_state(path, {"members": [], "created_at": 1.5})
    assert read_state(path) == {"version": STATE_VERSION, "members": [], "created_at": 1.5}
    assert not path.with_suffix(".json.tmp").exists()


def test_the_state_file_and_its_directory_are_private(tmp_path: Path) -> None:
    # it holds the MySQL passwords; an older zkq left the directory 0755 and files 0644
    state_dir = tmp_path / "dev"
    state_dir.mkdir(mode=0o755)
    state_dir.chmod(0o755)
    path = state_dir / "state.json"
    (state_dir / "state.json.tmp").write_text("left by a crash")
    (state_dir / "state.json.tmp").chmod(0o644)
    write_state(path, {"mysql_url": "mysql://zkq:secret@127.0.0.1:1/zkq"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    fresh = tmp_path / "fresh"
    with changing(fresh):
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


@pytest.mark.parametrize("text", ["{not json", json.dumps({"version": 99}), "[]"])
def test_a_state_file_it_cannot_trust_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(BadState, match="remove it by hand"):
        read_state(path)


def test_one_command_at_a_time_changes_a_cluster(tmp_path: Path) -> None:
    refused = pytest.raises(DevClusterError, match="another zkq dev command")
    with changing(tmp_path), refused, changing(tmp_path):
        pass
    with changing(tmp_path):  # released
        pass


def test_up_starts_afresh_but_keeps_the_state_file(tmp_path: Path) -> None:
    for sub in ("zookeeper/zk1", "logs", "mariadb/data"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "state.json").write_text("{}")
    start_afresh(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_services_get_the_cluster_after_the_command_as_zkq_reads_it() -> None:
    settings = ServiceSettings(root="/r", worker_args=["--prefetch", "0"])
    assert settings.worker_argv("h:1", concurrency=2, extra_args=["--name", "w"]) == [
        *(sys.executable, "-m", "zkq", "worker", "--zk", "h:1", "--root", "/r"),
        *("--app", "zkq.worker.builtin", "--concurrency", "2", "--prefetch", "0", "--name", "w"),
    ]
    assert settings.coordinator_argv("h:1")[3:] == ["coordinator", "--zk", "h:1", "--root", "/r"]


def test_a_short_session_widens_the_ensembles_bounds() -> None:
    assert session_timeout(2000, None) == ({}, None, None)
    # ZooKeeper grants between 2 and 20 ticks: both bounds reach out to take the request in
    assert session_timeout(200, 3000) == ({"ZKQ_SESSION_TIMEOUT": "3"}, 400, 4000)
    assert session_timeout(2000, 1000)[1:] == (1000, 40000)
    assert session_timeout(200, 9000)[1:] == (400, 9000)


def test_an_ensemble_serves_with_one_leader_and_every_other_node_following() -> None:
    assert all_serving(["standalone"])
    assert all_serving(["follower", "leader", "follower"])
    assert not all_serving(["follower", "leader", "down"])
    assert not all_serving(["leader", "leader", "follower"])
    assert not all_serving(["follower"])
