"""The in-memory ZooKeeper answers as the real one: one script of operations runs against
a :class:`KazooSession` on the ensemble and against a :class:`MemorySession`, and every
answer, outcome and watch event must be the same.

Answers are compared normalised: paths relative to the script's root, stats as (version,
whose ephemeral, children, data length), exceptions as their type (a failed multi as the
index and type of its failing op and what each op answered), listings sorted, and each
watch callback's events in the order it received them.  A session is expired on the
ensemble as Curator and the old kazoo harness did: a second client joins the session with
its id and password and closes it, which ends the session at once.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient

from zkq.coordinator.acl import AclIdentities, Role
from zkq.coordinator.config import ZkSettings
from zkq.coordinator.zk import (
    Check,
    Create,
    Delete,
    Election,
    SetData,
    Stat,
    TransactionFailed,
    WatchEvent,
    ZkSession,
    connect,
)
from zkq.coordinator.zk.kazoo_session import KazooSession
from zkq.coordinator.zk.memory import MemoryZooKeeper
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

CREDENTIALS = {role: f"script-{role}:{secrets.token_urlsafe(12)}" for role in Role}
COORDINATOR = CREDENTIALS[Role.COORDINATOR]
IDENTITIES = AclIdentities.of_credentials(CREDENTIALS)


class Ensemble:
    """Sessions on the real ensemble."""

    def __init__(self, ensemble: ZooKeeperEnsemble) -> None:
        # every session on one member: ZooKeeper orders one server's answers, but a session
        # on another member may read before that member has applied a write another
        # session just made (no cross-session read-your-writes without a sync), which the
        # tree in memory never does
        self.hosts = ensemble.connect_string.split(",")[0]

    def session(self) -> ZkSession:
        # with ACLs on, as zkq runs: the coordinator's credential, which may do anything,
        # so the answers are the same as the tree in memory, which keeps no ACLs
        settings = ZkSettings(
            hosts=self.hosts, session_timeout=10.0, auth=COORDINATOR, acl=IDENTITIES
        )
        session = connect(settings)
        assert session.start(wait=15)
        return session

    def expire(self, session: ZkSession) -> None:
        assert isinstance(session, KazooSession)
        generation = session.generation
        thief = KazooClient(self.hosts, client_id=session.client.client_id)
        thief.start(15)
        thief.stop()  # closes the session: its ephemerals go now
        thief.close()
        wait_until(
            lambda: session.generation > generation and session.connected.is_set(),
            20,
            what="the expired session to come back as a new one",
        )


class Memory:
    """Sessions on one in-memory tree."""

    def __init__(self) -> None:
        self.zk = MemoryZooKeeper()

    def session(self) -> ZkSession:
        session = self.zk.session(ZkSettings(hosts="memory"))
        assert session.start(wait=1)
        return session

    def expire(self, session: ZkSession) -> None:
        self.zk.expire(session)  # type: ignore[arg-type]


Backend = Ensemble | Memory


class Script:
    """Runs operations, recording what each answered, normalised."""

    def __init__(self, backend: Backend, root: str) -> None:
        self.backend = backend
        self.root = root
        self.sessions: dict[str, ZkSession] = {}
        self.record: list[tuple[str, Any]] = []
        self.events: dict[str, list[tuple[str, str | None]]] = {}
        self._barriers = 0

    def session(self, label: str) -> ZkSession:
        self.sessions[label] = self.backend.session()
        return self.sessions[label]

    def p(self, path: str) -> str:
        return self.root + path

    def rel(self, path: str) -> str:
        return path[len(self.root) :] if path.startswith(self.root) else path

    def owner(self, session_id: int) -> str | int:
        for label, session in self.sessions.items():
            if session.session_id == session_id:
                return label
        return session_id and "someone else"

    def norm(self, value: Any) -> Any:
        if isinstance(value, Stat):
            assert value.created <= value.modified
            owner = self.owner(value.ephemeral_owner)
            return ("stat", value.version, owner, value.num_children, value.data_length)
        if isinstance(value, str):
            return self.rel(value)
        if isinstance(value, bytes):
            return value
        if isinstance(value, tuple | list):
            return [self.norm(v) for v in value]
        if isinstance(value, dict):  # get_many, get_children_many: listings sorted
            return {
                self.rel(k): sorted(v) if isinstance(v, list) else self.norm(v)
                for k, v in sorted(value.items())
            }
        if isinstance(value, TransactionFailed):
            results = [type(r).__name__ if isinstance(r, Exception) else r for r in value.results]
            return ("TransactionFailed", value.index, type(value.error).__name__, results)
        if isinstance(value, Exception):
            return type(value).__name__
        return value

    def do(self, label: str, call: Callable[[], Any], sort: bool = False) -> Any:
        try:
            answer = call()
        except Exception as exc:  # every outcome is an answer to compare
            self.record.append((label, self.norm(exc)))
            return None
        normalised = self.norm(answer)
        self.record.append((label, sorted(normalised) if sort else normalised))
        return answer

    def watch(self, label: str) -> Callable[[WatchEvent], None]:
        seen = self.events.setdefault(label, [])

        def on_event(event: WatchEvent) -> None:
            seen.append((event.type.value, self.rel(event.path) if event.path else None))

        return on_event

    def barrier(self, label: str) -> None:
        """Every watch event fired so far has reached its callback: each session fires one
        more on itself and waits for it, since a session's events arrive in order."""
        for session in self.sessions.values():
            self._barriers += 1
            arrived = threading.Event()
            path = f"{self.root}-barrier/{self._barriers}"
            assert session.exists(path, watch=lambda _e, done=arrived: done.set()) is None
            session.create(path, makepath=True)
            assert arrived.wait(15), "a session's own watch event never came"
        self.record.append((label, {k: list(v) for k, v in sorted(self.events.items())}))


def script(s: Script) -> None:
    a, b = s.session("A"), s.session("B")
    p = s.p
    a.ensure_path(p(""))

    # -- creates, sets, deletes ------------------------------------------------------------
    s.do("create", lambda: a.create(p("/a"), b"1"))
    s.do("create again", lambda: a.create(p("/a"), b"2"))
    s.do("create, no parent", lambda: a.create(p("/x/y")))
    s.do("create, makepath", lambda: a.create(p("/x/y"), b"yy", makepath=True))
    s.do("get", lambda: a.get(p("/a")))
    s.do("set at 0", lambda: a.set(p("/a"), b"one", 0))
    s.do("set at 0 again", lambda: a.set(p("/a"), b"uno", 0))
    s.do("set any version", lambda: b.set(p("/a"), b"eins"))
    s.do("set missing", lambda: a.set(p("/missing"), b""))
    s.do("get missing", lambda: a.get(p("/missing")))
    s.do("exists missing", lambda: a.exists(p("/missing")))
    s.do("delete, bad version", lambda: a.delete(p("/a"), 5))
    s.do("delete, not empty", lambda: a.delete(p("/x")))
    s.do("delete, not empty, bad version", lambda: a.delete(p("/x"), 7))
    s.do("delete missing", lambda: a.delete(p("/missing")))
    s.do("delete at version", lambda: a.delete(p("/a"), 2))
    s.do("ensure_path", lambda: a.ensure_path(p("/deep/er/still")))
    s.do("ensure_path again", lambda: a.ensure_path(p("/deep/er")))
    s.do("stat of a parent", lambda: a.exists(p("/deep/er")))

    # -- sequential nodes: the counter counts creates, not deletes --------------------------
    a.create(p("/q"))
    first = s.do("seq 1", lambda: a.create(p("/q/s-"), sequence=True))
    s.do("seq 2", lambda: a.create(p("/q/s-"), sequence=True))
    s.do("delete seq 1", lambda: a.delete(first))
    s.do("plain child", lambda: a.create(p("/q/plain")))
    s.do("seq 3", lambda: a.create(p("/q/s-"), sequence=True))
    s.do("seq, bare", lambda: b.create(p("/q/"), b"", sequence=True))
    s.do("failed multi under q", lambda: a.multi([Create(p("/q/m")), Create(p("/q/m"))]))
    s.do("seq after a failed multi", lambda: a.create(p("/q/s-"), sequence=True))
    s.do("ephemeral seq", lambda: a.create(p("/q/e-"), ephemeral=True, sequence=True))
    s.do("children of q", lambda: a.get_children(p("/q")), sort=True)

    # -- ephemerals ---------------------------------------------------------------------------
    s.do("ephemeral", lambda: a.create(p("/e"), b"mine", ephemeral=True))
    s.do("ephemeral stat", lambda: b.exists(p("/e")))
    s.do("child of an ephemeral", lambda: a.create(p("/e/child")))
    s.do("ephemeral of B", lambda: b.create(p("/eb"), ephemeral=True))

    # -- multis --------------------------------------------------------------------------------
    ok = [
        Create(p("/m"), b"m"),
        Create(p("/m/c")),
        SetData(p("/m"), b"mm", 0),
        Check(p("/m"), 1),
        Delete(p("/m/c")),
        Check(p("/m")),
    ]
    s.do("multi applies", lambda: a.multi(ok))
    failing = {
        "NodeExists at 0": [Create(p("/m")), Create(p("/n")), SetData(p("/m"), b"")],
        "NoNode at 1": [Create(p("/n")), Create(p("/nope/c")), Delete(p("/m"))],
        "BadVersion at 2": [Create(p("/n")), SetData(p("/m"), b"x", 1), SetData(p("/m"), b"", 1)],
        "NotEmpty at 1": [Create(p("/m/d")), Delete(p("/m")), Create(p("/n"))],
        "Check NoNode at 3": [Create(p("/n")), Check(p("/m")), Check(p("/n")), Check(p("/zz"))],
        "Check BadVersion at 0": [Check(p("/m"), 0), Create(p("/n"))],
        "Delete BadVersion": [Check(p("/m"), 1), Delete(p("/m"), 3)],
        "ephemeral parent at 1": [Create(p("/f"), ephemeral=True), Create(p("/f/g"))],
        "delete of a missing node": [Delete(p("/zz"))],
    }
    for label, ops in failing.items():
        s.do(f"multi fails: {label}", lambda ops=ops: a.multi(ops))
    s.do("nothing of the failed multis", lambda: a.get_many([p("/n"), p("/m/d"), p("/f"), p("/m")]))
    s.do("multi of create + delete", lambda: b.multi([Create(p("/t")), Delete(p("/t"))]))
    s.do("multi, ephemeral", lambda: b.multi([Create(p("/eph2"), b"e", ephemeral=True)]))
    s.do("stat of eph2", lambda: a.exists(p("/eph2")))

    # -- watches ---------------------------------------------------------------------------------
    a.create(p("/w"), b"w")
    a.create(p("/w3"))
    s.do("get with watch", lambda: b.get(p("/w"), watch=s.watch("w data")))
    s.do(
        "children with watch",
        lambda: b.get_children(p("/w"), watch=s.watch("w children")),
        sort=True,
    )
    s.do("exists of a missing node", lambda: b.exists(p("/later"), watch=s.watch("later")))
    same = s.watch("w3 twice, one callback")
    s.do("get w3", lambda: b.get(p("/w3"), watch=same))
    s.do("exists w3, same callback", lambda: b.exists(p("/w3"), watch=same))
    s.do("children w3, same callback", lambda: b.get_children(p("/w3"), watch=same), sort=True)
    s.do("get w with A's watch", lambda: a.get(p("/w"), watch=s.watch("w data of A")))
    s.barrier("no event yet")
    s.do("set w", lambda: a.set(p("/w"), b"w2"))
    s.do("set w again", lambda: a.set(p("/w"), b"w3"))
    s.do("two children of w in one multi", lambda: a.multi([Create(p("/w/1")), Create(p("/w/2"))]))
    s.do("create later", lambda: a.create(p("/later")))
    s.do("delete w3", lambda: a.delete(p("/w3")))
    s.barrier("each watch fired once")
    s.do("watch w again", lambda: b.get(p("/w"), watch=s.watch("w data, second")))
    s.do(
        "watch w's children again",
        lambda: b.get_children(p("/w"), watch=s.watch("w kids 2")),
        sort=True,
    )
    s.do("failed multi touching w", lambda: a.multi([SetData(p("/w"), b"x"), Create(p("/w/1"))]))
    s.barrier("a rolled-back multi fires nothing")
    s.do("children of w", lambda: a.get_children(p("/w")), sort=True)
    s.do("delete w's children and w", lambda: a.multi([Delete(p("/w/1")), Delete(p("/w/2"))]))
    s.do("delete w", lambda: a.delete(p("/w")))
    s.do("get_children_many", lambda: b.get_children_many([p("/q"), p("/w")]))
    s.barrier("deletion fires data and child watches")

    # -- a session expires ------------------------------------------------------------------------
    s.do("watch A's ephemeral", lambda: b.get(p("/e"), watch=s.watch("e data")))
    s.do(
        "watch the root's children",
        lambda: b.get_children(p(""), watch=s.watch("root kids")),
        sort=True,
    )
    # on a node the expiry leaves alone: whether A is told of its own ephemerals' deletion
    # (under /q) before it learns that its session ended is a race in real ZooKeeper
    s.do("A watches", lambda: a.exists(p("/later"), watch=s.watch("A's own watch")))
    old_id = a.session_id
    s.backend.expire(a)
    s.record.append(("a new session id", a.session_id != old_id))
    s.barrier("expiry: ephemerals gone, A's own watch told")
    s.do("A's ephemerals are gone", lambda: b.get_many([p("/e"), p("/eph2"), p("/eb")]))
    s.do("A's sequential ephemeral is gone", lambda: b.get_children(p("/q")), sort=True)
    s.do("A makes an ephemeral again", lambda: a.create(p("/e"), b"again", ephemeral=True))
    s.do("owned by A's new session", lambda: b.exists(p("/e")))

    # -- recursive delete -----------------------------------------------------------------------
    s.do("delete recursive", lambda: a.delete(p("/deep"), recursive=True))
    s.do("delete recursive, missing", lambda: a.delete(p("/deep"), recursive=True))
    s.do("what is left", lambda: b.get_children(p("")), sort=True)


@pytest.fixture
def backends(ensemble: ZooKeeperEnsemble) -> Iterator[tuple[Ensemble, Memory]]:
    yield Ensemble(ensemble), Memory()


def run(backend: Backend, body: Callable[[Script], None]) -> list[tuple[str, Any]]:
    s = Script(backend, f"/memcheck-{uuid.uuid4().hex[:8]}")
    try:
        body(s)
    finally:
        for session in s.sessions.values():
            session.stop()
    return s.record


def assert_same(real: list[tuple[str, Any]], memory: list[tuple[str, Any]]) -> None:
    for (label, theirs), (_, ours) in zip(real, memory, strict=True):
        assert ours == theirs, f"{label}: ZooKeeper answered {theirs!r}, the fake {ours!r}"


def test_the_fake_answers_the_script_as_zookeeper_does(backends: tuple[Ensemble, Memory]) -> None:
    real, memory = (run(backend, script) for backend in backends)
    assert len(real) > 80
    assert_same(real, memory)


def contend(s: Script) -> None:
    """Two contenders: the first leads, the second waits and is cancelled; the leader's
    node is its fence, gone once it stops leading."""
    a, b = s.session("A"), s.session("B")
    path = s.p("/election")
    first, second = a.election(path, "first"), b.election(path, "second")
    leading, release = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def lead_first() -> None:
        seen["fence"] = first.node
        leading.set()
        release.wait(15)

    def lead_second() -> None:
        seen["second led"] = True

    def contender(election: Election, lead: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=election.run, args=(lead,), daemon=True)
        thread.start()
        return thread

    one = contender(first, lead_first)
    assert leading.wait(15)
    two = contender(second, lead_second)
    wait_until(lambda: len(a.get_children(path)) == 2, 15, what="the second contender")
    fence = seen["fence"]
    s.do("the fence is the leader's node", lambda: a.get(fence))
    s.do("named as kazoo names it", lambda: fence.rsplit("/", 1)[1][-18:-10] == "__lock__")
    second.cancel()
    two.join(15)
    s.do("a cancelled standby never led", lambda: ("second led" in seen, two.is_alive()))
    s.do("and left", lambda: len(a.get_children(path)))
    release.set()
    one.join(15)
    s.do("the leader left: its fence is gone", lambda: a.exists(fence))
    s.do("nobody contends", lambda: a.get_children(path))
    third = b.election(path, "third")
    third.cancel()
    s.do("cancelled before it ran", lambda: third.run(lambda: seen.setdefault("third", 1)))
    s.do("it did not lead", lambda: "third" in seen)


def test_the_fake_election_behaves_as_kazoos(backends: tuple[Ensemble, Memory]) -> None:
    real, memory = (run(backend, contend) for backend in backends)
    assert_same(real, memory)
