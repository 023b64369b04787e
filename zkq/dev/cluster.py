"""``DevCluster``: the whole local cluster that ``zkq dev up|down|status`` drives and the
tests start.

It is a ZooKeeper ensemble plus *members* (:mod:`zkq.dev.members`): every other process,
started role by role and stopped in reverse, so services go before what they depend on
(workers stop while ZooKeeper can still record their completions).

Everything lives in one state directory (``.zkq-dev`` by default)::

    state.json        what runs: pids and start times, argv, logs, ports, settings
    lock              flock'd while a command changes the cluster
    zookeeper/zk<N>/  one directory per ZooKeeper node
    mariadb/          MariaDB's data directory (with ``up(mysql=True)``)
    logs/<name>.log   output of every member

``state.json`` is rewritten (atomically) after every change, so ``down`` from another shell
stops exactly the processes that run, and never a recycled pid (see :mod:`.processes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkq.dev import frontends as http_side
from zkq.dev import processes
from zkq.dev.errors import AlreadyRunning, BadState, DevClusterError, StartupFailed
from zkq.dev.mariadb import MARIADB, MariaDBServer, restart_mariadb, start_mariadb
from zkq.dev.members import ROLE_ORDER, Member
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.registrations import count_registrations
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

STATE_VERSION = 1
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Settings:
    """How ``up`` was asked to run the services; ``add_worker`` reuses it later."""

    root: str = "/zkq"
    worker_app: str = "zkq.worker.builtin"
    worker_concurrency: int = 4
    coordinator_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class DevCluster:
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
        self.state_file = self.state_dir / "state.json"
        self.ensemble: ZooKeeperEnsemble | None = None
        self.members: list[Member] = []
        self.mariadb: MariaDBServer | None = None
        self.settings = Settings()
        self.created_at: float | None = None
        self._counters: dict[str, int] = {}  # names are never reused within one cluster

    # -- state ----------------------------------------------------------------------------

    def load(self) -> bool:
        """Read ``state.json``; False when there is none (no cluster from this directory)."""
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            raise BadState(f"cannot read {self.state_file}: {exc}; remove it by hand") from exc
        if data.get("version") != STATE_VERSION:
            raise BadState(
                f"{self.state_file} has version {data.get('version')!r}, "
                f"expected {STATE_VERSION}: remove it by hand"
            )
        zk = data.get("zookeeper")
        self.ensemble = None if zk is None else ZooKeeperEnsemble.from_dict(zk)
        self.members = [Member.from_dict(m) for m in data.get("members", [])]
        mariadb = data.get("mariadb")
        self.mariadb = None if mariadb is None else MariaDBServer.from_dict(mariadb)
        self.settings = Settings(**data.get("settings", {}))
        self.created_at = data.get("created_at")
        self._counters = {str(k): int(v) for k, v in data.get("counters", {}).items()}
        return True

    def save(self) -> None:
        data = {
            "version": STATE_VERSION,
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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader (or a crash) never sees half a file.
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise commands that change the cluster (two `up`s at once would both start)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise DevClusterError(
                    f"another zkq dev command is changing {self.state_dir}: wait for it"
                ) from exc
            yield

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
    ) -> dict[str, Any]:
        """Start the ensemble, then coordinators, then workers; return :meth:`status`.

        With ``frontends``, that many gunicorn frontends and an HAProxy in front of them
        start last (they need ``mysql`` for API keys); see :attr:`haproxy_url`.

        With ``mysql``, a MariaDB server starts (and its schema is migrated) before the
        coordinators, which then archive and prune finished jobs; see :attr:`mysql_url`.

        ``session_timeout_ms`` is what every service asks of ZooKeeper (``ZKQ_SESSION_
        TIMEOUT``); the ensemble's min/max bounds are widened so that it is granted.  With
        ``wait_ready``, waits until every worker and coordinator is registered in ZooKeeper.
        If anything fails, whatever started is stopped again before the error propagates.
        """
        with self._locked():
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
            self._reset_dirs()
            self.created_at = time.time()
            service_env = dict(env or {})
            min_session = max_session = None
            if session_timeout_ms is not None:
                service_env["ZKQ_SESSION_TIMEOUT"] = f"{session_timeout_ms / 1000:g}"
                # ZooKeeper clamps a requested timeout into [min, max] (defaults: 2 and 20
                # ticks), so a fast-expiring test session needs the lower bound lowered.
                min_session = min(2 * tick_ms, session_timeout_ms)
                max_session = max(20 * tick_ms, session_timeout_ms)
            self.settings = Settings(
                root,
                worker_app,
                worker_concurrency,
                list(coordinator_args),
                list(worker_args),
                service_env,
            )
            self.ensemble = ZooKeeperEnsemble(
                self.state_dir / "zookeeper",
                size=zk_size,
                tick_ms=tick_ms,
                min_session_ms=min_session,
                max_session_ms=max_session,
            )
            try:
                self._up(workers, coordinators, wait_ready, timeout, progress, mysql, frontends)
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
            server = start_mariadb(self, timeout)
            progress(f"MariaDB ready at {server.settings.where}")
        for _ in range(coordinators):
            self._add("coordinator", self._coordinator_argv(()), None)
        for _ in range(workers):
            self._add("worker", self._worker_argv(None, None, ()), None)
        if wait_ready and (workers or coordinators):
            progress(
                f"waiting for {coordinators} coordinator(s) and {workers} worker(s) to register"
            )
            self.wait_registered(workers, coordinators, timeout)
        if frontends:
            progress(f"starting {frontends} frontend(s) and HAProxy")
            http_side.start_http_side(self, frontends, wait_ready, timeout)
            progress(f"HAProxy serving at {self.haproxy_url} (stats: {self.stats_url})")
        progress(f"cluster up in {time.monotonic() - started:.1f}s")

    def down(self, timeout: float = 10.0) -> dict[str, Any]:
        """Stop every process of the cluster (from the state file) and remove the file.

        Returns ``{"stopped": [names], "already_dead": [names]}``.  Members whose process
        had died are still swept for leftover children.
        """
        with self._locked():
            if self.ensemble is None and not self.members:
                self.load()
            return self._down(timeout)

    def _down(self, timeout: float = 10.0) -> dict[str, Any]:
        stopped: list[str] = []
        dead: list[str] = []
        for proc in self._all_processes():
            (stopped if proc.alive() else dead).append(proc.name)
        # Reverse start order, one role at a time; each role's processes in parallel.
        # Roles outside ROLE_ORDER (added with add_member) count as started last.
        others = sorted({m.role for m in self.members} - set(ROLE_ORDER))
        for role in [*others, *reversed(ROLE_ORDER)]:
            processes.stop_all([m.process for m in self.members_of(role)], timeout)
        if self.ensemble is not None:
            self.ensemble.stop(timeout)
        if self.mariadb is not None:
            self.mariadb.remove_socket()
        self.state_file.unlink(missing_ok=True)
        self.ensemble = None
        self.mariadb = None
        self.members = []
        self._counters = {}
        return {"stopped": stopped, "already_dead": dead}

    def _reset_dirs(self) -> None:
        # Each `up` starts from an empty ZooKeeper and fresh logs; the previous run's stay
        # until then, for a post-mortem after `down`.
        for sub in ("zookeeper", "logs", MARIADB):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)

    # -- members at runtime ---------------------------------------------------------------

    def _service_argv(self, command: str, *args: str) -> list[str]:
        """``python -m zkq <command>`` for this cluster: the same interpreter and venv."""
        zk = ["--zk", self.connect_string, "--root", self.root]
        return [sys.executable, "-m", "zkq", command, *zk, *args]

    def _coordinator_argv(self, extra_args: Sequence[str]) -> list[str]:
        return self._service_argv("coordinator", *self.settings.coordinator_args, *extra_args)

    def _worker_argv(
        self, app: str | None, concurrency: int | None, extra_args: Sequence[str]
    ) -> list[str]:
        app = app or self.settings.worker_app
        concurrency = concurrency or self.settings.worker_concurrency
        options = ["--app", app, "--concurrency", str(concurrency)]
        return self._service_argv("worker", *options, *self.settings.worker_args, *extra_args)

    def _add(
        self,
        role: str,
        argv: list[str],
        env: dict[str, str] | None,
        name: str | None = None,
        ports: dict[str, int] | None = None,
    ) -> Member:
        if name is None:
            self._counters[role] = self._counters.get(role, 0) + 1
            name = f"{role}-{self._counters[role]}"
        if any(m.name == name for m in self.members):
            raise DevClusterError(f"a member named {name!r} already exists")
        spec = ProcessSpec(
            name,
            argv,
            self.state_dir / "logs" / f"{name}.log",
            env={**self.settings.env, **(env or {})},
        )
        member = Member(name, role, processes.start(spec), dict(ports or {}))
        self.members.append(member)
        self.save()
        return member

    def add_member(
        self,
        role: str,
        argv: list[str],
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        ports: dict[str, int] | None = None,
    ) -> Member:
        """Start any process as a member (how later roles join; tests use it too)."""
        return self._add(role, argv, env, name, ports)

    def add_worker(
        self,
        app: str | None = None,
        concurrency: int | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        """Start one more worker (defaults from ``up``); its process, e.g. to kill -9 it."""
        return self._add(
            "worker", self._worker_argv(app, concurrency, extra_args), env, name
        ).process

    def add_coordinator(
        self,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        return self._add("coordinator", self._coordinator_argv(extra_args), env, name).process

    def stop_member(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM (graceful), and forget the member."""
        member = self.member(name)
        member.process.stop(timeout)
        self.members.remove(member)
        self.save()

    def kill_member(self, name: str) -> None:
        """SIGKILL the process alone, like ``kill -9``; the member stays listed (as dead)
        and its orphaned children are swept by ``down``."""
        member = self.member(name)
        member.process.kill()
        member.process.wait(10.0)

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

    @property
    def mysql_url(self) -> str:
        """The ``zkq`` database (``mysql://zkq:<password>@127.0.0.1:<port>/zkq``)."""
        if self.mariadb is None:
            raise DevClusterError("this cluster has no MariaDB: start it with `zkq dev up --mysql`")
        return self.mariadb.url

    def stop_mysql(self, timeout: float = 10.0) -> None:
        """SIGTERM MariaDB (by pid) and wait; it stays listed, as down, for start_mysql."""
        self.member(MARIADB).process.stop(timeout)
        self.save()

    def start_mysql(self, timeout: float = 60.0) -> None:
        """Start the stopped MariaDB again on its port and data, and wait until it serves."""
        restart_mariadb(self, timeout)

    # -- the HTTP side: frontends and HAProxy (zkq.dev.frontends) --------------------------

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
        self.member(name).process.stop(timeout)
        self.save()

    def kill_frontend(self, name: str) -> None:
        """SIGKILL one frontend's whole process group (gunicorn master and workers)."""
        process = self.member(name).process
        process.kill(group=True)
        process.wait(10.0)
        self.save()

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

    # -- readiness and status -------------------------------------------------------------

    def wait_registered(self, workers: int, coordinators: int, timeout: float = 60.0) -> None:
        """Wait until ZooKeeper lists that many workers and election contenders."""

        def registered() -> bool:
            for m in self.members:
                if not m.process.alive():
                    raise StartupFailed(
                        f"{m.name} (pid {m.process.pid}) exited with "
                        f"{m.process.exit_code}; last lines of {m.process.log_path}:\n"
                        + m.process.log_tail(15)
                    )
            counts = count_registrations(self.connect_string, self.root)
            return counts["workers"] >= workers and counts["coordinators"] >= coordinators

        try:
            wait_until(
                registered,
                timeout,
                interval=0.2,
                what=f"{workers} worker(s) and {coordinators} coordinator(s) to register",
            )
        except TimeoutError as exc:
            raise StartupFailed(str(exc)) from exc

    def status(self) -> dict[str, Any]:
        """Every process and ZooKeeper node, and whether all is well (``ok``)."""
        if self.ensemble is None and not self.members and not self.load():
            return {
                "state_dir": str(self.state_dir),
                "running": False,
                "ok": False,
                "zookeeper": [],
                "members": [],
            }
        zk = self.ensemble.status() if self.ensemble is not None else []
        members = [m.status() for m in self.members]
        modes = [n["mode"] for n in zk]
        quorum = (
            modes == ["standalone"]
            if len(modes) == 1
            else modes.count("leader") == 1 and modes.count("follower") == len(modes) - 1
        )
        registered = None
        if self.ensemble is not None and modes.count("leader") + modes.count("standalone"):
            with contextlib.suppress(DevClusterError):
                registered = count_registrations(self.connect_string, self.root, timeout=2.0)
        return {
            "state_dir": str(self.state_dir),
            "running": True,
            "ok": quorum and all(m["healthy"] for m in members),
            "connect": self.ensemble.connect_string if self.ensemble else None,
            "mysql": self.mariadb.settings.where if self.mariadb else None,
            "root": self.root,
            "created_at": self.created_at,
            "zookeeper": zk,
            "members": members,
            "registered": registered,
            **http_side.urls(self),
        }
