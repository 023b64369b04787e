"""The ops of one multi, as plain values: built without I/O (:mod:`zkq.coordinator.lifecycle`),
run by :meth:`ZkSession.multi <coordinator.zk.session.ZkSession.multi>`.

A ``version`` of -1 matches any version; on :class:`Check` it asks only that the node
exists (the leader's fence, its own election node).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Create:
    path: str
    value: bytes = b""
    ephemeral: bool = False


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True)
class SetData:
    path: str
    value: bytes
    version: int = -1


@dataclass(frozen=True)
class Check:
    path: str
    version: int = -1


Op = Create | Delete | SetData | Check


#: what a create carries besides its path and data: its ACL, which goes whole with every
#: create op.  Under zkq's policy (:mod:`zkq.coordinator.acl`) that is four digest entries
#: of perms, scheme and ``user:base64(sha1)`` (about 75 bytes each with users of up to 30
#: characters); without a policy one ``world:anyone`` entry, which this covers too.  A
#: batch of 1,000 submissions makes 2,000 creates: half a megabyte of ACLs, enough to push
#: a multi sized by its data alone past ZooKeeper's 1 MB buffer.
CREATE_ACL_BYTES = 320


def data_bytes(op: Op) -> int:
    """What ``op`` carries besides its path (data, and a create's ACL), for keeping a multi
    under ZooKeeper's buffer."""
    if isinstance(op, Create):
        return len(op.value) + CREATE_ACL_BYTES
    return len(op.value) if isinstance(op, SetData) else 0


__all__ = ["CREATE_ACL_BYTES", "Check", "Create", "Delete", "Op", "SetData", "data_bytes"]
