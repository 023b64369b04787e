"""zkq deployed by its own Ansible playbooks onto separate test hosts (network namespaces
with their own Debian roots, reached over SSH), then broken on purpose.

The tests run in file order and share one cluster: converge from bare hosts, converge
again (nothing changes), add a worker host (only it changes), kill -9 services, cut off
the balancer holding the floating address, restart the ensemble and everything else one
host at a time.  Under every fault a client submits through the floating address, and
every job it was told was accepted must succeed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy import ansible_run
from tests.deploy.ansible_run import ANSIBLE_DIR, TESTBED_INVENTORY, PlaybookRun
from tests.deploy.cluster_view import (
    answers,
    program_pid,
    status,
    vip_holders,
    wait_for,
    workers_on,
    zookeeper_modes,
)
from tests.deploy.conftest import figure
from tests.deploy.testbed import Testbed
from tests.deploy.traffic import SubmitLoop, unfinished
from zkq import HttpClient, JobState

HOSTVARS = ansible_run.hostvars()
VIP = str(HOSTVARS["lb1"]["cluster_vip"])
API = f"http://{VIP}"
BALANCERS = ["lb1", "lb2"]
ZOOKEEPERS = ["zk1", "zk2", "zk3"]
#: a service killed with SIGKILL must be serving again within this long
BACK_WITHIN = 10.0

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def inventories() -> list[Path]:
    """The inventories every playbook of this module runs with (a test adds one)."""
    return [TESTBED_INVENTORY]


def run(playbook: str, logs: Path, inventories: list[Path], *args: str) -> PlaybookRun:
    result = ansible_run.playbook(playbook, logs, inventories, args)
    assert result.returncode == 0, f"{playbook} failed:\n{result.tail()}"
    return result


def test_the_playbooks_pass_ansible_lint() -> None:
    lint = subprocess.run(
        ["ansible-lint"], cwd=ANSIBLE_DIR, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]


def test_a_job_runs_through_the_floating_address(
    deployed: PlaybookRun, testbed: Testbed, api_key: str
) -> None:
    with HttpClient(API, api_key) as client:
        job = client.submit("deploy.echo", {"hello": "deployed"})
        done = client.wait(job.id, timeout=60)
    assert done.state is JobState.SUCCEEDED, done
    assert done.result == {"echo": {"hello": "deployed"}, "host": "wk1"}

    code, view = status(testbed)
    assert code == 0, f"zkq status on zk1 sees problems: {view.get('problems', view)}"
    assert sorted(m["mode"] for m in view["ensemble"]) == ["follower", "follower", "leader"]
    assert sorted(view["coordinators"]) == ZOOKEEPERS and view["leader"] in ZOOKEEPERS
    assert sorted(f["server"] for f in view["frontends"]) == ["fe1", "fe2"]
    assert all(f["status"].startswith("UP") for f in view["frontends"]), view["frontends"]
    assert [w["host"] for w in view["workers"]] == ["wk1"]


def test_a_second_run_changes_nothing(
    deployed: PlaybookRun, logs: Path, inventories: list[Path]
) -> None:
    again = run("site.yml", logs, inventories)
    figure(f"site.yml again, nothing to do: {again.seconds:.0f} s")
    assert set(again.recap) == set(deployed.recap)
    assert again.changed_hosts() == {}, f"a second run changed things:\n{again.tail(200)}"


def test_a_new_worker_host_changes_only_itself_and_takes_jobs(
    deployed: PlaybookRun,
    testbed: Testbed,
    api_key: str,
    logs: Path,
    inventories: list[Path],
    tmp_path: Path,
) -> None:
    testbed.add_host("wk2", 52)
    extra = tmp_path / "wk2.yml"
    extra.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "worker": {"hosts": {"wk2": {"ansible_host": testbed.address("wk2")}}}
                    }
                }
            }
        )
    )
    inventories.append(extra)
    grown = run("site.yml", logs, inventories)
    figure(f"site.yml adding a worker host: {grown.seconds:.0f} s")
    assert set(grown.changed_hosts()) == {"wk2"}, grown.changed_hosts()

    with HttpClient(API, api_key) as client:
        jobs = [client.submit("deploy.sleep", {"seconds": 0.5}) for _ in range(24)]
        done = [client.wait(job.id, timeout=90) for job in jobs]
    assert all(job.state is JobState.SUCCEEDED for job in done), [j.state for j in done]
    assert {job.result["host"] for job in done} == {"wk1", "wk2"}


def test_killed_services_are_back_within_seconds(testbed: Testbed, api_key: str) -> None:
    """kill -9 of a worker, a frontend, the HAProxy holding the floating address and the
    leading coordinator: each is serving again (not just running) within 10 s."""
    _, view = status(testbed)
    leader = view["leader"]
    [vip_host] = vip_holders(testbed, BALANCERS, VIP)
    old_workers = workers_on(testbed, "wk1")
    serving = {
        # a new worker process registered from the host
        "zkq-worker": lambda host: bool(workers_on(testbed, host) - old_workers),
        "zkq-frontend": lambda host: answers(testbed.address(host), 8000, "/readyz"),
        "zkq-haproxy": lambda host: (
            answers(testbed.address(host), 80) and answers(testbed.address(host), 8404)
        ),
        # running again (the pid check) and named in the election; the killed one's node
        # stays there until its session expires, so the leader's re-election is checked
        # by the healthy `zkq status` below
        "zkq-coordinator": lambda host: status(testbed)[1].get("coordinators", []).count(host) >= 1,
    }
    victims = [
        ("wk1", "zkq-worker"),
        ("fe1", "zkq-frontend"),
        (vip_host, "zkq-haproxy"),
        (leader, "zkq-coordinator"),
    ]
    loop = SubmitLoop(API, api_key).start()
    try:
        for host, program in victims:
            old = program_pid(testbed, host, program)
            assert old is not None, f"{program} is not running on {host}"
            testbed.run(host, f"kill -9 {old}", check=True)

            def back(host: str = host, program: str = program, old: int = old) -> bool:
                return program_pid(testbed, host, program) not in (None, old) and bool(
                    serving[program](host)
                )

            took = wait_for(back, BACK_WITHIN, f"{program} on {host} serving after kill -9")
            figure(f"kill -9 {program} on {host}: serving again after {took:.1f} s")
        healthy = time.monotonic()
        wait_for(lambda: status(testbed)[0] == 0, 30, "zkq status healthy after the kills")
        wait_for(lambda: loop.accepted_since(healthy) >= 10, 30, "submissions after the kills")
    finally:
        loop.stop()
    lost = unfinished(API, api_key, loop.accepted)
    figure(
        f"kill -9 round: {len(loop.accepted)} jobs accepted, {len(loop.errors)} refused "
        f"attempts (longest outage {loop.longest_outage():.1f} s), {len(lost)} not done"
    )
    assert not loop.failed, f"{len(loop.failed)} submissions never accepted: {loop.errors[-3:]}"
    assert lost == {}


def test_a_rebooted_host_starts_its_services(testbed: Testbed, api_key: str) -> None:
    """A power cut on a frontend host: when it boots again, its init starts supervisor,
    which starts the frontend; HAProxy takes it back; the other frontend served meanwhile."""
    loop = SubmitLoop(API, api_key).start()
    try:
        testbed.stop_host("fe2", hard=True)
        down = time.monotonic()
        wait_for(
            lambda: any(
                f["server"] == "fe2" and f["status"].startswith("DOWN")
                for f in status(testbed)[1].get("frontends", [])
            ),
            30,
            "HAProxy sees fe2 down",
        )
        wait_for(lambda: loop.accepted_since(down) >= 10, 30, "submissions with fe2 down")
        testbed.start_host("fe2")
        took = wait_for(
            lambda: answers(testbed.address("fe2"), 8000, "/readyz"), 60, "fe2 ready after boot"
        )
        figure(f"frontend host power-cycled: serving {took:.1f} s after it booted")
        wait_for(lambda: status(testbed)[0] == 0, 30, "zkq status healthy after the reboot")
    finally:
        loop.stop()
    assert not loop.failed
    assert unfinished(API, api_key, loop.accepted) == {}


def test_the_floating_address_moves_when_its_balancer_is_cut_off(
    testbed: Testbed, api_key: str
) -> None:
    [owner] = vip_holders(testbed, BALANCERS, VIP)
    [other] = [b for b in BALANCERS if b != owner]
    loop = SubmitLoop(API, api_key, interval=0.05).start()
    try:
        wait_for(lambda: loop.accepted_since(0) >= 20, 30, "submissions before the cut")
        cut = time.monotonic()
        testbed.cut_link(owner)
        moved = wait_for(
            lambda: vip_holders(testbed, [other], VIP) == [other], 30, f"{VIP} on {other}"
        )
        wait_for(lambda: loop.successes and loop.successes[-1] > cut + moved, 30, "a submission")
        served = loop.successes[-1] - cut
        wait_for(lambda: loop.accepted_since(cut + served) >= 20, 30, f"submissions via {other}")
        healed = time.monotonic()
        testbed.restore_link(owner)
        # the two balancers see each other again and one of them keeps the address
        wait_for(
            lambda: len(vip_holders(testbed, BALANCERS, VIP)) == 1, 30, f"{VIP} on one balancer"
        )
        wait_for(lambda: loop.accepted_since(healed) >= 40, 60, "submissions after the heal")
    finally:
        testbed.restore_link(owner)
        loop.stop()
    lost = unfinished(API, api_key, loop.accepted)
    figure(
        f"balancer {owner} cut off: {VIP} on {other} after {moved:.1f} s, submissions "
        f"accepted again after {served:.1f} s; longest client outage "
        f"{loop.longest_outage():.1f} s; {len(loop.accepted)} accepted, {len(lost)} not done"
    )
    assert not loop.failed
    # VRRP: three missed advertisements (1 s apart) and the backup takes over
    assert served < 8 and loop.longest_outage() < 8, loop.outages()
    assert lost == {}
    assert len(vip_holders(testbed, BALANCERS, VIP)) == 1


def rolling_under_load(
    what: str, tags: str, api_key: str, logs: Path, inventories: list[Path]
) -> PlaybookRun:
    """rolling.yml with ``--tags`` while a client submits every 50 ms through the floating
    address: not one submission may be refused, and every accepted job must succeed."""
    loop = SubmitLoop(API, api_key, interval=0.05).start()
    try:
        rolled = run("rolling.yml", logs, inventories, "--tags", tags)
    finally:
        loop.stop()
    lost = unfinished(API, api_key, loop.accepted)
    figure(
        f"rolling restart of {what}: {rolled.seconds:.0f} s, {len(loop.accepted)} jobs "
        f"accepted, {len(loop.failed)} failed, {len(loop.errors)} refused attempts, "
        f"{len(lost)} not done"
    )
    assert not loop.failed and loop.errors == [], loop.errors[:5]
    assert lost == {}
    return rolled


def test_a_rolling_zookeeper_restart_loses_nothing(
    testbed: Testbed, api_key: str, logs: Path, inventories: list[Path]
) -> None:
    before = zookeeper_modes(testbed, ZOOKEEPERS)
    [leader] = [h for h, mode in before.items() if mode == "leader"]
    rolled = rolling_under_load("the ZooKeeper ensemble", "zookeeper", api_key, logs, inventories)
    log = rolled.log.read_text()
    # the leader is restarted last, once both followers have
    followers_play = log.index("PLAY [ZooKeeper | restart the followers")
    leader_play = log.index("PLAY [ZooKeeper | restart the leader last")
    assert f"[{leader}]" not in log[followers_play:leader_play]
    assert f"[{leader}]" in log[leader_play:]
    assert sorted(zookeeper_modes(testbed, ZOOKEEPERS).values()) == [
        "follower",
        "follower",
        "leader",
    ]


def test_a_rolling_restart_of_the_rest_loses_nothing(
    testbed: Testbed, api_key: str, logs: Path, inventories: list[Path]
) -> None:
    rolling_under_load(
        "coordinators, frontends and workers",
        "coordinator,frontend,worker",
        api_key,
        logs,
        inventories,
    )
    code, view = status(testbed)
    assert code == 0, view.get("problems")
    assert sorted(w["host"] for w in view["workers"]) == ["wk1", "wk2"]
