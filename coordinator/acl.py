"""Who may do what to each znode: the one place zkq's ZooKeeper access policy is written.

Every zkq process authenticates with a ``digest`` credential of its role (``user:password``;
ZooKeeper keeps only ``user:base64(sha1(user:password))``, the role's *identity*), and every
node zkq creates carries the ACL :meth:`AclPolicy.acl_for` gives its path.  The ZooKeeper
boundary (:mod:`zkq.coordinator.zk`) applies it at each ``create``, ``ensure_path`` and multi
``Create``, so no caller has to remember.  Anonymous clients get nothing: no grant names
``world:anyone``.

ZooKeeper's permissions are per node and not inherited: READ (data and children), WRITE
(set data), CREATE and DELETE (of *children*), ADMIN (set the ACL).  A check in a multi needs
READ.  ``exists`` needs no permission.  The matrix (beyond READ, which every role has
everywhere: every role reads job records, so hiding the rest buys nothing)::

    node                               coordinator  frontend        worker
    root (and its ancestors)           all          create          create
    jobs, jobs/<era>, …/<tick>         all          create          create (ctx.spawn)
    jobs/…/<job_id> (the record)       all          write (cancel)  write (start, end)
    pending, …/<type>, …/<era>         all          create          create
    pending/…/<tick>                   all          create, delete  create (retry, spawn)
    workers                            all          -               create, delete
    workers/<id>                       all          -               write (draining)
    inbox                              all          -               create (registration)
    inbox/<id>                         all          delete (cancel) delete (completion)
    claims                             all          delete (cancel) create, delete
    claims/<job_id> (the lease)        all          -               write (heartbeat)
    paused/…, coordinator/… (election) all          -               -
    entries: pending, inbox            all          -               -

The operator's read-only credential reads everything and writes nothing; an operator who
acts (``zkq pause``, ``drain``, ``requeue``, ``cancel``) uses the coordinator's.  What
follows from the matrix: an anonymous client cannot even read; a frontend cannot register a
worker, assign a job (create in an inbox), take a claim, prune a record, pause a type or
join the election; a worker cannot assign jobs (even to itself), prune records, pause or
lead.  Limits, by design: roles, not processes, hold credentials, so one worker could
delete another's claim or write another's record (the version fence still refuses a stale
write), and a worker may create job records because ``ctx.spawn`` does.

The policy is only as good as every creator knowing every role's identity: each process is
given all four identities (``ZKQ_ZK_ACL``) and its own credential (``ZKQ_ZK_AUTH_FILE``).
Without identities (no ``ZKQ_ZK_ACL``) nodes are created open to all, as before ACLs.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from zkq.coordinator.errors import ConfigError
from zkq.coordinator.paths import Layout


class Role(enum.StrEnum):
    COORDINATOR = "coordinator"  # also the operator who acts: all permissions
    FRONTEND = "frontend"  # also the Python client that submits
    WORKER = "worker"
    OPERATOR = "operator"  # read-only


class Perm(enum.IntFlag):
    """ZooKeeper's permission bits (``ZooDefs.Perms``)."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31
    NONE = 0


@dataclass(frozen=True)
class Grant:
    """One ACL entry: ``perms`` for the ``digest`` identity ``identity`` (user:hash)."""

    identity: str
    perms: Perm
    scheme: str = "digest"


def parse_credential(text: str, where: str = "credential") -> tuple[str, str]:
    """``user:password`` split; a malformed one is a :class:`ConfigError` that never
    repeats the secret."""
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{where} must be user:password (both non-empty)")
    return user, password


def digest_identity(credential: str) -> str:
    """The identity ZooKeeper's digest scheme makes of ``user:password``:
    ``user:base64(sha1(user:password))``."""
    user, password = parse_credential(credential)
    digest = hashlib.sha1(f"{user}:{password}".encode()).digest()  # ZooKeeper's scheme
    return f"{user}:{base64.b64encode(digest).decode()}"


@dataclass(frozen=True)
class AclIdentities:
    """The digest identity (``user:hash``, not a secret) of each role."""

    coordinator: str
    frontend: str
    worker: str
    operator: str

    @classmethod
    def parse(cls, text: str) -> AclIdentities:
        """From ``coordinator=user:hash,frontend=...,worker=...,operator=...``."""
        found: dict[str, str] = {}
        for item in text.split(","):
            role, sep, identity = item.strip().partition("=")
            if not sep or role not in Role.__members__.values():
                raise ConfigError(
                    f"ACL identities must be role=user:hash for roles "
                    f"{', '.join(Role)}, separated by commas; got {item.strip()!r}"
                )
            user, sep, digest = identity.partition(":")
            if not sep or not user or not digest:
                raise ConfigError(f"the {role} identity must be user:hash, got {identity!r}")
            found[role] = identity
        missing = [r for r in Role if r not in found]
        if missing:
            raise ConfigError(f"ACL identities lack the role(s): {', '.join(missing)}")
        return cls(**found)

    @classmethod
    def of_credentials(cls, credentials: Mapping[Role, str]) -> AclIdentities:
        return cls(**{str(role): digest_identity(cred) for role, cred in credentials.items()})

    def format(self) -> str:
        return ",".join(f"{role}={self.of(role)}" for role in Role)

    def of(self, role: Role) -> str:
        identity: str = getattr(self, str(role))
        return identity


class NodeKind(enum.Enum):
    """The kinds of node the matrix tells apart."""

    ROOT = "root"  # the root and every node above it
    JOB_BUCKET = "jobs, jobs/<era>, jobs/<era>/<tick>"
    JOB = "job record"
    PENDING_BUCKET = "pending, pending/<type>, pending/<type>/<era>"
    PENDING_TICK = "pending/<type>/<era>/<tick>"
    WORKERS = "workers"
    WORKER = "workers/<id>"
    INBOXES = "inbox"
    INBOX = "inbox/<id>"
    CLAIMS = "claims"
    SCHED_BUCKET = "scheduled, scheduled/<era>, scheduled/<era>/<tick>"
    SCHED_LEAF = "scheduled/<era>/<tick>/<born>"
    CLAIM = "claims/<job_id>"  # a running attempt's lease: its worker renews it
    SCHEDULE_DIR = "schedules, schedules/<owner>"
    SCHEDULE = "schedules/<owner>/<name>"
    ENTRY = "pending entry, inbox entry"
    CONTROL = "paused, coordinator, election and anything else"


#: what frontends and workers may do beyond READ; the coordinator has ALL, the operator READ
MATRIX: dict[NodeKind, dict[Role, Perm]] = {
    NodeKind.ROOT: {Role.FRONTEND: Perm.CREATE, Role.WORKER: Perm.CREATE},
    NodeKind.JOB_BUCKET: {Role.FRONTEND: Perm.CREATE, Role.WORKER: Perm.CREATE},
    NodeKind.JOB: {Role.FRONTEND: Perm.WRITE, Role.WORKER: Perm.WRITE},
    NodeKind.PENDING_BUCKET: {Role.FRONTEND: Perm.CREATE, Role.WORKER: Perm.CREATE},
    NodeKind.PENDING_TICK: {
        Role.FRONTEND: Perm.CREATE | Perm.DELETE,
        Role.WORKER: Perm.CREATE,
    },
    NodeKind.WORKERS: {Role.WORKER: Perm.CREATE | Perm.DELETE},
    NodeKind.WORKER: {Role.WORKER: Perm.WRITE},
    NodeKind.INBOXES: {Role.WORKER: Perm.CREATE},
    NodeKind.INBOX: {Role.FRONTEND: Perm.DELETE, Role.WORKER: Perm.DELETE},
    NodeKind.CLAIMS: {Role.FRONTEND: Perm.DELETE, Role.WORKER: Perm.CREATE | Perm.DELETE},
    # a frontend schedules jobs and cancels them (deleting their entry); a worker schedules a
    # retry or a delayed child; promotion, the leader's, is the only other delete
    NodeKind.SCHED_BUCKET: {Role.FRONTEND: Perm.CREATE, Role.WORKER: Perm.CREATE},
    NodeKind.SCHED_LEAF: {Role.FRONTEND: Perm.CREATE | Perm.DELETE, Role.WORKER: Perm.CREATE},
    # a heartbeat is a versioned setData on the claim (the leader never writes its data)
    NodeKind.CLAIM: {Role.WORKER: Perm.WRITE},
    # a frontend adds, pauses and removes its tenant's schedules (the definition, and the
    # state below it on removal); the state itself is CONTROL: the leader's ticker alone
    # writes it, so no edit can roll a schedule's last tick back
    NodeKind.SCHEDULE_DIR: {Role.FRONTEND: Perm.CREATE | Perm.DELETE},
    NodeKind.SCHEDULE: {Role.FRONTEND: Perm.WRITE | Perm.DELETE},
    NodeKind.ENTRY: {},
    NodeKind.CONTROL: {},
}


def kind_of(layout: Layout, path: str) -> NodeKind:
    """Which kind of node ``path`` is, by where it sits in ``layout``."""
    root = "" if layout.root == "/" else layout.root
    if path == layout.root or not path.startswith(root + "/"):
        return NodeKind.ROOT  # the root, or above it (its ancestors)
    for top, kinds in _DEPTHS.items():
        base = getattr(layout, top)
        if path == base:
            return kinds[0]
        if path.startswith(base + "/"):
            depth = path[len(base) + 1 :].count("/") + 1
            return kinds[min(depth, len(kinds) - 1)]
    return NodeKind.CONTROL


#: per fixed parent (a :class:`Layout` property), the kind at each depth below it; the last
#: applies to anything deeper
_DEPTHS: dict[str, tuple[NodeKind, ...]] = {
    "jobs": (NodeKind.JOB_BUCKET,) * 3 + (NodeKind.JOB, NodeKind.CONTROL),
    "pending": (NodeKind.PENDING_BUCKET,) * 3
    + (NodeKind.PENDING_TICK, NodeKind.ENTRY, NodeKind.CONTROL),
    "workers": (NodeKind.WORKERS, NodeKind.WORKER, NodeKind.CONTROL),
    "inboxes": (NodeKind.INBOXES, NodeKind.INBOX, NodeKind.ENTRY, NodeKind.CONTROL),
    "claims": (NodeKind.CLAIMS, NodeKind.CLAIM, NodeKind.CONTROL),
    "scheduled": (NodeKind.SCHED_BUCKET,) * 3
    + (NodeKind.SCHED_LEAF, NodeKind.ENTRY, NodeKind.CONTROL),
    "schedules": (NodeKind.SCHEDULE_DIR,) * 2 + (NodeKind.SCHEDULE, NodeKind.CONTROL),
}


class AclPolicy:
    """The ACL of every node under one root, for one set of role identities."""

    def __init__(self, layout: Layout, identities: AclIdentities) -> None:
        self.layout = layout
        self.identities = identities
        self._by_kind = {kind: self._grants(kind) for kind in NodeKind}

    def _grants(self, kind: NodeKind) -> tuple[Grant, ...]:
        perms = {
            Role.COORDINATOR: Perm.ALL,
            Role.OPERATOR: Perm.READ,
            Role.FRONTEND: Perm.READ | MATRIX[kind].get(Role.FRONTEND, Perm.NONE),
            Role.WORKER: Perm.READ | MATRIX[kind].get(Role.WORKER, Perm.NONE),
        }
        # one grant per identity: ZooKeeper would keep two entries for a shared identity
        # and grant their union anyway, but a credential shared by two roles is a mistake
        # the union makes silent; keep the coordinator's ALL when it is shared
        merged: dict[str, Perm] = {}
        for role, perm in perms.items():
            identity = self.identities.of(role)
            merged[identity] = merged.get(identity, Perm.NONE) | perm
        return tuple(Grant(identity, perm) for identity, perm in merged.items())

    def acl_for(self, path: str) -> tuple[Grant, ...]:
        return self._by_kind[kind_of(self.layout, path)]

    @property
    def strictest(self) -> tuple[Grant, ...]:
        """What a node zkq did not foresee gets (kazoo's recipes create such nodes)."""
        return self._by_kind[NodeKind.CONTROL]

    def perms(self, role: Role, path: str) -> Perm:
        """What ``role`` may do to ``path`` (for tests and ``zkq acl``)."""
        identity = self.identities.of(role)
        return next((g.perms for g in self.acl_for(path) if g.identity == identity), Perm.NONE)


__all__ = [
    "MATRIX",
    "AclIdentities",
    "AclPolicy",
    "Grant",
    "NodeKind",
    "Perm",
    "Role",
    "digest_identity",
    "kind_of",
    "parse_credential",
]
