"""The ACL policy (coordinator/acl.py) and the credential settings, with nothing running."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkq.coordinator.acl import (
    AclIdentities,
    AclPolicy,
    NodeKind,
    Perm,
    Role,
    digest_identity,
    kind_of,
)
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ConfigError
from zkq.coordinator.paths import Layout

IDS = AclIdentities.of_credentials({role: f"{role}:pw-{role}" for role in Role})
LAYOUT = Layout("/zkq")
JOB = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def test_a_digest_identity_is_what_zookeeper_computes() -> None:
    # the example of ZooKeeper's administrator's guide (superDigest)
    assert digest_identity("super:admin") == "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", NodeKind.ROOT),
        ("/zkq", NodeKind.ROOT),
        (LAYOUT.jobs, NodeKind.JOB_BUCKET),
        (LAYOUT.job_tick("01HZZZ", "ZZ"), NodeKind.JOB_BUCKET),
        (LAYOUT.job(JOB), NodeKind.JOB),
        (LAYOUT.pending_type("t"), NodeKind.PENDING_BUCKET),
        (LAYOUT.pending_shard("t", JOB), NodeKind.PENDING_TICK),
        (LAYOUT.pending_entry("t", 5, JOB), NodeKind.ENTRY),
        (LAYOUT.workers, NodeKind.WORKERS),
        (LAYOUT.worker("w"), NodeKind.WORKER),
        (LAYOUT.inboxes, NodeKind.INBOXES),
        (LAYOUT.inbox("w"), NodeKind.INBOX),
        (LAYOUT.inbox_entry("w", JOB), NodeKind.ENTRY),
        (LAYOUT.claims, NodeKind.CLAIMS),
        (LAYOUT.claim(JOB), NodeKind.CLAIM),
        (LAYOUT.paused_type("t"), NodeKind.CONTROL),
        (LAYOUT.election + "/_c_x-lock-0000000001", NodeKind.CONTROL),
        ("/zkq/jobsmith", NodeKind.CONTROL),  # a prefix of a fixed name is not that name
    ],
)
def test_every_path_of_the_layout_has_its_kind(path: str, kind: NodeKind) -> None:
    assert kind_of(LAYOUT, path) == kind


def test_a_root_deeper_down_treats_its_ancestors_as_the_root() -> None:
    layout = Layout("/apps/zkq")
    assert kind_of(layout, "/apps") == NodeKind.ROOT
    assert kind_of(layout, "/apps/zkq/claims") == NodeKind.CLAIMS


def test_the_matrix_as_each_role_sees_it() -> None:
    policy = AclPolicy(LAYOUT, IDS)
    for path in (LAYOUT.root, LAYOUT.job(JOB), LAYOUT.claim(JOB), LAYOUT.election):
        assert policy.perms(Role.COORDINATOR, path) == Perm.ALL
        assert policy.perms(Role.OPERATOR, path) == Perm.READ
    fe, wk = Role.FRONTEND, Role.WORKER
    assert policy.perms(fe, LAYOUT.job(JOB)) == Perm.READ | Perm.WRITE
    assert policy.perms(fe, LAYOUT.pending_shard("t", JOB)) == Perm.READ | Perm.CREATE | Perm.DELETE
    assert policy.perms(wk, LAYOUT.pending_shard("t", JOB)) == Perm.READ | Perm.CREATE
    assert policy.perms(fe, LAYOUT.workers) == Perm.READ  # no fake workers
    assert policy.perms(wk, LAYOUT.inbox("w")) == Perm.READ | Perm.DELETE  # no self-assigning
    assert policy.perms(fe, LAYOUT.claims) == Perm.READ | Perm.DELETE  # cancel, never claim
    assert policy.perms(wk, LAYOUT.claim(JOB)) == Perm.READ | Perm.WRITE  # heartbeats
    assert policy.perms(fe, LAYOUT.claim(JOB)) == Perm.READ  # nothing but its parent's delete
    assert policy.perms(wk, LAYOUT.job_tick("01HZZZ", "ZZ")) == Perm.READ | Perm.CREATE
    assert policy.perms(wk, LAYOUT.paused) == Perm.READ
    # nobody but the coordinator may change an ACL
    for role in (fe, wk, Role.OPERATOR):
        assert all(not policy.perms(role, p) & Perm.ADMIN for p in (LAYOUT.root, LAYOUT.jobs))
    assert "world" not in {g.scheme for g in policy.acl_for(LAYOUT.root)}


def test_identities_round_trip_and_name_what_is_wrong() -> None:
    assert AclIdentities.parse(IDS.format()) == IDS
    with pytest.raises(ConfigError, match="lack the role"):
        AclIdentities.parse("coordinator=a:b")
    with pytest.raises(ConfigError, match="role=user:hash"):
        AclIdentities.parse("boss=a:b")


def test_a_credential_comes_from_a_private_file_and_never_shows(tmp_path: Path) -> None:
    file = tmp_path / "worker.auth"
    file.write_text("zkq-worker:s3cret\n")
    file.chmod(0o600)
    config = ClusterConfig.load({"ZKQ_ZK_AUTH_FILE": str(file), "ZKQ_ZK_ACL": IDS.format()})
    assert config.zk.auth == "zkq-worker:s3cret" and config.zk.acl == IDS
    assert "s3cret" not in repr(config)
    file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ClusterConfig.load({"ZKQ_ZK_AUTH_FILE": str(file)})


def test_a_config_file_that_holds_a_credential_must_be_private(tmp_path: Path) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text('[zookeeper]\nauth = "zkq-operator:pw"\n')
    file.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        ClusterConfig.load({}, config_file=str(file))
    file.chmod(0o600)
    assert ClusterConfig.load({}, config_file=str(file)).zk.auth == "zkq-operator:pw"


def test_a_higher_layer_s_credential_replaces_a_lower_one_however_given(tmp_path: Path) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text('[zookeeper]\nauth = "from-file:pw"\n')
    file.chmod(0o600)
    auth = tmp_path / "auth"
    auth.write_text("from-env-file:pw")
    auth.chmod(0o600)
    env = {"ZKQ_CONFIG": str(file), "ZKQ_ZK_AUTH_FILE": str(auth)}
    assert ClusterConfig.load(env).zk.auth == "from-env-file:pw"
    with pytest.raises(ConfigError, match="not both"):
        ClusterConfig.load({**env, "ZKQ_ZK_AUTH": "inline:pw"})


@pytest.mark.parametrize("bad", ["s3cret-alone", ":s3cret", "s3cret:"])
def test_a_malformed_credential_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigError, match="user:password") as caught:
        ClusterConfig.load({"ZKQ_ZK_AUTH": bad})
    assert "s3cret" not in str(caught.value)
