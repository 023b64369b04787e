"""Handlers: the functions that run jobs, registered by type with a decorator that also
declares the job's defaults (as dramatiq's ``@actor`` does).

::

    import zkq

    @zkq.handler("resize", max_attempts=3, timeout=60, priority=5)
    def resize(payload, ctx):
        ...                      # return anything JSON-serialisable: the job's result
        ctx.spawn(notify, {"image": payload["image"]})   # optional child jobs
        return {"width": 640}

    resize.submit({"image": "a.png"}, client=client)          # a Job, with resize's defaults
    resize.submit({"image": "b.png"}, client=client, priority=9)   # a submission overrides
    client.submit_many([resize.spec(p) for p in payloads])    # JobSpecs, for batches
    resize({"image": "a.png"}, ctx)                           # still the plain function

A handler takes the job's payload and a :class:`JobContext`.  Raising fails the attempt
(the traceback is kept in the record); the worker carries on.  Children spawned with
:meth:`JobContext.spawn` are created in the same transaction that records the parent's
success, so they exist exactly when the parent succeeded.

**Which defaults a job gets.**  The job record is fixed when it is submitted: the leader
schedules by its priority and the worker runs it under its timeout and attempt count
before any handler code is looked at.  So a handler's declared defaults apply only where
the submitter holds its :class:`Handler`:

- ``handle.submit(...)``, ``handle.spec(...)``, ``ctx.spawn(handle, ...)``, and
  ``ctx.spawn("type", ...)`` in a worker whose registry has that type: each setting is
  the submission's if given, else the handler's declared one, else zkq's.
- by type name without the handler: over HTTP (``POST /v1/jobs``), ``zkq submit``, and
  ``Client.submit("resize", ...)`` / ``HttpClient.submit(...)``: the submission's
  settings, else zkq's defaults (priority 0, one attempt, 300 s timeout).  The handler's
  declared defaults do not apply: the submitter may never have imported it.

**The client a handle submits through** is the ``client=`` argument, else the one set
once per process with :func:`set_client` (like dramatiq's ``set_broker``): a
``zkq.Client`` (straight to ZooKeeper) or a ``zkq.HttpClient`` (over HTTP) alike.

**One registry per worker.**  ``@zkq.handler`` fills the module-level :data:`registry`,
the one ``zkq worker --app MODULE`` serves.  An app may keep a :class:`Registry` of its
own (``@my_registry.handler(...)``) and serve it with ``Worker(config, my_registry,
app=...)``; either way the worker checks and runs handlers from the one registry it is
given, in threads and in process pools alike (:mod:`zkq.worker.pools`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from zkq.coordinator.backoff import Backoff
from zkq.coordinator.errors import ConfigError
from zkq.coordinator.job import Job, JobSpec, check_retry, due_time, validate_spec
from zkq.coordinator.timestamps import epoch_seconds
from zkq.coordinator.validation import check_json
from zkq.worker.control import AttemptControl

MAX_CHILDREN = 100

R = TypeVar("R")


@dataclass(frozen=True)
class JobDefaults:
    """A handler's declared settings for its jobs.  Unset, zkq's own: the same as a bare
    :class:`JobSpec`'s and the HTTP API's (a unit test holds them together)."""

    priority: int = 0
    max_attempts: int = 1
    timeout: float = 300.0
    #: the retry policy, stored form (:meth:`zkq.Backoff.to_dict`); None: retry at once
    retry: dict[str, Any] | None = None

    def spec(
        self,
        job_type: str,
        payload: Any = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        job_id: str | None = None,
        *,
        run_at: float | datetime | None = None,
        delay: float | None = None,
        retry: Backoff | dict[str, Any] | None = None,
    ) -> JobSpec:
        """A submission of ``job_type``: each setting given here, else these defaults.
        ``run_at`` is epoch seconds or an aware datetime; ``delay`` seconds from now."""
        return JobSpec(
            job_type,
            payload,
            self.priority if priority is None else priority,
            self.max_attempts if max_attempts is None else max_attempts,
            self.timeout if timeout is None else timeout,
            job_id,
            run_at=epoch_seconds(run_at),
            delay=delay,
            retry=self.retry if retry is None else check_retry(retry),
        )


@dataclass
class JobContext:
    """What a handler knows of the job it runs.  Picklable, for process pools."""

    job_id: str
    type: str
    #: this try's count against ``max_attempts`` (1 on the first): "is this my last try".
    #: An operator's requeue of a running job does not spend a try and a revival starts
    #: the count again, so it may repeat; the record's history numbers attempts for good
    attempt: int
    max_attempts: int
    parent: str | None = None
    children: list[JobSpec] = field(default_factory=list)
    #: the declared defaults of every type the worker's registry has, for :meth:`spawn`
    type_defaults: dict[str, JobDefaults] = field(default_factory=dict)
    #: the attempt's lease and stop word, shared with the worker (see
    #: :mod:`zkq.worker.control`); not pickled: a process pool's child gets its own
    control: AttemptControl | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["control"] = None
        return state

    # -- the lease and cancellation ---------------------------------------------------------
    def heartbeat(self) -> None:
        """ "Still working": the attempt's lease runs for the job's timeout from now.
        Raises :class:`zkq.Cancelled` (or :class:`zkq.LeaseLost`) if the attempt is over:
        the job was cancelled, or taken back.  Cheap: call it as often as you like."""
        if self.control is not None:
            self.control.heartbeat(None)

    def extend(self, seconds: float) -> None:
        """The lease runs ``seconds`` from now (never shortening what was granted); raises
        as :meth:`heartbeat` does.  For one long step: ``ctx.extend(1800)`` before it."""
        if self.control is not None:
            self.control.heartbeat(seconds)

    @property
    def cancelled(self) -> bool:
        """The attempt is over (cancelled, or taken back): a handler that polls stops."""
        return self.control is not None and self.control.cancelled

    @property
    def cancel_reason(self) -> str | None:
        """Why: ``cancelled``, ``lease``, ``session``, ``shutdown``; None while it runs."""
        return None if self.control is None else self.control.reason

    def spawn(
        self,
        job_type: str | Handler[Any],
        payload: Any = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        *,
        delay: float | None = None,
        run_at: float | datetime | None = None,
        retry: Backoff | dict[str, Any] | None = None,
    ) -> None:
        """Ask for a child job, created when (and only if) this job succeeds.  Settings not
        given are the child handler's declared defaults, when this worker knows them.
        ``delay``/``run_at``: the child waits ``scheduled`` until then (``delay`` counts
        from the parent's success, when the child is created)."""
        if len(self.children) >= MAX_CHILDREN:
            raise ValueError(f"a job may spawn at most {MAX_CHILDREN} children")
        if isinstance(job_type, Handler):
            defaults, name = job_type.defaults, job_type.type
        else:
            defaults, name = self.type_defaults.get(job_type, JobDefaults()), job_type
        spec = defaults.spec(
            name, payload, priority, max_attempts, timeout, run_at=run_at, delay=delay, retry=retry
        )
        due_time(spec.run_at, spec.delay, time.time())
        # a bad setting or payload fails the handler at the line that asked for it, not the
        # commit that would record this job's success with all its children
        validate_spec(spec.type, spec.priority, spec.max_attempts, spec.timeout)
        check_json(spec.payload, "child payload")
        self.children.append(spec)


class Submitter(Protocol):
    """What a handle submits through: ``zkq.Client`` and ``zkq.HttpClient`` both are."""

    def submit(
        self,
        job_type: str,
        payload: Any = None,
        *,
        priority: int = ...,
        max_attempts: int = ...,
        timeout: float = ...,
        run_at: float | None = ...,
        delay: float | None = ...,
        retry: dict[str, Any] | None = ...,
    ) -> Job: ...


_default_client: Submitter | None = None


def set_client(client: Submitter | None) -> None:
    """The client ``handle.submit`` uses when given none, for this process (None: none).

    Set it once where the application starts, not at import: a module that connects as it
    is imported would connect in every worker process, and before a fork."""
    global _default_client
    _default_client = client


class Handler(Generic[R]):
    """What ``@handler`` returns: still the function (``resize(payload, ctx)``), plus its
    job type and declared defaults, to submit jobs through."""

    # copied from the function by functools.update_wrapper
    __name__: str
    __qualname__: str

    def __init__(
        self,
        job_type: str,
        fn: Callable[[Any, JobContext], R],
        defaults: JobDefaults,
        lane: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.type = job_type
        self.fn = fn
        self.defaults = defaults
        #: "short" (its jobs may use the slots workers reserve), "long", or None: undeclared,
        #: treated as long (see zkq.coordinator.admission)
        self.lane = lane
        #: the most jobs of this type one worker holds at once (None: its slots)
        self.concurrency = concurrency
        functools.update_wrapper(self, fn)

    def __call__(self, payload: Any, ctx: JobContext) -> R:
        return self.fn(payload, ctx)

    def spec(
        self,
        payload: Any = None,
        *,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        job_id: str | None = None,
        run_at: float | datetime | None = None,
        delay: float | None = None,
        retry: Backoff | dict[str, Any] | None = None,
    ) -> JobSpec:
        """A submission of this type: what is given here, else the declared defaults
        (``retry`` too: the handler's policy unless one is given)."""
        return self.defaults.spec(
            self.type,
            payload,
            priority,
            max_attempts,
            timeout,
            job_id,
            run_at=run_at,
            delay=delay,
            retry=retry,
        )

    def submit(
        self,
        payload: Any = None,
        *,
        client: Submitter | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        run_at: float | datetime | None = None,
        delay: float | None = None,
        retry: Backoff | dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Submit a job of this type through ``client`` (else :func:`set_client`'s), with
        the declared defaults where not overridden.  ``options`` go to the client's
        ``submit`` as they are (``job_id=`` for ``Client``, ``idempotency_key=`` for
        ``HttpClient``)."""
        if client is None:
            client = _default_client
        if client is None:
            raise ConfigError(
                f"no client to submit {self.type!r} through: pass client=, "
                "or call zkq.set_client(...) once at start-up"
            )
        spec = self.spec(
            payload,
            priority=priority,
            max_attempts=max_attempts,
            timeout=timeout,
            run_at=run_at,
            delay=delay,
            retry=retry,
        )
        # only what is set, so a client without these keywords still takes the rest
        timing: dict[str, Any] = {"run_at": spec.run_at, "delay": spec.delay, "retry": spec.retry}
        return client.submit(
            spec.type,
            spec.payload,
            priority=spec.priority,
            max_attempts=spec.max_attempts,
            timeout=spec.timeout,
            **{k: v for k, v in timing.items() if v is not None},
            **options,
        )

    def __repr__(self) -> str:
        return f"<zkq handler {self.type!r}: {self.fn.__module__}.{self.fn.__qualname__}>"


def _same_definition(old: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """Both are the one module-level function of one module (lambdas and nested functions
    have no name to tell them apart by)."""
    name = getattr(new, "__qualname__", "<")
    same_module = getattr(old, "__module__", None) == getattr(new, "__module__", "")
    return same_module and "<" not in name and getattr(old, "__qualname__", None) == name


class Registry:
    """Job types and their handlers: what one worker checks it can serve, and runs."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler[Any]] = {}

    def handler(
        self,
        job_type: str,
        *,
        priority: int = JobDefaults.priority,
        max_attempts: int = JobDefaults.max_attempts,
        timeout: float = JobDefaults.timeout,
        retry: Backoff | dict[str, Any] | None = None,
        lane: str | None = None,
        concurrency: int | None = None,
    ) -> Callable[[Callable[[Any, JobContext], R]], Handler[R]]:
        """Register the decorated function for ``job_type``, with its jobs' defaults.

        ``retry``: a :class:`zkq.Backoff`, how long its failed attempts wait.
        ``lane="short"`` says its jobs end quickly, so they may use the slots each worker
        reserves (``zkq worker --reserve``); ``"long"`` or unset, they may not.
        ``concurrency``: the most jobs of this type one worker holds at once."""
        # a bad default fails at import, where it is written, not at the first submission
        validate_spec(job_type, priority, max_attempts, timeout)
        if lane not in (None, "short", "long"):
            raise ValueError(f"lane must be 'short' or 'long', not {lane!r}")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        defaults = JobDefaults(priority, max_attempts, timeout, check_retry(retry))

        def register(fn: Callable[[Any, JobContext], R]) -> Handler[R]:
            return self.add(job_type, fn, defaults, lane=lane, concurrency=concurrency)

        return register

    def add(
        self,
        job_type: str,
        fn: Callable[[Any, JobContext], R],
        defaults: JobDefaults | None = None,
        lane: str | None = None,
        concurrency: int | None = None,
    ) -> Handler[R]:
        existing = self._handlers.get(job_type)
        if existing is not None:
            if existing.fn is fn or existing is fn:
                return existing
            if not _same_definition(existing.fn, fn):
                raise ValueError(f"a handler for {job_type!r} is already registered: {existing!r}")
            # the same module run again (importlib.reload, a test importing an app anew):
            # its new function replaces the old one, as a module's names do
        handle = Handler(job_type, fn, defaults or JobDefaults(), lane, concurrency)
        self._handlers[job_type] = handle
        return handle

    def get(self, job_type: str) -> Handler[Any]:
        return self._handlers[job_type]

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def lanes(self) -> dict[str, str]:
        """Each type's declared lane, where one is declared."""
        return {t: h.lane for t, h in self._handlers.items() if h.lane is not None}

    def type_limits(self) -> dict[str, int]:
        """Each type's declared per-worker concurrency, where one is declared."""
        return {t: h.concurrency for t, h in self._handlers.items() if h.concurrency is not None}

    def defaults(self) -> dict[str, JobDefaults]:
        """Each type's declared defaults (what :meth:`JobContext.spawn` falls back to)."""
        return {job_type: h.defaults for job_type, h in self._handlers.items()}


#: the registry ``@handler`` fills, and the one ``zkq worker --app`` serves
registry = Registry()
handler = registry.handler
