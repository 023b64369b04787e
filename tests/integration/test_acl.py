"""ZooKeeper ACLs against the real ensemble: each role on its own digest credential does its
part of a job's life, and an anonymous client and each role outside its rights are refused
(the matrix is :mod:`zkq.coordinator.acl`)."""

from __future__ import annotations

import functools
import json
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from tests.support import APP, client_of, running_cluster
from zkq.cli import main
from zkq.coordinator import zk
from zkq.coordinator.acl import AclIdentities, Perm, Role
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import JobNotFound
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.coordinator.lease import parse_lease
from zkq.coordinator.paths import Layout
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import (
    Create,
    Delete,
    NotPermitted,
    SetData,
    TransactionFailed,
    ZkSession,
)
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

CREDENTIALS = {role: f"test-{role}:{secrets.token_urlsafe(12)}" for role in Role}
IDENTITIES = AclIdentities.of_credentials(CREDENTIALS)


@dataclass
class Cluster:
    """One root on the shared ensemble, a store per role, and what the roles did."""

    layout: Layout
    stores: dict[Role | None, JobStore]
    job_id: str = ""  # submitted by the frontend, assigned to and started by W1
    version: int = 0

    def session(self, role: Role | None) -> ZkSession:
        return self.stores[role].session


W1 = "w1-host-1-abcdef"


def seen(store: JobStore, job_id: str, state: JobState) -> tuple[Job, int]:
    """The job once ``store``'s session sees it in ``state``: each session reads from its
    own server, which may not have applied another session's write yet."""
    found: list[tuple[Job, int]] = []

    def check() -> bool:
        with suppress(JobNotFound):
            found[:] = [store.get_versioned(job_id)]
        return bool(found) and found[0][0].state == state

    wait_until(check, 10, interval=0.02, what=f"job {job_id} {state}")
    return found[0]


@pytest.fixture
def cluster(ensemble: ZooKeeperEnsemble) -> Iterator[Cluster]:
    root = f"/acl-{time.time_ns()}"
    with ExitStack() as stack:
        stores: dict[Role | None, JobStore] = {}
        # the coordinator first: it lays out the fixed parents, as a fresh cluster's would
        for role in [Role.COORDINATOR, Role.FRONTEND, Role.WORKER, Role.OPERATOR, None]:
            options = {"zk_acl": IDENTITIES.format()}
            if role is not None:
                options["zk_auth"] = CREDENTIALS[role]
            config = ClusterConfig.load({}, hosts=ensemble.connect_string, root=root, **options)
            session = zk.connect(config.zk, name=str(role or "anonymous"))
            stack.callback(session.stop)
            assert session.start(wait=10)
            if role == Role.COORDINATOR:
                session.ensure_paths(config.zk.layout.fixed_parents())
            stores[role] = JobStore(session, config.limits)
        c = Cluster(Layout(root), stores)
        # the lifecycle as far as a running attempt, each step by the role that takes it
        worker = c.session(Role.WORKER)
        worker.multi([Create(c.layout.inbox(W1)), Create(c.layout.worker(W1), ephemeral=True)])
        job = c.stores[Role.FRONTEND].submit(JobSpec("t", payload={"secret": "s3"}))
        found, version = seen(c.stores[Role.COORDINATOR], job.id, JobState.PENDING)
        assigned, refused = c.stores[Role.COORDINATOR].assign_many([(found, version, W1)])
        assert assigned and not refused
        found, version = seen(c.stores[Role.WORKER], job.id, JobState.ASSIGNED)
        running, c.version = FencedWriter(c.stores[Role.WORKER]).start(found, version, W1)
        assert running.state == JobState.RUNNING
        c.job_id = job.id
        # every session's server has caught up with the start (``exists`` needs no
        # permission), so a test's read cannot miss a node that another session wrote
        for role, store in stores.items():
            wait_until(
                functools.partial(has_node, store.session, c.layout.claim(job.id)),
                10,
                interval=0.02,
                what=f"the claim, as {role} sees it",
            )
        yield c


def has_node(session: ZkSession, path: str) -> bool:
    return session.exists(path) is not None


def user_of(identity: str) -> str:
    return identity.split(":", 1)[0]


def refused(action: Callable[[], Any]) -> bool:
    """Whether ZooKeeper refused ``action`` for want of permission, alone or in a multi."""
    try:
        action()
    except NotPermitted:
        return True
    except TransactionFailed as exc:
        return isinstance(exc.error, NotPermitted)
    return False


def test_an_anonymous_client_can_neither_read_nor_write(cluster: Cluster) -> None:
    anon = cluster.session(None)
    layout = cluster.layout
    assert refused(lambda: anon.get(layout.job(cluster.job_id)))
    assert refused(lambda: anon.get_children(layout.pending_type("t")))
    assert refused(lambda: anon.get_children(layout.workers))
    assert refused(lambda: anon.create(layout.root + "/mine"))
    # a fake worker: its registration would make the leader hand it real jobs
    fake = "fake-host-1-000000"
    assert refused(
        lambda: anon.multi(
            [Create(layout.inbox(fake)), Create(layout.worker(fake), ephemeral=True)]
        )
    )
    assert refused(lambda: anon.set(layout.job(cluster.job_id), b"{}"))


def test_no_node_zkq_creates_is_open_to_the_world(
    ensemble: ZooKeeperEnsemble, cluster: Cluster
) -> None:
    layout = cluster.layout
    paths = [
        layout.root,
        layout.jobs,
        layout.job(cluster.job_id),
        layout.pending_shard("t", cluster.job_id),
        layout.inbox_entry(W1, cluster.job_id),
        layout.claim(cluster.job_id),
        layout.worker(W1),
        layout.election,
    ]
    raw = KazooClient(
        hosts=ensemble.connect_string, auth_data=[("digest", CREDENTIALS[Role.OPERATOR])]
    )
    raw.start(timeout=10)
    try:
        for path in paths:
            acl, _ = raw.get_acls(path)
            schemes = {entry.id.scheme for entry in acl}
            assert schemes == {"digest"}, (path, acl)
            # ZooKeeper shows a digest identity's user and masks its hash
            by_user = {user_of(entry.id.id): entry.perms for entry in acl}
            assert by_user[user_of(IDENTITIES.coordinator)] == Perm.ALL, (path, by_user)
            assert by_user[user_of(IDENTITIES.operator)] == Perm.READ, (path, by_user)
    finally:
        raw.stop()
        raw.close()


def test_the_frontend_submits_reads_and_cancels_but_cannot_assign_claim_or_prune(
    cluster: Cluster,
) -> None:
    frontend = cluster.session(Role.FRONTEND)
    layout = cluster.layout
    job_id = cluster.job_id
    seen(cluster.stores[Role.FRONTEND], job_id, JobState.RUNNING)
    raw, _ = frontend.get(layout.job(job_id))
    assert b"s3" in raw  # reads the records it serves
    assert refused(lambda: frontend.create(layout.inbox_entry(W1, "01J0000000000000000000000X")))
    assert refused(
        lambda: frontend.create(layout.claim("01J0000000000000000000000X"), ephemeral=True)
    )
    assert refused(lambda: frontend.create(layout.worker("fe-host-1-000000"), ephemeral=True))
    assert refused(lambda: frontend.delete(layout.job(job_id)))
    assert refused(lambda: frontend.create(layout.paused_type("t")))
    assert refused(lambda: frontend.create(layout.election + "/n_", ephemeral=True, sequence=True))
    # the lease is its worker's to renew
    assert refused(lambda: frontend.set(layout.claim(job_id), b"{}"))
    # what cancel needs: the record, and the running attempt's claim and inbox entry
    cancelled = cluster.stores[Role.FRONTEND].cancel(job_id)
    assert cancelled.state == JobState.CANCELLED
    assert frontend.exists(layout.claim(job_id)) is None


def test_a_worker_runs_its_jobs_but_cannot_assign_itself_work_prune_or_lead(
    cluster: Cluster,
) -> None:
    worker = cluster.session(Role.WORKER)
    layout = cluster.layout
    job_id = cluster.job_id
    # a job for itself, straight into its inbox: only the leader assigns
    assert refused(lambda: worker.create(layout.inbox_entry(W1, "01J0000000000000000000000X")))
    assert refused(lambda: worker.delete(layout.job(job_id), -1))
    assert refused(lambda: worker.create(layout.paused_type("t")))
    assert refused(lambda: worker.create(layout.election + "/n_", ephemeral=True, sequence=True))
    assert refused(lambda: worker.delete(layout.pending_shard("t", job_id)))
    # its own part: renewing its lease (a versioned write of its claim) ...
    raw, stat = worker.get(layout.claim(job_id))
    worker.set(layout.claim(job_id), parse_lease(raw).renewed(60).to_bytes(), stat.version)
    # ... and the completion (set the record, delete its claim and inbox entry)
    job, version = seen(cluster.stores[Role.WORKER], job_id, JobState.RUNNING)
    done = FencedWriter(cluster.stores[Role.WORKER]).complete(job, version, W1, {"ok": 1})
    assert done.state == JobState.SUCCEEDED


def test_the_read_only_operator_reads_everything_and_changes_nothing(cluster: Cluster) -> None:
    operator = cluster.session(Role.OPERATOR)
    layout = cluster.layout
    job_id = cluster.job_id
    seen(cluster.stores[Role.OPERATOR], job_id, JobState.RUNNING)  # its server caught up
    assert operator.get(layout.job(job_id))[0]
    assert operator.get_children(layout.workers) == [W1]
    assert operator.get_children(layout.pending_type("t"))
    assert refused(lambda: operator.set(layout.job(job_id), b"{}"))
    assert refused(lambda: operator.create(layout.paused_type("t")))
    assert refused(lambda: operator.delete(layout.claim(job_id)))
    assert refused(lambda: operator.multi([SetData(layout.worker(W1), b"{}")]))
    # the coordinator's credential (an operator who acts) may
    cluster.session(Role.COORDINATOR).create(layout.paused_type("t"))
    # (the operator's session may be on another member, which applies the write a moment
    # later: ZooKeeper promises no read-your-writes across sessions)
    wait_until(lambda: operator.exists(layout.paused_type("t")), 10, what="the pause")


def test_the_election_node_is_the_coordinators_alone(
    ensemble: ZooKeeperEnsemble, cluster: Cluster
) -> None:
    election = cluster.session(Role.COORDINATOR).election(cluster.layout.election, "c1")
    leading, release = threading.Event(), threading.Event()

    def lead() -> None:
        leading.set()
        release.wait(30)

    thread = threading.Thread(target=election.run, args=(lead,), daemon=True)
    thread.start()
    try:
        wait_until(leading.is_set, 15, what="the election")
        node = election.node
        assert node is not None
        assert refused(lambda: cluster.session(Role.WORKER).delete(node))
        assert refused(lambda: cluster.session(Role.FRONTEND).delete(node))
        raw = KazooClient(
            hosts=ensemble.connect_string, auth_data=[("digest", CREDENTIALS[Role.OPERATOR])]
        )
        raw.start(timeout=10)
        try:
            acl, _ = raw.get_acls(node)
            assert {user_of(e.id.id): e.perms for e in acl}[user_of(IDENTITIES.worker)] == Perm.READ
        finally:
            raw.stop()
            raw.close()
    finally:
        release.set()
        thread.join(15)
    assert not thread.is_alive()


def test_the_coordinator_may_prune_what_the_others_created(cluster: Cluster) -> None:
    coordinator = cluster.session(Role.COORDINATOR)
    layout = cluster.layout
    job_id = cluster.job_id
    coordinator.delete(layout.claim(job_id))
    coordinator.delete(layout.inbox_entry(W1, job_id))
    coordinator.multi([Delete(layout.job(job_id))])
    assert coordinator.exists(layout.job(job_id)) is None


def test_acl_apply_closes_a_cluster_made_before_acls(ensemble: ZooKeeperEnsemble) -> None:
    root = f"/upgrade-{time.time_ns()}"
    hosts = ensemble.connect_string
    with ExitStack() as stack:
        sessions: dict[Role | None, ZkSession] = {}
        for role in [None, Role.FRONTEND, Role.OPERATOR]:
            options = {} if role is None else {"zk_auth": CREDENTIALS[role]}
            config = ClusterConfig.load({}, hosts=hosts, root=root, **options)
            sessions[role] = zk.connect(config.zk, name=str(role))
            stack.callback(sessions[role].stop)
            assert sessions[role].start(wait=10)
        # the cluster as zkq made it before ACLs: no credentials, every node open
        old = JobStore(sessions[None], ClusterConfig.load({}).limits)
        old.session.ensure_paths(Layout(root).fixed_parents())
        job = old.submit(JobSpec("t", payload={"secret": "s3"}))
        record = Layout(root).job(job.id)
        wait_until(functools.partial(has_node, sessions[None], record), 10, what="the record")

        def zkq(*args: str, role: Role = Role.COORDINATOR, acl: bool = True) -> Result:
            env = {"ZKQ_ZK_HOSTS": hosts, "ZKQ_ROOT": root, "ZKQ_ZK_AUTH": CREDENTIALS[role]}
            if acl:
                env["ZKQ_ZK_ACL"] = IDENTITIES.format()
            return CliRunner(env=env).invoke(main, ["acl", *args])

        assert zkq("apply", acl=False).exit_code == 2  # no policy to apply
        applied = zkq("apply", "--json")
        assert applied.exit_code == 0, applied.output
        # root, 7 fixed parents and the coordinator's, the job's 2 bucket levels, the
        # record, the pending type, era, tick and entry
        assert json.loads(applied.stdout)["nodes"] >= 15
        assert refused(lambda: sessions[None].get(record))
        assert refused(lambda: sessions[None].create(root + "/mine"))
        assert b"s3" in sessions[Role.FRONTEND].get(record)[0]
        assert refused(lambda: sessions[Role.OPERATOR].set(record, b"{}"))
        # the read-only credential may not change ACLs: one line that says what to use
        again = zkq("apply", role=Role.OPERATOR)
        assert again.exit_code == 1 and "coordinator" in again.stderr
        assert zkq("apply").exit_code == 0  # again: harmless


def test_a_dev_cluster_runs_every_service_on_its_own_credential(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "dev", workers=1, coordinators=1, worker_app=APP) as cluster:
        auth_dir = cluster.state_dir / "zk-auth"
        assert stat.S_IMODE(auth_dir.stat().st_mode) == 0o700
        files = sorted(auth_dir.iterdir())
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        with client_of(cluster) as client:  # as the frontend
            done = client.wait(client.submit("echo", {"n": 1}).id, 30)
        assert done.state == JobState.SUCCEEDED  # leader and worker on their own credentials
        record = Layout(cluster.root).job(done.id)
        anonymous = KazooClient(hosts=cluster.connect_string)
        anonymous.start(timeout=10)
        try:
            with pytest.raises(NoAuthError):
                anonymous.get(record)
        finally:
            anonymous.stop()
            anonymous.close()
        # no password in the state file or on any member's command line
        passwords = [f.read_text().strip().split(":", 1)[1] for f in files if not f.suffix]
        assert len(passwords) == len(Role)
        exposed = [cluster.state_file.read_text()]
        exposed += [Path(f"/proc/{m.process.pid}/cmdline").read_text() for m in cluster.members]
        assert not [p for p in passwords if any(p in text for text in exposed)]
        # the read-only operator's config file reads; acting needs the coordinator's
        operator = str(cluster.state_dir / "zk-auth" / "operator.toml")
        shown = CliRunner(env={"ZKQ_ZK_AUTH": ""}).invoke(
            main, ["job", done.id, "--json", "--config", operator]
        )
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["state"] == "succeeded"
        paused = CliRunner().invoke(main, ["pause", "echo", "--config", operator])
        assert paused.exit_code == 1 and "NoAuth" in paused.stderr


def test_a_thousand_submissions_fit_their_multis_with_their_acls(
    ensemble: ZooKeeperEnsemble,
) -> None:
    # each create carries its ACL (four digest entries, ~240 bytes) besides its data: with
    # a deeper root and a long type, a batch sized by data alone went over ZooKeeper's
    # 1 MB buffer, which closes the connection, at every retry
    root = f"/acl-{time.time_ns()}/" + "r" * 40
    options = {"zk_acl": IDENTITIES.format(), "zk_auth": CREDENTIALS[Role.FRONTEND]}
    config = ClusterConfig.load({}, hosts=ensemble.connect_string, root=root, **options)
    session = zk.connect(config.zk, name="frontend")
    try:
        assert session.start(wait=10)
        session.ensure_paths(config.zk.layout.shared_parents())
        specs = [JobSpec("t" * 64, payload=i) for i in range(1000)]
        jobs = JobStore(session, config.limits).submit_many(specs, time.monotonic() + 20)
        assert len({job.id for job in jobs}) == 1000
    finally:
        session.stop()
