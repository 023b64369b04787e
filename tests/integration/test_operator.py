"""Operator commands and metrics against a live local cluster."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.support import (
    client_of,
    member_by_pid,
    metric_families,
    operator_env,
    run_zkq,
    running_cluster,
    worker_pid,
    zkq_cli,
)
from zkq.coordinator.client import Client
from zkq.coordinator.job import JobSpec, JobState
from zkq.dev.cluster import DevCluster
from zkq.dev.ports import free_port
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with running_cluster(tmp_path_factory.mktemp("operator")) as c:
        yield c


@pytest.fixture
def client(cluster: DevCluster) -> Iterator[Client]:
    with client_of(cluster) as c:
        yield c


def zkq(cluster: DevCluster, *args: str, code: int = 0) -> str:
    """What a person sees: standard output and error together."""
    return zkq_cli(cluster, *args, code=code).output


def zkq_json(cluster: DevCluster, *args: str, code: int = 0) -> Any:
    """What a machine reads: standard output alone, which must be one JSON document."""
    return json.loads(zkq_cli(cluster, *args, "--json", code=code).stdout)


def test_status_shows_ensemble_leader_workers_and_queues(cluster: DevCluster) -> None:
    text = zkq(cluster, "status")
    assert "ZooKeeper ensemble" in text and "leader" in text and "OK" in text
    view = zkq_json(cluster, "status")
    assert sorted(m["mode"] for m in view["ensemble"]) == ["follower", "follower", "leader"]
    assert view["leader"] and len(view["coordinators"]) == 2
    assert len(view["workers"]) == 2 and view["ok"] is True


def test_status_with_a_zookeeper_node_down(cluster: DevCluster) -> None:
    assert cluster.ensemble is not None
    follower = next(i for i in range(3) if i != cluster.ensemble.leader_index())
    cluster.ensemble.stop_node(follower)
    try:
        view = zkq_json(cluster, "status", code=1)
        modes = [m["mode"] for m in view["ensemble"]]
        assert modes.count("down") == 1 and "leader" in modes
        assert any("is down" in p for p in view["problems"])
        assert "PROBLEMS" in zkq(cluster, "status", code=1)
    finally:
        cluster.ensemble.start_node(follower)


def test_job_and_jobs(cluster: DevCluster, client: Client) -> None:
    job = client.wait(client.submit("echo", {"x": 1}).id, 20)
    text = zkq(cluster, "job", job.id)
    assert "succeeded" in text and "ATTEMPT" in text
    assert zkq_json(cluster, "job", job.id)["result"] == {"x": 1}
    listed = zkq_json(cluster, "jobs", "--state", "succeeded", "--type", "echo")
    assert job.id in [j["id"] for j in listed["jobs"]]
    assert all(j["state"] == "succeeded" for j in listed["jobs"])
    assert "ID" in zkq(cluster, "jobs", "--limit", "2")
    assert "no job" in zkq(cluster, "job", "01M81DJSFMKM5WE6J0X6ERV5QZ", code=1)
    assert "not a job id" in zkq(cluster, "job", "nope", code=2)  # usage: checked first


def test_zk_ls_get_tree_decode_records(cluster: DevCluster, client: Client) -> None:
    job = client.wait(client.submit("echo", "raw").id, 20)
    assert "jobs" in zkq_json(cluster, "zk", "ls", "")["children"]
    got = zkq_json(cluster, "zk", "get", client.store.layout.job(job.id))
    assert got["kind"] == "json" and got["data"]["id"] == job.id
    assert '"state": "succeeded"' in zkq(cluster, "zk", "get", client.store.layout.job(job.id))
    tree = zkq(cluster, "zk", "tree", "", "--depth", "2")
    assert "pending" in tree and "workers" in tree
    assert zkq_json(cluster, "zk", "tree", "workers", "--depth", "1")["children_total"] == 2
    assert "no znode" in zkq(cluster, "zk", "get", "/no/such/node", code=1)


def test_pause_holds_a_type_until_resume(cluster: DevCluster, client: Client) -> None:
    assert zkq_json(cluster, "pause", "echo")["changed"] is True
    try:
        job = client.submit("echo", "held")
        # a job of another type submitted after it runs to the end: the dispatcher has had
        # its turn at both, so the paused one staying pending is the pause, not a slow leader
        other = client.wait(client.submit("noop").id, 20)
        assert other.state == JobState.SUCCEEDED, "pausing one type held another"
        held = client.get(job.id)
        assert held.state == JobState.PENDING and held.attempts == 0, "a paused type was assigned"
        queues = {q["type"]: q for q in zkq_json(cluster, "status")["queues"]}
        assert queues["echo"]["paused"] and queues["echo"]["depth"] >= 1
    finally:
        assert "resumed" in zkq(cluster, "resume", "echo")
    assert client.wait(job.id, 20).state == JobState.SUCCEEDED


def test_a_type_limit_holds_jobs_pending_until_cleared(cluster: DevCluster, client: Client) -> None:
    set_ = zkq_json(cluster, "limits", "set", "echo", "--cluster", "0")
    assert set_ == {"type": "echo", "cluster": 0, "per_worker": None}
    try:
        job = client.submit("echo", "capped")
        # as for pause: another type's job runs to the end, so the leader has had its turn
        other = client.wait(client.submit("noop").id, 20)
        assert other.state == JobState.SUCCEEDED, "a limit on one type held another"
        held = client.get(job.id)
        assert held.state == JobState.PENDING and held.attempts == 0, "a capped type was assigned"
        assert zkq_json(cluster, "limits", "list") == [set_]
        view = zkq_json(cluster, "status")
        assert view["capped"]["echo"] >= 1
        assert [r["type"] for r in view["limits"]] == ["echo"]
        assert "WAITING ON A CAP" in zkq(cluster, "status")
    finally:
        assert "no limits" in zkq(cluster, "limits", "clear", "echo")
    assert client.wait(job.id, 20).state == JobState.SUCCEEDED
    assert "give --cluster" in zkq(cluster, "limits", "set", "echo", code=2)


def test_cancel_and_requeue(cluster: DevCluster, client: Client) -> None:
    pending = client.submit("nobody-serves-this")
    assert zkq_json(cluster, "cancel", pending.id)["state"] == "cancelled"
    assert "cancelled" in zkq(cluster, "cancel", pending.id, code=1)  # not twice
    dead = client.wait(client.submit("fail", "x", max_attempts=2).id, 20)
    assert dead.state == JobState.DEAD
    revived = zkq_json(cluster, "requeue", dead.id)
    assert revived["state"] == "pending" and revived["attempts"] == 0
    again = client.wait(dead.id, 20, until=lambda j: j.terminal)
    assert again.state == JobState.DEAD
    # the revival is an entry of its own, and the new attempts are numbered on
    assert [a.number for a in again.history] == [1, 2, None, 3, 4]
    assert (again.history[2].kind, again.history[2].by) == ("requeue", "operator")
    # a type only one worker serves: the job goes back to the very worker still running
    # its first attempt, which must take it up again as soon as that attempt ends
    cluster.add_worker(app="tests.apps.solo", concurrency=1, name="solo-op")
    try:
        running = client.submit("solo", 1.0, max_attempts=1)
        client.wait(running.id, 10, until=lambda j: j.state == JobState.RUNNING)
        zkq(cluster, "requeue", running.id)
        done = client.wait(running.id, 10)
        assert done.state == JobState.SUCCEEDED, "an operator requeue must not spend the attempt"
        assert [a.outcome for a in done.history] == ["requeued", "requeued", "succeeded"]
        assert [a.number for a in done.history] == [1, None, 2]  # never the same number
        assert done.history[0].worker == done.history[2].worker == done.worker
        text = installed_zkq(cluster, "job", running.id).stdout
        assert "requeued by operator: requeued by an operator" in text
    finally:
        cluster.stop_member("solo-op")


def installed_zkq(cluster: DevCluster, *args: str, code: int = 0) -> CompletedProcess[str]:
    """``zkq *args`` run as a person runs it: the installed command, in a process of its
    own, with the operator's settings in the environment."""
    return run_zkq(*args, env=operator_env(cluster), code=code)


def test_job_shows_who_finished_it_and_the_traceback(cluster: DevCluster, client: Client) -> None:
    failed = client.wait(client.submit("fail", "on purpose").id, 20)
    assert failed.state == JobState.FAILED and failed.worker, "a finished job names its worker"
    assert failed.worker == failed.history[-1].worker
    text = installed_zkq(cluster, "job", failed.id).stdout
    rows = dict(line.split(None, 1) for line in text.splitlines()[:12] if line.strip())
    assert rows["worker"] == failed.worker
    assert "traceback" in text.splitlines()
    assert "  Traceback (most recent call last):" in text and "on purpose" in text


def test_workers_and_status_name_their_columns_alike(cluster: DevCluster) -> None:
    def header(text: str, first: str) -> list[str]:
        return next(line.split() for line in text.splitlines() if line.startswith(first))

    workers = installed_zkq(cluster, "workers").stdout
    status = installed_zkq(cluster, "status").stdout
    assert header(workers, "WORKER") == header(status, "WORKER")
    assert header(workers, "WORKER") == ["WORKER", "SLOTS", "BUSY", "POOL", "DRAINING", "TYPES"]
    listed = json.loads(installed_zkq(cluster, "workers", "--json").stdout)
    viewed = json.loads(installed_zkq(cluster, "status", "--json").stdout)["workers"]
    assert sorted(w["id"] for w in listed) == sorted(w["id"] for w in viewed)
    assert all("inbox" in w and "busy" in w for w in [*listed, *viewed])


def test_drain_finishes_the_running_job_before_the_worker_exits(
    cluster: DevCluster, client: Client
) -> None:
    job = client.submit("sleep", 2.0)
    running = client.wait(job.id, 10, until=lambda j: j.state == JobState.RUNNING)
    assert running.worker
    name = member_by_pid(cluster, worker_pid(running.worker))
    process = cluster.member(name).process
    out = zkq_json(cluster, "drain", running.worker, "--wait", "--wait-timeout", "30")
    assert out["left"] is True
    done = client.get(job.id)
    assert done.state == JobState.SUCCEEDED and done.history[-1].worker == running.worker
    assert process.wait(10) == 0
    assert "no live worker" in zkq(cluster, "drain", running.worker, code=1)
    cluster.stop_member(name)  # it has exited: forget it
    cluster.add_worker()  # back to two for the tests after this one
    cluster.wait_registered(workers=2, coordinators=2)


def test_stats_per_worker_and_type(cluster: DevCluster, client: Client) -> None:
    # other tests of this module ran jobs before: what these ten and one add is what counts
    before = zkq_json(cluster, "stats")
    jobs = client.submit_many([JobSpec("echo", n) for n in range(10)] + [JobSpec("fail", "s")])
    done = [client.wait(j.id, 20) for j in jobs]
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 10 + [JobState.FAILED]
    report = zkq_json(cluster, "stats")
    assert before["complete"] and report["complete"], "stats must have read every job"

    def added(kind: str, field: str) -> float:
        return float(
            report["types"].get(kind, {}).get(field, 0)
            - before["types"].get(kind, {}).get(field, 0)
        )

    assert added("echo", "jobs") == 10 and added("echo", "attempts") == 10
    assert added("fail", "jobs") == 1 and report["types"]["fail"]["error_rate"] > 0
    attempts = sum(w["attempts"] for w in report["workers"].values())
    assert attempts - sum(w["attempts"] for w in before["workers"].values()) == 11
    assert "By worker" in zkq(cluster, "stats")


def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return metric_families(response.read().decode())


def test_every_metric_family_is_scraped_and_parsed(cluster: DevCluster, client: Client) -> None:
    wport, cport = free_port(), free_port()
    cluster.add_worker(extra_args=["--metrics-port", str(wport)], name="metrics-worker")
    cluster.add_coordinator(extra_args=["--metrics-port", str(cport)], name="metrics-coord")
    try:
        cluster.wait_registered(workers=3, coordinators=3)
        # the new worker serves echo, so a burst of jobs reaches it among the others
        jobs = client.submit_many([JobSpec("echo", n) for n in range(40)])
        done = [client.wait(j.id, 30) for j in jobs]
        assert [j.state for j in done] == [JobState.SUCCEEDED] * 40
        # the counters must say what the records say: as many echo successes as it ran
        mpid = cluster.member("metrics-worker").process.pid
        ran = sum(1 for j in done if worker_pid(j.history[0].worker or "") == mpid)
        assert ran > 0, "no job reached the new worker; nothing to count"
        wait_until(
            lambda: _echo_counts(wport) == (ran, ran),
            20,
            what=f"the worker to count its {ran} jobs",
            ignore=(OSError,),
        )
        worker = scrape(wport)
        assert {
            "zkq_worker_jobs",
            "zkq_worker_job_duration_seconds",
            "zkq_worker_job_wait_seconds",
            "zkq_worker_slots",
            "zkq_worker_busy_slots",
        } <= set(worker)
        coordinator = scrape(cport)
        assert {
            "zkq_coordinator_leader",
            "zkq_zookeeper_connected",
            "zkq_queue_depth",
            "zkq_queue_oldest_age_seconds",
            "zkq_queue_running",
            "zkq_queue_paused",
            "zkq_workers",
            "zkq_free_slots",
            "zkq_assignments",
            "zkq_requeues",
        } <= set(coordinator)
        # a standby reports itself as such
        assert coordinator["zkq_coordinator_leader"].samples[0].value == 0.0
        assert coordinator["zkq_zookeeper_connected"].samples[0].value == 1.0
    finally:
        cluster.stop_member("metrics-worker")
        cluster.stop_member("metrics-coord")


def _echo_counts(port: int) -> tuple[float, float]:
    """(echo attempts counted as succeeded, echo handler runs timed) on one worker."""
    families = scrape(port)
    succeeded = sum(
        s.value
        for s in families["zkq_worker_jobs"].samples
        if s.name == "zkq_worker_jobs_total"
        and s.labels == {"type": "echo", "outcome": "succeeded"}
    )
    timed = sum(
        s.value
        for s in families["zkq_worker_job_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels.get("type") == "echo"
    )
    return succeeded, timed
