"""Periodic schedules on a live cluster: a stale ticker racing the leader, and the CLI."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import APP, running_cluster, zkq_cli
from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.ids import derived_job_id
from zkq.coordinator.job import JobState
from zkq.coordinator.schedules import ScheduleRecord
from zkq.coordinator.store import JobStore
from zkq.coordinator.ticker import Ticker
from zkq.coordinator.zk import ConnectionLost, connect
from zkq.dev.cluster import DevCluster
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.integration

TICKS = 55


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with running_cluster(
        tmp_path_factory.mktemp("schedules"), workers=1, coordinators=2, worker_app=APP
    ) as c:
        yield c


@pytest.fixture
def operator(cluster: DevCluster) -> Iterator[Client]:
    """A client with the coordinator's credential: schedules are an operator's to edit."""
    client = Client(cluster.config("coordinator"))
    client.start()
    try:
        yield client
    finally:
        client.close()


def run_stale_ticker(ticker: Ticker, stop: threading.Event) -> None:
    """A leader that does not know it was replaced: no fence, and it rereads the schedule
    only now and then (its watches were lost), so it often decides from a stale state."""
    steps = 0
    while not stop.wait(0.2):
        steps += 1
        if steps % 8 == 0:
            ticker.dirty.update(ticker.known)
        try:
            now = ticker.clock()
            ticker.step(now, now)
        except (ConnectionLost, ZkqError):
            ticker.dirty.update(ticker.known)


def test_a_stale_ticker_and_the_leader_make_one_job_and_one_run_per_tick(
    cluster: DevCluster, operator: Client, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    record = operator.schedules.add(
        ScheduleRecord(
            name="race",
            owner="_",
            every=1,
            template={"type": "append-id", "payload": {"file": str(runs)}},
            misfire_grace=60,  # a loaded machine may be late: every tick must still run
        )
    )[0].record
    session = connect(cluster.config("coordinator").zk, name="stale")
    session.start()
    stale = Ticker(JobStore(session), lambda: None, lambda *p: None, lambda e: None)
    stale.dirty.add(("_", "race"))
    stop = threading.Event()
    thread = threading.Thread(target=run_stale_ticker, args=(stale, stop), daemon=True)
    thread.start()
    first = record.next_after(record.created_at)
    try:
        wait_until(
            lambda: (operator.schedules.get("race").state.last_tick_at or 0) >= first + TICKS,
            TICKS * 4,
            interval=0.5,
            what=f"{TICKS} ticks",
        )
    finally:
        stop.set()
        thread.join(timeout=10)
        operator.schedules.pause("race")
        session.stop()
    last = operator.schedules.get("race").state.last_tick_at
    assert last is not None
    instants = [first + n for n in range(int(last - first) + 1)]
    ids = {derived_job_id(at, f"_\0race\0{record.key(at)}"): record.key(at) for at in instants}
    for job_id, key in ids.items():
        job = operator.get(job_id)
        assert job.schedule == {"owner": "_", "name": "race", "tick": key}

    def all_ran() -> bool:
        return all(operator.get(j).state == JobState.SUCCEEDED for j in ids)

    wait_until(all_ran, 120, interval=0.5, what="every tick's job to run")
    lines = Counter(runs.read_text().split())
    assert set(lines) == set(ids) and set(lines.values()) == {1}
    assert len(ids) >= TICKS
    # the overlap happened: the stale ticker found ticks made already (or lost races)
    assert stale.outcomes["duplicate"] >= 1, stale.outcomes
    operator.schedules.remove("race")


def zkq_json(cluster: DevCluster, *args: str, code: int = 0) -> Any:
    return json.loads(zkq_cli(cluster, *args, "--json", code=code).stdout)


def test_the_cli_adds_lists_pauses_resumes_and_removes(cluster: DevCluster) -> None:
    added = zkq_json(
        cluster, "schedules", "add", "cli-s", "--every", "1s", "--type", "echo", "--misfire", "skip"
    )
    assert added["created"] and added["every"] == 1.0
    listed = zkq_cli(cluster, "schedules", "list").output
    assert "_/cli-s" in listed and "every 1s" in listed

    def last_tick() -> float:
        return zkq_json(cluster, "schedules", "show", "cli-s")["state"]["last_tick_at"] or 0.0

    wait_until(lambda: last_tick() > 0, 60, interval=0.5, what="a first tick")
    zkq_cli(cluster, "schedules", "pause", "cli-s")
    # the leader reads the pause from a watch: once last_tick_at holds still, it is paused
    held: list[float] = []

    def holds() -> bool:
        held.append(last_tick())
        return len(held) >= 4 and len(set(held[-4:])) == 1

    wait_until(holds, 60, interval=1.0, what="ticks to stop while paused")
    assert zkq_json(cluster, "schedules", "show", "cli-s")["paused"] is True
    zkq_cli(cluster, "schedules", "resume", "cli-s")
    wait_until(lambda: last_tick() > held[-1], 60, interval=0.5, what="ticks after resuming")
    zkq_cli(cluster, "schedules", "remove", "cli-s")
    assert "cli-s" not in zkq_cli(cluster, "schedules", "list").output
    refused = zkq_cli(cluster, "schedules", "show", "cli-s", code=1).output
    assert "no schedule 'cli-s'" in refused
    bad = zkq_cli(
        cluster, "schedules", "add", "x", "--cron", "61 * * * *", "--type", "echo", code=1
    )
    assert "cron expression" in bad.output
