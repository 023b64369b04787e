"""Handlers as handles (their declared defaults, submission through either client, spawn)
and the one registry a worker both checks and runs from, in threads and in processes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.apps.own_registry as own_app
import zkq.worker.registry
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ConfigError, InvalidInput
from zkq.coordinator.job import Job, JobSpec, Limits
from zkq.dev.ports import free_port
from zkq.frontend.models import JobSubmission
from zkq.worker.pools import Pool, make_pool
from zkq.worker.process_slots import ProcessPool
from zkq.worker.registry import JobContext, JobDefaults, Registry, set_client
from zkq.worker.service import Worker


class RecordingClient:
    """Stands in for ``zkq.Client`` / ``zkq.HttpClient``: records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def submit(
        self,
        job_type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        max_attempts: int = 1,
        timeout: float = 300.0,
        **options: Any,
    ) -> Job:
        settings = {"priority": priority, "max_attempts": max_attempts, "timeout": timeout}
        self.calls.append((job_type, payload, {**settings, **options}))
        spec = JobSpec(job_type, payload, priority, max_attempts, timeout)
        return spec.to_job(time.time(), Limits())


@pytest.fixture
def handlers() -> Registry:
    return Registry()


@pytest.fixture
def no_default_client() -> Iterator[None]:
    set_client(None)
    try:
        yield
    finally:
        set_client(None)


def ctx(job_type: str = "t", type_defaults: dict[str, JobDefaults] | None = None) -> JobContext:
    return JobContext("01ARZ3NDEKTSV4RRFFQ69G5FAV", job_type, 1, 1, None, [], type_defaults or {})


def test_a_handle_is_still_the_function(handlers: Registry) -> None:
    @handlers.handler("resize", max_attempts=3, timeout=60, priority=5)
    def resize(payload: Any, ctx: JobContext) -> dict[str, Any]:
        """Makes images smaller."""
        return {"width": payload["w"] // 2}

    assert resize({"w": 640}, ctx("resize")) == {"width": 320}
    assert resize.__name__ == "resize" and resize.__doc__ == "Makes images smaller."
    assert handlers.get("resize") is resize
    assert resize.defaults == JobDefaults(priority=5, max_attempts=3, timeout=60)


def test_spec_takes_the_declared_defaults_unless_overridden(handlers: Registry) -> None:
    @handlers.handler("resize", max_attempts=3, timeout=60, priority=5)
    def resize(payload: Any, ctx: JobContext) -> None:
        return None

    assert resize.spec({"w": 1}) == JobSpec("resize", {"w": 1}, 5, 3, 60.0)
    assert resize.spec(2, priority=9, job_id="x") == JobSpec("resize", 2, 9, 3, 60.0, "x")


def test_submit_goes_through_the_given_client_then_the_default_one(
    handlers: Registry, no_default_client: None
) -> None:
    @handlers.handler("resize", max_attempts=3, timeout=60, priority=5)
    def resize(payload: Any, ctx: JobContext) -> None:
        return None

    given = RecordingClient()
    job = resize.submit({"w": 1}, client=given, timeout=5, idempotency_key="k")
    assert (job.type, job.priority, job.max_attempts, job.timeout) == ("resize", 5, 3, 5)
    assert given.calls == [
        (
            "resize",
            {"w": 1},
            {"priority": 5, "max_attempts": 3, "timeout": 5, "idempotency_key": "k"},
        )
    ]
    with pytest.raises(ConfigError, match="set_client"):
        resize.submit(1)
    default = RecordingClient()
    set_client(default)
    resize.submit(2)
    assert default.calls == [("resize", 2, {"priority": 5, "max_attempts": 3, "timeout": 60})]


def test_bad_defaults_fail_where_they_are_declared(handlers: Registry) -> None:
    with pytest.raises(InvalidInput, match="max_attempts"):
        handlers.handler("t", max_attempts=0)
    with pytest.raises(InvalidInput, match="timeout"):
        handlers.handler("t", timeout=-1)


def test_a_type_has_one_handler(handlers: Registry) -> None:
    def first(payload: Any, ctx: JobContext) -> None:
        return None

    handle = handlers.add("t", first)
    assert handlers.add("t", first) is handle  # the same function again: no harm
    with pytest.raises(ValueError, match="already registered"):
        handlers.handler("t")(lambda payload, ctx: None)


def test_a_module_run_again_replaces_its_handlers(handlers: Registry) -> None:
    """A reloaded app (or one a test imports afresh) registers the same definitions again;
    another function for a taken type is still refused."""
    source = "def t(payload, ctx):\n    return {n}\n"
    old_ns: dict[str, Any] = {"__name__": "some_app"}
    exec(source.format(n=1), old_ns)
    new_ns: dict[str, Any] = {"__name__": "some_app"}
    exec(source.format(n=2), new_ns)
    handlers.handler("t", priority=1)(old_ns["t"])
    handlers.handler("t", priority=2)(new_ns["t"])
    assert handlers.get("t")(None, ctx()) == 2 and handlers.get("t").defaults.priority == 2
    other_ns: dict[str, Any] = {"__name__": "other_app"}
    exec(source.format(n=3), other_ns)
    with pytest.raises(ValueError, match="already registered"):
        handlers.handler("t")(other_ns["t"])


def test_spawn_uses_the_defaults_of_the_handle_or_of_the_type(handlers: Registry) -> None:
    @handlers.handler("notify", priority=3, max_attempts=5)
    def notify(payload: Any, ctx: JobContext) -> None:
        return None

    parent = ctx("resize", handlers.defaults())
    parent.spawn(notify, 1)
    parent.spawn("notify", 2)
    parent.spawn("notify", 3, priority=8)
    parent.spawn("elsewhere", 4)  # a type this worker has no handler for: zkq's defaults
    assert parent.children == [
        JobSpec("notify", 1, 3, 5, 300.0),
        JobSpec("notify", 2, 3, 5, 300.0),
        JobSpec("notify", 3, 8, 5, 300.0),
        JobSpec("elsewhere", 4, 0, 1, 300.0),
    ]


def test_zkqs_own_defaults_are_the_same_everywhere() -> None:
    """A handler that declares nothing, a bare JobSpec and the HTTP API agree."""
    spec, body = JobSpec("t"), JobSubmission.model_validate({"type": "t"})
    expected = (spec.priority, spec.max_attempts, spec.timeout)
    assert (body.priority, body.max_attempts, body.timeout) == expected
    assert Registry().handler("t")(lambda p, c: None).spec() == spec
    assert (JobDefaults().priority, JobDefaults().max_attempts, JobDefaults().timeout) == expected


# -- one registry, checked and run ------------------------------------------------------------


def run_own(pool: Pool) -> Any:
    context = ctx("own", pool.registry.defaults())
    outcome = pool.run("own", {"n": 1}, context)
    assert outcome.ok, outcome.error
    assert outcome.result["payload"] == {"n": 1}
    # spawned by name in the handler: the child type's defaults came with the context
    assert outcome.children == [JobSpec("own-child", {"n": 1}, 7, 4, 300.0)]
    return outcome.result


def test_an_app_registry_runs_in_threads() -> None:
    pool = make_pool("thread", own_app.registry, "tests.apps.own_registry", 1)
    assert run_own(pool)["pid"] == os.getpid()


def test_an_app_registry_runs_in_processes() -> None:
    """The child process used to look handlers up in the module-global registry, which
    has never heard of an app's own registry's types."""
    assert "own" not in zkq.worker.registry.registry.types
    pool = make_pool("process", own_app.registry, "tests.apps.own_registry", 1)
    try:
        assert run_own(pool)["pid"] != os.getpid()
    finally:
        pool.shutdown()


def test_a_process_pool_needs_a_registry_it_can_import() -> None:
    local = Registry()
    local.add("own", own_app.own)
    with pytest.raises(ValueError, match="module-level"):
        ProcessPool(local, "tests.apps.own_registry", 1)


def test_a_worker_runs_from_the_registry_it_checks() -> None:
    config = ClusterConfig.load(environ={}, hosts=f"127.0.0.1:{free_port()}")
    with pytest.raises(ValueError, match="no handler registered for: own"):
        Worker(config, Registry(), "tests.apps.own_registry", frozenset({"own"}))
    served = Worker(config, own_app.registry, "tests.apps.own_registry", pool="process")
    try:
        assert served.types == {"own", "own-child"}
        assert served.pool.registry is own_app.registry
    finally:
        served.pool.shutdown()


def test_the_app_option_names_a_module_or_a_registry_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zkq.worker.pools import load_app

    assert load_app("tests.apps.own_registry:registry") is own_app.registry
    assert load_app("tests.apps.own_registry") is zkq.worker.registry.registry
    with pytest.raises(ImportError, match="not a zkq Registry"):
        load_app("tests.apps.own_registry:os")
    # from the app's folder, with nothing on PYTHONPATH, as celery -A and rq worker do
    (tmp_path / "cwdapp_for_load_app.py").write_text("VALUE = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    load_app("cwdapp_for_load_app")
    assert "cwdapp_for_load_app" in sys.modules
