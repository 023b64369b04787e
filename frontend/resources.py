"""What one frontend process holds for all its requests: the ZooKeeper gate and the MySQL
pool with the stores built on it (keys, rate limiter, request log, archive, idempotency),
and the lookup of jobs across the two.

Built by the app factory but *connected* per process (:meth:`Resources.start`), after
gunicorn forks and gevent patches: a pid check rebuilds everything in a process that
inherited a copy.  Per-request state lives on :data:`flask.g` instead (the key, the start
time, the job id for the log).
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
from typing import Any

from flask import Flask, current_app

from zkq.coordinator.archive import JobArchive
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import DatabaseUnavailable
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.lookup import JobLookup
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.frontend.cursors import ClusterSecrets
from zkq.frontend.idempotency import IdempotencyKeys
from zkq.frontend.jobtypes import TenantJobTypes
from zkq.frontend.keys import KeyStore
from zkq.frontend.ratelimit import FailureLimiter, RateLimiter
from zkq.frontend.requestlog import RequestLog
from zkq.frontend.zk import ZkGate

log = logging.getLogger(__name__)

EXTENSION = "zkq.resources"


class _MySQL:
    """The MySQL-backed stores of one process."""

    def __init__(
        self, settings: MySQLSettings, default_rate_limit: int, max_types_per_tenant: int
    ) -> None:
        # as many connections as requests that may use one at once, within reason: the
        # request log's flusher takes one, each request at most one at a time
        self.pool = ConnectionPool(settings, max_size=16, acquire_timeout=2.0)
        self.keys = KeyStore(self.pool)
        self.limiter = RateLimiter(self.pool, default_limit=default_rate_limit)
        self.request_log = RequestLog(self.pool)
        self.archive = JobArchive(self.pool)
        self.idempotency = IdempotencyKeys(self.pool)
        self.secrets = ClusterSecrets(self.pool)
        self.job_types = TenantJobTypes(self.pool, max_types_per_tenant)

    def ping(self) -> bool:
        try:
            with self.pool.connection() as conn:
                conn.ping(reconnect=False)
            return True
        except DatabaseUnavailable:
            return False

    def close(self) -> None:
        self.request_log.close(timeout=2.0)
        self.pool.close()


class _Archive:
    """The archive of this process's MySQL, reached only when a read needs it: a frontend
    without MySQL (``ZKQ_AUTH=off``) still reads live jobs, and answers 503 for the rest."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def get(self, job_id: str) -> Job | None:
        return self.resources.mysql.archive.get(job_id)

    def list(
        self,
        tenant: str | None = None,
        state: JobState | str | None = None,
        type: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
        newest: bool = False,
        window: tuple[str | None, str | None] = (None, None),
    ) -> builtins.list[Job]:
        return self.resources.mysql.archive.list(
            tenant, state, type, after_id, limit, newest, window
        )


class Resources:
    def __init__(self, config: dict[str, Any], cluster: ClusterConfig) -> None:
        url = config.get("MYSQL_URL")
        self.mysql_settings = MySQLSettings.from_url(str(url)) if url else None
        self.default_rate_limit = int(config["DEFAULT_RATE_LIMIT"])
        self.max_types_per_tenant = int(config["MAX_TYPES_PER_TENANT"])
        #: in memory, so each process (forked after this) counts its own
        self.auth_failures = FailureLimiter(float(config["AUTH_FAILURES_PER_MINUTE"]))
        self.zk = ZkGate(
            cluster,
            float(config["ZK_TIMEOUT"]),
            float(config["ZK_DISCONNECTED_WAIT"]),
            float(config["ZK_READY_GRACE"]),
        )
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._mysql: _MySQL | None = None

    def start(self) -> None:
        """Connect this process (idempotent; a forked copy starts its own)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            if self.mysql_settings is not None:
                self._mysql = _MySQL(
                    self.mysql_settings, self.default_rate_limit, self.max_types_per_tenant
                )
            else:
                log.warning("ZKQ_MYSQL_URL is not set: every authenticated request gets 503")
        self.zk.start()

    def stop(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            if self._mysql is not None:
                self._mysql.close()
            self._mysql = None
            self._pid = None
        self.zk.stop()

    @property
    def mysql(self) -> _MySQL:
        """This process's MySQL stores; 503 when MySQL is not configured."""
        self.start()
        if self._mysql is None:
            raise DatabaseUnavailable(
                "this frontend has no MySQL (ZKQ_MYSQL_URL is unset), so it cannot check "
                "API keys: configure it"
            )
        return self._mysql

    @property
    def jobs(self) -> JobLookup:
        """Jobs in ZooKeeper or the archive, each ZooKeeper read bounded by :meth:`ZkGate.call`."""
        return JobLookup(self.zk.store, _Archive(self), self.zk.call)

    def mysql_ready(self) -> bool:
        self.start()
        return self._mysql is not None and self._mysql.ping()

    def zk_ready(self) -> bool:
        return self.zk.ready()


def of(app: Flask) -> Resources:
    resources: Resources = app.extensions[EXTENSION]
    return resources


def current() -> Resources:
    """The resources of the app serving this request."""
    return of(current_app)
