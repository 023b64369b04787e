"""The ZooKeeper boundary: kazoo stays inside ``coordinator/zk/kazoo_session.py``, its
exceptions and events come out as zkq's, and the session's retry policy holds."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Timeout, Unavailable
from zkq.coordinator.zk import (
    BadVersion,
    ConnectionLost,
    ConnectionState,
    EventType,
    NodeExists,
    NoNode,
    NotEmpty,
    NotPermitted,
    RequestTimedOut,
    WatchEvent,
    ZkSession,
    zk_errors,
)
from zkq.coordinator.zk.kazoo_translate import Watcher as _Watcher
from zkq.coordinator.zk.kazoo_translate import translate
from zkq.coordinator.zk.memory import MemoryZooKeeper

ROOT = Path(__file__).resolve().parents[2]
#: the session over kazoo, and its translation of kazoo's vocabulary
BOUNDARY = [
    ROOT / "coordinator" / "zk" / name for name in ("kazoo_session.py", "kazoo_translate.py")
]


def product_modules() -> list[Path]:
    found = []
    # benchmarks/ is no part of the product (it measures kazoo itself)
    for package in ("coordinator", "worker", "frontend", "zkq"):
        found.extend(
            path
            for path in (ROOT / package).rglob("*.py")
            if path.relative_to(ROOT).parts[:2] not in PARTS_LINKED_INTO_ZKQ
        )
    return found


#: zkq/coordinator, zkq/worker and zkq/frontend are links to the top-level folders
PARTS_LINKED_INTO_ZKQ = {("zkq", "coordinator"), ("zkq", "worker"), ("zkq", "frontend")}


def imports_kazoo(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "kazoo" for name in names):
            return True
    return False


def test_only_the_boundary_imports_kazoo() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in product_modules() if imports_kazoo(p)]
    assert sorted(offenders) == sorted(str(p.relative_to(ROOT)) for p in BOUNDARY)


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (NoNodeError(), NoNode),
        (NodeExistsError(), NodeExists),
        (BadVersionError(), BadVersion),
        (NotEmptyError(), NotEmpty),
        (ConnectionLoss(), ConnectionLost),
        (SessionExpiredError(), ConnectionLost),
        (OperationTimeoutError(), RequestTimedOut),
        (KazooTimeoutError(), RequestTimedOut),
        (NoAuthError(), NotPermitted),  # not transient: retrying cannot help
        (InvalidACLError(), Unavailable),
    ],
)
def test_kazoo_exceptions_become_zkqs(theirs: Exception, ours: type[Exception]) -> None:
    translated = translate(theirs, "/a/b")
    assert type(translated) is ours
    if isinstance(translated, NoNode):
        assert translated.path == "/a/b"


def test_a_timeout_is_transient_and_a_timeout() -> None:
    timed_out = translate(OperationTimeoutError())
    assert isinstance(timed_out, ConnectionLost) and isinstance(timed_out, Timeout)
    assert timed_out.code == "timeout"  # type: ignore[attr-defined]
    assert translate(ConnectionLoss()).code == "unavailable"  # type: ignore[attr-defined]


def test_watches_see_zkq_events_and_kazoo_keeps_one_per_callback() -> None:
    seen: list[WatchEvent] = []
    watchers = {_Watcher(seen.append), _Watcher(seen.append)}
    assert len(watchers) == 1  # re-reading a path between two events adds no watcher
    watchers.pop()(WatchedEvent("CHILD", "CONNECTED", "/zkq/inbox/w1"))
    _Watcher(seen.append)(WatchedEvent("NONE", "CONNECTED", None))
    assert seen == [
        WatchEvent(EventType.CHILD, "/zkq/inbox/w1"),
        WatchEvent(EventType.NONE, None),
    ]


def test_an_outcome_nobody_inspected_becomes_a_zkq_error() -> None:
    with pytest.raises(Unavailable, match="NoNode"), zk_errors():
        raise NoNode("/x")


def session_without_zookeeper() -> ZkSession:
    """The interface's policy alone: every primitive a stub."""

    def stub(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("no primitive is called here")

    cls = type("Stub", (ZkSession,), dict.fromkeys(ZkSession.__abstractmethods__, stub))
    return cls(ZkSettings())  # type: ignore[no-any-return]


def test_retry_goes_again_after_a_lost_connection_until_it_answers() -> None:
    session = session_without_zookeeper()
    session._on_state(ConnectionState.CONNECTED)
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionLost("ZooKeeper is unreachable (ConnectionLoss); retry later")
        return "done"

    assert session.retry(attempt, time.monotonic() + 5) == "done"
    assert len(calls) == 3
    with pytest.raises(NoNode):  # an outcome is an answer: never retried
        session.retry(lambda: (_ for _ in ()).throw(NoNode("/x")), time.monotonic() + 5)


def test_retry_with_a_deadline_starts_nothing_while_disconnected() -> None:
    session = session_without_zookeeper()
    began = time.monotonic()
    with pytest.raises(Unavailable, match="unreachable"):
        session.retry(lambda: pytest.fail("attempted while disconnected"), began + 0.2)
    assert time.monotonic() - began < 2


def test_connection_states_move_the_flags_listeners_see() -> None:
    session = session_without_zookeeper()
    heard: list[str] = []
    session.on_state_change(heard.append)
    session._on_state(ConnectionState.CONNECTED)
    session._on_state(ConnectionState.SUSPENDED)
    assert not session.connected.is_set() and session.generation == 0
    session._on_state(ConnectionState.LOST)
    session._on_state(ConnectionState.CONNECTED)
    assert session.connected.is_set() and session.generation == 1 and session.connections == 2
    assert heard == ["CONNECTED", "SUSPENDED", "LOST", "CONNECTED"]


def test_a_stop_deadline_ends_a_retry_that_waits_for_the_connection() -> None:
    """Without a deadline of its own, a retry waits for the connection forever; once the
    process stops, no longer than the stop deadline, even if it began waiting before."""
    zk = MemoryZooKeeper()
    session = zk.session()
    session.start()
    session.ensure_path("/a")
    zk.disconnect(session)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            session.retry(lambda: session.get("/a"))
        except BaseException as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=read, daemon=True)
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()  # waiting for the connection, as it should
    session.begin_stop(0.2)
    waiting.join(10)  # without the stop deadline it waits for ever
    assert not waiting.is_alive()
    assert outcome and isinstance(outcome[0], Unavailable | ConnectionLost)
    session.stop()
