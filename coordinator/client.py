"""Submitting and reading jobs from Python, straight to ZooKeeper.

::

    from zkq.coordinator.client import Client

    with Client.connect("127.0.0.1:2181") as zkq:
        job = zkq.submit("resize", {"image": "a.png"}, priority=10, max_attempts=3)
        done = zkq.wait(job.id, timeout=60)  # raises zkq.WaitTimeout if it has not ended
        print(done.state, done.result)

(Web applications submit over HTTP through the frontends instead; this is what those
frontends, the ``zkq`` command and the tests use.)

Jobs submitted here belong to a tenant, as those submitted over HTTP belong to their API
key's: ``tenant=`` (``Client.connect(..., tenant="shop")``), else ``ZKQ_TENANT`` or
``[client] tenant`` in the config file, else ``default``.  Over HTTP an admin key reads
them, as does any key of that tenant.  Reading here is not confined to a tenant.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from zkq.coordinator import census
from zkq.coordinator.archive import JobArchive
from zkq.coordinator.backoff import Backoff
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import Unavailable, WaitTimeout
from zkq.coordinator.job import Job, JobSpec, check_retry
from zkq.coordinator.lookup import JobLookup, within
from zkq.coordinator.mysql import ConnectionPool
from zkq.coordinator.schedule_book import ScheduleBook
from zkq.coordinator.store import JobStore
from zkq.coordinator.timestamps import epoch_seconds
from zkq.coordinator.zk import ZkSession, connect


class Client:
    """Jobs straight through ZooKeeper, for code inside the cluster (the ``zkq`` command,
    the frontends, tests); from anywhere else, :class:`zkq.HttpClient`.

    ``config`` says which cluster (:meth:`connect` builds it from hosts and a root, else
    from the environment and the config file, as every ``zkq`` command does);
    ``connect_timeout``: how long :meth:`start` and each request wait for ZooKeeper.

    >>> import zkq
    >>> client = zkq.Client.connect("zk1:2181,zk2:2181,zk3:2181")
    >>> job = client.submit("echo", {"hello": "zkq"})
    >>> client.wait(job.id, timeout=30).result
    {'hello': 'zkq'}
    """

    def __init__(
        self,
        config: ClusterConfig,
        connect_timeout: float = 10.0,
        session: ZkSession | None = None,
        tenant: str | None = None,
    ) -> None:
        """``session``: the ZooKeeper session to use, by default one to ``config.zk``;
        :meth:`start` starts it and :meth:`close` stops it.  ``tenant``: whose jobs this
        client submits (by default ``config.tenant``)."""
        self.config = config
        self.tenant = tenant or config.tenant
        self.session = session or connect(config.zk, name="client")
        self.store = JobStore(self.session, config.limits)
        self.connect_timeout = connect_timeout
        #: where pruned jobs are found; connects on first use
        self.archive = JobArchive(ConnectionPool(config.mysql)) if config.mysql else None
        self.lookup = JobLookup(self.store, self.archive, within(connect_timeout))
        #: periodic schedules (:class:`~zkq.coordinator.schedule_book.ScheduleBook`): add,
        #: list, get, pause, resume, remove; those that name no owner touch ``_``
        self.schedules = ScheduleBook(self.session, self.store.layout)

    @classmethod
    def connect(cls, hosts: str | None = None, root: str | None = None, **settings: Any) -> Client:
        """A started client of the cluster at ``hosts`` under ``root`` (each, when not
        given, from ``ZKQ_ZK_HOSTS``/``ZKQ_ROOT`` or the config file); ``settings``: more
        of :meth:`ClusterConfig.load`'s (``mysql_url=`` to read pruned jobs).

        >>> client = zkq.Client.connect("127.0.0.1:2181", root="/zkq")
        """
        client = cls(ClusterConfig.load(hosts=hosts, root=root, **settings))
        client.start()
        return client

    def start(self) -> None:
        """Connect; :class:`zkq.Unavailable` if ZooKeeper does not answer in time.

        >>> client = zkq.Client(ClusterConfig.load(hosts="127.0.0.1:2181"))
        >>> client.start()
        """
        if not self.session.start(wait=self.connect_timeout):
            self.session.stop()
            raise Unavailable(
                f"could not reach ZooKeeper at {self.config.zk.hosts} within "
                f"{self.connect_timeout:g}s: is the ensemble running?"
            )
        self.session.ensure_paths(self.config.zk.layout.shared_parents())

    def close(self) -> None:
        """End the session; ``with zkq.Client.connect(...) as client:`` does it for you.

        >>> client.close()
        """
        self.session.stop()
        if self.archive is not None:
            self.archive.pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.connect_timeout if timeout is None else timeout)

    # -- jobs -----------------------------------------------------------------------------
    def submit(
        self,
        job_type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        max_attempts: int = 1,
        timeout: float = 300.0,
        job_id: str | None = None,
        request_timeout: float | None = None,
        run_at: float | datetime | None = None,
        delay: float | None = None,
        retry: Backoff | dict[str, Any] | None = None,
    ) -> Job:
        """Submit a job of ``job_type``; returns its record, ``pending`` (or ``scheduled``
        when due later).

        ``priority`` 0 (lowest) to 999; ``max_attempts``; ``timeout``: seconds per attempt;
        ``job_id``: one of your own (``zkq.coordinator.ids.new_job_id()``), so that a retry
        after a lost connection finds the job instead of making a second.  ``run_at``
        (epoch seconds or an aware datetime) or ``delay`` (seconds from now): not before
        then; ``retry``: how long a failed attempt waits (a :class:`zkq.Backoff` or its
        dict; without one, at once).

        >>> job = client.submit("resize", {"image": "a.png"}, priority=5, max_attempts=3)
        >>> job.id, job.state
        ('01JC8ZQ4W6T3M5X9B2N7R0K1HD', <JobState.PENDING: 'pending'>)
        >>> later = client.submit("report", delay=600, retry=zkq.Backoff(base=5), max_attempts=4)
        >>> later.state, later.scheduled_for
        (<JobState.SCHEDULED: 'scheduled'>, 'delay')
        """
        spec = JobSpec(
            job_type,
            payload,
            priority,
            max_attempts,
            timeout,
            job_id,
            self.tenant,
            run_at=epoch_seconds(run_at),
            delay=delay,
            retry=check_retry(retry),
        )
        return self.store.submit(spec, self._deadline(request_timeout))

    def submit_many(
        self, specs: Sequence[JobSpec], request_timeout: float | None = None
    ) -> list[Job]:
        """Submit several jobs (``JobSpec``, e.g. ``handle.spec(payload)``) in as few
        ZooKeeper transactions as their size allows; returns their records, in order.
        Specs that name no tenant get this client's.  A spec's ``run_at``/``delay``/
        ``retry`` apply as in :meth:`submit`.

        >>> jobs = client.submit_many([resize.spec({"image": f"{n}.png"}) for n in range(3)])
        >>> len(jobs)
        3
        >>> client.submit_many([resize.spec(p, delay=60 * n) for n, p in enumerate(payloads)])
        """
        own = [
            dataclasses.replace(
                s,
                tenant=s.tenant or self.tenant,
                run_at=epoch_seconds(s.run_at),
                retry=check_retry(s.retry),
            )
            for s in specs
        ]
        return self.store.submit_many(own, self._deadline(request_timeout))

    def get(self, job_id: str) -> Job:
        """The job from ZooKeeper or, once pruned from there, from the MySQL archive;
        :class:`zkq.JobNotFound` if neither has it.

        >>> job = client.get("01JC8ZQ4W6T3M5X9B2N7R0K1HD")
        >>> job.state, job.attempts, job.result
        (<JobState.SUCCEEDED: 'succeeded'>, 1, {'width': 640})
        """
        return self.lookup.get(job_id)

    def wait(self, job_id: str, timeout: float, until: Callable[[Job], bool] | None = None) -> Job:
        """The job once it ends (or ``until(job)`` holds).

        Raises :class:`~zkq.coordinator.errors.WaitTimeout` (a ``TimeoutError``) if that has
        not happened within ``timeout`` seconds, with the record as it was then in its
        ``.job``: returning that record instead would look like the final one to a caller
        that does not check ``.state`` (a pending job is not a finished one).

        >>> done = client.wait(job.id, timeout=60)
        >>> done.state, done.result
        (<JobState.SUCCEEDED: 'succeeded'>, {'width': 640})
        """
        job = self.store.wait(job_id, timeout, until)
        if not (until(job) if until is not None else job.terminal):
            raise WaitTimeout.waited(job, timeout)
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending, assigned or running job; returns its record, ``cancelled``.
        One that has ended raises :class:`zkq.InvalidTransition` (a :class:`zkq.Conflict`).

        >>> client.cancel(job.id).state
        <JobState.CANCELLED: 'cancelled'>
        """
        return self.store.cancel(job_id, self._deadline(None))

    # -- workers --------------------------------------------------------------------------
    def workers(self) -> list[dict[str, Any]]:
        """Each live worker's registration, with the jobs in its inbox (three pipelined
        rounds, whatever the number of workers: :func:`census.workers`).

        >>> [(w["id"], len(w["inbox"]), w["types"]) for w in client.workers()]
        [('host-4242-a1b2c3', 1, ['echo', 'resize'])]
        """
        out: list[dict[str, Any]] = []
        for live in census.workers(self.session, self._deadline(None)):
            entry = live.registration.to_dict()
            entry["inbox"] = live.inbox
            entry["session"] = live.session
            out.append(entry)
        return out
