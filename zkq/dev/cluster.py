"""``DevCluster``: the whole local cluster that ``zkq dev up|down|status`` drives and the
tests start.

It is a ZooKeeper ensemble plus *members* (:mod:`zkq.dev.members`): every other process,
started role by role and stopped in reverse, so services go before what they depend on
(workers stop while ZooKeeper can still record their completions).

Everything lives in one state directory (:mod:`.statedir`), whose ``state.json`` is
rewritten after every change, so ``down`` from another shell stops exactly the processes
that run, and never a recycled pid (see :mod:`.processes`).  How coordinators and workers
start is :mod:`.services`; the HTTP side is :mod:`.frontends`, MariaDB :mod:`.mariadb`, and
whether all is well :mod:`.health`; each role's ZooKeeper credential (and config file)
:mod:`.credentials`; the ports an ``up`` takes again from the previous run :mod:`.portbook`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zkq.dev import credentials, health, mariadb, processes, statedir
from zkq.dev import frontends as http_side
from zkq.dev.errors import AlreadyRunning, BadState, DevClusterError
from zkq.dev.mariadb import MARIADB, MariaDBServer
from zkq.dev.members import Member, stop_in_order
from zkq.dev.portbook import PortBook, in_use
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.services import ServiceSettings, session_timeout
from zkq.dev.zookeeper import ZooKeeperEnsemble

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class DevCluster(credentials.RoleCredentials):
    """A local zkq cluster rooted in ``state_dir``.

    ``up()`` starts one (or refuses if one from this directory runs), ``down()`` stops it,
    ``status()`` reports on it; a fresh ``DevCluster(same_dir)`` in another process can do
    the latter two from the state file.  Tests change a running cluster with
    ``add_worker``, ``add_coordinator``, ``stop_member``, ``kill_member`` and the
    ``*_zk_node`` methods, which all keep the state file current (after driving
    :attr:`ensemble` directly, call :meth:`save`).
    """

    def __init__(self, state_dir: Path = Path(".zkq-dev")) -> None:
        # Absolute: the processes we start and a later `zkq dev down` may run elsewhere.
        self.state_dir = Path(state_dir).resolve()
        self.state_file = self.state_dir / statedir.STATE_FILE
        self.ensemble: ZooKeeperEnsemble | None = None
        self.members: list[Member] = []
        self.mariadb: MariaDBServer | None = None
        self.settings = ServiceSettings()
        self.created_at: float | None = None
        self._counters: dict[str, int] = {}  # names are never reused within one cluster
        self.port_book = PortBook(self.state_dir)  # recalled by up()

    # -- state ----------------------------------------------------------------------------

    def load(self) -> bool:
        """Read ``state.json``; False when there is none (no cluster from this directory)."""
        data = statedir.read_state(self.state_file)
        if data is None:
            return False
        zk = data.get("zookeeper")
        self.ensemble = None if zk is None else ZooKeeperEnsemble.from_dict(zk)
        self.members = [Member.from_dict(m) for m in data.get("members", [])]
        server = data.get("mariadb")
        self.mariadb = None if server is None else MariaDBServer.from_dict(server)
        self.settings = ServiceSettings(**data.get("settings", {}))
        self.created_at = data.get("created_at")
        self._counters = {str(k): int(v) for k, v in data.get("counters", {}).items()}
        return True

    def save(self) -> None:
        data = {
            "created_at": self.created_at,
            "settings": dataclasses.asdict(self.settings),
            "counters": self._counters,
            "connect": self.connect_string if self.ensemble else None,
            "zookeeper": self.ensemble.to_dict() if self.ensemble else None,
            "members": [m.to_dict() for m in self.members],
            "mysql_url": self.mariadb.url if self.mariadb else None,
            "mariadb": self.mariadb.to_dict() if self.mariadb else None,
            **http_side.urls(self),  # haproxy_url, stats_url, frontends
        }
        statedir.write_state(self.state_file, data)
        if self.ensemble is not None:  # what commands run from here find (.discovery)
            self.write_role_configs(data["mysql_url"], data["stats_url"])
            self.port_book.remember(in_use(self.ensemble, self.members))

    def _all_processes(self) -> list[ManagedProcess]:
        procs = [m.process for m in self.members]
        if self.ensemble is not None:
            procs += [n.process for n in self.ensemble.nodes if n.process is not None]
        return procs

    # -- addresses ------------------------------------------------------------------------

    @property
    def connect_string(self) -> str:
        return self._ensemble().connect_string

    @property
    def root(self) -> str:
        return self.settings.root

    def members_of(self, role: str) -> list[Member]:
        return [m for m in self.members if m.role == role]

    @property
    def workers(self) -> list[Member]:
        return self.members_of("worker")

    @property
    def coordinators(self) -> list[Member]:
        return self.members_of("coordinator")

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise BadState(f"no member {name!r} in the cluster at {self.state_dir}")

    # -- up / down ------------------------------------------------------------------------

    def up(
        self,
        workers: int = 2,
        coordinators: int = 2,
        worker_app: str = "zkq.worker.builtin",
        worker_concurrency: int = 4,
        *,
        tick_ms: int = 2000,
        session_timeout_ms: int | None = None,
        zk_size: int = 3,
        root: str = "/zkq",
        coordinator_args: Sequence[str] = (),
        worker_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        timeout: float = 60.0,
        progress: Progress = _quiet,
        mysql: bool = False,
        frontends: int = 0,
        haproxy: http_side.HaproxyOptions | None = None,
        acl: bool = True,
    ) -> dict[str, Any]:
        """Start the ensemble, then coordinators, then workers; return :meth:`status`.

        ``frontends``: that many gunicorn frontends and an HAProxy (options ``haproxy``)
        start last, needing ``mysql`` for API keys (:attr:`haproxy_url`; ``https_url`` and
        ``ca_file`` in :meth:`status`).  ``mysql``: a MariaDB server starts, migrated,
        before the coordinators, which then archive and prune (:attr:`mysql_url`).
        ``session_timeout_ms`` is what every service asks of ZooKeeper; the ensemble's
        bounds are widened to grant it.  ``wait_ready``: until every worker and coordinator
        is registered.  ``acl`` (default): a credential per role (:mod:`.credentials`).
        If anything fails, whatever started is stopped again before the error propagates.
        """
        with statedir.changing(self.state_dir):
            if self.load():
                running = [p for p in self._all_processes() if p.alive()]
                if running:
                    pids = ", ".join(f"{p.name}={p.pid}" for p in running)
                    raise AlreadyRunning(
                        f"a dev cluster from {self.state_dir} is already running ({pids}): "
                        "use `zkq dev status`, or `zkq dev down` first"
                    )
                progress("sweeping leftovers of a dead cluster")
                self._down()
            statedir.start_afresh(self.state_dir)
            self.port_book = PortBook.recall(self.state_dir)
            self.created_at = time.time()
            timeout_env, min_session, max_session = session_timeout(tick_ms, session_timeout_ms)
            acl_env = credentials.generate(self.state_dir) if acl else {}
            self.settings = ServiceSettings(
                root,
                worker_app,
                worker_concurrency,
                list(coordinator_args),
                list(worker_args),
                {**(env or {}), **timeout_env, **acl_env},
            )
            self.ensemble = ZooKeeperEnsemble(
                self.state_dir / statedir.ZOOKEEPER_DIR,
                size=zk_size,
                tick_ms=tick_ms,
                min_session_ms=min_session,
                max_session_ms=max_session,
                ports=self.port_book.claim("zookeeper", 3 * zk_size),
            )
            args = (workers, coordinators, wait_ready, timeout, progress, mysql, frontends)
            try:
                self._up(*args, haproxy)
            except BaseException:
                # Leave nothing behind, also on Ctrl-C.
                progress("start-up failed: stopping what was started")
                self._down()
                raise
        return self.status()

    def _up(
        self,
        workers: int,
        coordinators: int,
        wait_ready: bool,
        timeout: float,
        progress: Progress,
        mysql: bool = False,
        frontends: int = 0,
        haproxy: http_side.HaproxyOptions | None = None,
    ) -> None:
        assert self.ensemble is not None
        if frontends and not mysql:
            raise DevClusterError(
                "frontends check API keys in MySQL: start MariaDB too (--mysql), "
                "or ask for no frontends"
            )
        started = time.monotonic()
        progress(f"starting ZooKeeper ({self.ensemble.size} nodes) in {self.ensemble.base_dir}")
        try:
            self.ensemble.start(timeout=timeout)
        finally:
            self.save()  # the pids, even if the quorum never formed, so down can stop them
        leader = self.ensemble.leader_index()
        progress(
            f"ZooKeeper ready in {time.monotonic() - started:.1f}s at "
            f"{self.ensemble.connect_string} (leader: "
            f"{'?' if leader is None else self.ensemble.nodes[leader].name})"
        )
        if mysql:
            progress("starting MariaDB and migrating its schema")
            server = self._start_mariadb(timeout)
            progress(f"MariaDB ready at {server.settings.where}")
        for _ in range(coordinators):
            self.add_coordinator()
        for _ in range(workers):
            self.add_worker()
        if wait_ready and (workers or coordinators):
            progress(f"waiting for {coordinators} coordinator(s), {workers} worker(s) to register")
            self.wait_registered(workers, coordinators, timeout)
        if frontends:
            progress(f"starting {frontends} frontend(s) and HAProxy")
            http_side.start_http_side(self, frontends, wait_ready, timeout, haproxy)
            progress(f"HAProxy serving at {self.haproxy_url} (stats: {self.stats_url})")
        progress(f"cluster up in {time.monotonic() - started:.1f}s")

    def down(self, timeout: float = 10.0) -> dict[str, Any]:
        """Stop every process of the cluster (from the state file) and remove the file.

        Returns ``{"stopped": [names], "already_dead": [names]}``.  Members whose process
        had died are still swept for leftover children.
        """
        with statedir.changing(self.state_dir):
            if self.ensemble is None and not self.members:
                self.load()
            return self._down(timeout)

    def _down(self, timeout: float = 10.0) -> dict[str, Any]:
        procs = self._all_processes()
        stopped = [p.name for p in procs if p.alive()]
        dead = [p.name for p in procs if p.name not in stopped]
        stop_in_order(self.members, timeout)  # services before what they depend on
        if self.ensemble is not None:
            self.ensemble.stop(timeout)
        if self.mariadb is not None:
            self.mariadb.remove_socket()
        self.state_file.unlink(missing_ok=True)
        self.ensemble, self.mariadb = None, None
        self.members, self._counters = [], {}
        return {"stopped": stopped, "already_dead": dead}

    # -- members at runtime ---------------------------------------------------------------

    def add_member(
        self,
        role: str,
        argv: list[str],
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        ports: dict[str, int] | None = None,
    ) -> Member:
        """Start any process as a member, with the services' environment under ``env``
        (how the frontends and MariaDB join; tests use it too)."""
        if name is None:
            self._counters[role] = self._counters.get(role, 0) + 1
            name = f"{role}-{self._counters[role]}"
        if any(m.name == name for m in self.members):
            raise DevClusterError(f"a member named {name!r} already exists")
        log = self.state_dir / statedir.LOGS_DIR / f"{name}.log"
        env = {**self.settings.env, **self.member_env(role), **(env or {})}
        spec = ProcessSpec(name, argv, log, env=env)
        member = Member(name, role, processes.start(spec), dict(ports or {}))
        self.members.append(member)
        self.save()
        return member

    def add_worker(
        self,
        app: str | None = None,
        concurrency: int | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        """Start one more worker (defaults from ``up``); its process, e.g. to kill -9 it."""
        argv = self.settings.worker_argv(self.connect_string, app, concurrency, extra_args)
        return self.add_member("worker", argv, name=name, env=env).process

    def add_coordinator(
        self,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        argv = self.settings.coordinator_argv(self.connect_string, extra_args)
        return self.add_member("coordinator", argv, name=name, env=env).process

    def stop_member(self, name: str, timeout: float = 10.0, *, forget: bool = True) -> None:
        """SIGTERM (graceful) and wait; then forget the member, or keep it listed, as down,
        to be started again (``forget=False``)."""
        member = self.member(name)
        member.process.stop(timeout)
        if forget:
            self.members.remove(member)
        self.save()

    def kill_member(self, name: str, *, group: bool = False) -> None:
        """SIGKILL the process alone, like ``kill -9`` (with ``group``, its children too);
        the member stays listed, as dead, and orphaned children are swept by ``down``."""
        process = self.member(name).process
        process.kill(group=group)
        process.wait(10.0)

    def stop_zk_node(self, i: int, timeout: float = 10.0) -> None:
        self._ensemble().stop_node(i, timeout)
        self.save()

    def kill_zk_node(self, i: int) -> None:
        self._ensemble().kill_node(i)
        self.save()

    def start_zk_node(self, i: int, wait: bool = True, timeout: float = 60.0) -> None:
        try:
            self._ensemble().start_node(i, wait=wait, timeout=timeout)
        finally:
            self.save()  # the new pid, also if the node never rejoined

    # -- MariaDB (zkq.dev.mariadb) --------------------------------------------------------

    def _start_mariadb(self, timeout: float) -> MariaDBServer:
        port = self.port_book.claim(MARIADB, 1)[0]
        server = MariaDBServer.create(self.state_dir / statedir.MARIADB_DIR, port)
        server.install()
        self.mariadb = server  # in the state file before the process exists
        mariadb.start_member(self, server, timeout)
        # an environment variable rather than --mysql, so the password stays out of `ps`
        self.settings.env["ZKQ_MYSQL_URL"] = server.url
        self.save()
        return server

    @property
    def mysql_url(self) -> str:
        """The ``zkq`` database (``mysql://zkq:<password>@127.0.0.1:<port>/zkq``)."""
        return self._mariadb().url

    def stop_mysql(self, timeout: float = 10.0) -> None:
        """SIGTERM MariaDB (by pid) and wait; it stays listed, as down, for start_mysql."""
        self.stop_member(MARIADB, timeout, forget=False)

    def start_mysql(self, timeout: float = 60.0) -> None:
        """Start the stopped MariaDB again on its port and data, and wait until it serves."""
        server, member = self._mariadb(), self.member(MARIADB)
        try:
            mariadb.restart_member(server, member)
        finally:
            self.save()  # the new pid, also if it never serves
        server.wait_ready(member.process, timeout)

    def _mariadb(self) -> MariaDBServer:
        if self.mariadb is None:
            raise DevClusterError("this cluster has no MariaDB: start it with `zkq dev up --mysql`")
        return self.mariadb

    # -- the HTTP side: frontends and HAProxy (zkq.dev.frontends) -------------------------

    @property
    def frontends(self) -> list[Member]:
        return self.members_of(http_side.FRONTEND)

    @property
    def haproxy_url(self) -> str:
        """Where clients send requests: ``http://127.0.0.1:<port>``."""
        return http_side.require_url(self, "haproxy_url")

    @property
    def stats_url(self) -> str:
        """HAProxy's stats page (append ``;csv`` for CSV)."""
        return http_side.require_url(self, "stats_url")

    def stop_frontend(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM one frontend (graceful); it stays listed, as down, for start_frontend."""
        self.stop_member(name, timeout, forget=False)

    def kill_frontend(self, name: str) -> None:
        """SIGKILL one frontend's whole process group (gunicorn master and workers)."""
        self.kill_member(name, group=True)

    def start_frontend(
        self,
        name: str,
        zk_hosts: str | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> Member:
        """Start a stopped or killed frontend again, on its port (HAProxy finds it there).
        ``zk_hosts`` points it elsewhere (e.g. at a port where nothing listens)."""
        member = http_side.restart_frontend(self, name, zk_hosts)
        if wait:
            http_side.wait_ready([member], timeout)
        return member

    def _ensemble(self) -> ZooKeeperEnsemble:
        if self.ensemble is None:
            raise DevClusterError("no ZooKeeper ensemble: run `zkq dev up` first")
        return self.ensemble

    # -- readiness and status (zkq.dev.health) --------------------------------------------

    def wait_registered(self, workers: int, coordinators: int, timeout: float = 60.0) -> None:
        """Wait until ZooKeeper lists that many workers and election contenders."""
        health.wait_registered(self, workers, coordinators, timeout)

    def status(self) -> dict[str, Any]:
        """Every process and ZooKeeper node, and whether all is well (``ok``)."""
        if self.ensemble is None and not self.members and not self.load():
            return health.not_running(self.state_dir)
        return {
            **health.report(self, self.ensemble),
            "mysql": self.mariadb.settings.where if self.mariadb else None,
            "created_at": self.created_at,
            **http_side.urls(self),
        }
