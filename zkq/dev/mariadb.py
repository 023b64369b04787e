"""A MariaDB server for the local cluster and the tests, from Debian's ``mariadb-server``
binaries but never its system service or configuration.

Everything is under one directory of the cluster's state::

    mariadb/data/        the data directory (``mariadb-install-db``)
    mariadb/install.log  what mariadb-install-db said
    mariadb/mariadb.sock the server's socket, where root logs in (see below)

The server reads no option file (``--no-defaults``), listens on a free loopback port and
keeps its memory and log files small.  :meth:`MariaDBServer.install` creates the data
directory, and the first start provisions the ``zkq`` database and a ``zkq`` user with a
random password (``CREATE USER`` cannot run while mariadb-install-db bootstraps).

Root has a random password of its own from the very start: mariadb-install-db writes its
hash straight into the grant table (:func:`root_grants`), and drops the TCP root accounts
it creates, so root never exists without a password and logs in only as
``root@localhost``, through the socket.  A password rather than ``unix_socket``
authentication: the tests and ``zkq dev`` run as any OS user (often root in a container),
and ``unix_socket`` would let every process of that user in, where the password is only in
the state file, which is 0600 in a 0700 directory (:mod:`.statedir`).

In a :class:`~zkq.dev.cluster.DevCluster` the server is the member ``mariadb`` (started
before the coordinators by :func:`start_member`, stopped after the frontends, by pid); its
configuration, URL included, is kept in the cluster's state file, and the services find the
URL in their ``ZKQ_MYSQL_URL``.  The tests start a :class:`MariaDBServer` of their own the
same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymysql.connections import Connection

from zkq.coordinator.errors import DatabaseUnavailable
from zkq.coordinator.migrate import migrate
from zkq.coordinator.mysql import MySQLSettings, connect, mysql_errors
from zkq.dev import processes
from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.members import HEALTH_PROBES, Member, Roster
from zkq.dev.ports import free_port
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.waiting import wait_until

#: the role, and the name, of the cluster's MariaDB member
MARIADB = "mariadb"
HOST = "127.0.0.1"
DATABASE = "zkq"
USER = "zkq"
#: a unix socket path must fit in sockaddr_un (108 bytes on Linux)
SOCKET_PATH_MAX = 100
#: the MySQL protocol version a server greets with
PROTOCOL_VERSION = 10


def find_binary(name: str) -> str:
    # /usr/sbin is not on every user's PATH, and mariadbd lives there
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise DevClusterError(
            f"no {name}: install the Debian package mariadb-server (or run scripts/bootstrap.sh)"
        )
    return path


def accepts_connections(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    """Whether a MySQL server on ``port`` greets a new connection (no login needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            greeting = sock.recv(5)  # 3 bytes length, 1 sequence, then the protocol version
    except OSError:
        return False
    return len(greeting) == 5 and greeting[4] == PROTOCOL_VERSION


@dataclass
class MariaDBServer:
    base_dir: Path
    port: int
    password: str
    socket_path: Path
    buffer_pool_mb: int = 64
    #: root's, through the socket only ("" in a state file written before root had one)
    root_password: str = ""

    @classmethod
    def create(cls, base_dir: Path, port: int | None = None) -> MariaDBServer:
        """A new server's settings: ``port`` or a free one, a random password."""
        base_dir = Path(base_dir).resolve()
        port = port or free_port(HOST)
        sock = base_dir / "mariadb.sock"
        if len(str(sock)) > SOCKET_PATH_MAX:
            sock = Path(tempfile.gettempdir()) / f"zkq-mariadb-{port}.sock"
        return cls(
            base_dir, port, secrets.token_urlsafe(18), sock, root_password=secrets.token_urlsafe(18)
        )

    # -- addresses ------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def settings(self) -> MySQLSettings:
        """How zkq's services reach the ``zkq`` database."""
        return MySQLSettings(HOST, self.port, USER, self.password, DATABASE)

    @property
    def url(self) -> str:
        return self.settings.url

    def _server_options(self) -> list[str]:
        # shared by install and start: InnoDB's log size must be the same for both
        options = [
            f"--innodb-buffer-pool-size={self.buffer_pool_mb}M",
            "--innodb-log-file-size=8M",
            "--skip-name-resolve",
        ]
        if os.geteuid() == 0:
            options.append("--user=root")  # mariadbd refuses root unless told
        return options

    def argv(self) -> list[str]:
        return [
            find_binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            "--skip-networking=0",
            f"--socket={self.socket_path}",
            f"--pid-file={self.base_dir / 'mariadb.pid'}",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            # a dev cluster trades durability on power loss for fewer fsyncs on a laptop
            "--innodb-flush-log-at-trx-commit=2",
            *self._server_options(),
        ]

    # -- lifecycle ------------------------------------------------------------------------
    def install(self) -> None:
        """Create the data directory (system tables only) with mariadb-install-db."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.base_dir / "install.log"
        grants = self.base_dir / "root-grants.sql"
        # only the password's hash, and only while mariadb-install-db runs
        fd = os.open(grants, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(root_grants(self.root_password))
        argv = [
            find_binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--extra-file={grants}",
            *self._server_options(),
        ]
        try:
            with open(log_path, "wb") as log:
                done = subprocess.run(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=120,
                )
        finally:
            grants.unlink(missing_ok=True)
        if done.returncode != 0:
            raise StartupFailed(
                f"mariadb-install-db failed with {done.returncode}; see {log_path}:\n"
                + processes.tail(log_path, 15)
            )

    def start(self, name: str, log_path: Path, env: dict[str, str] | None = None) -> ManagedProcess:
        """Start mariadbd (without waiting: see :meth:`wait_ready`)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        return processes.start(ProcessSpec(name, self.argv(), log_path, env=env))

    def initialise(self, process: ManagedProcess, timeout: float = 60.0) -> None:
        """After the first start: wait for the server, provision the ``zkq`` database and
        user, and wait until that user can log in."""
        self.wait_socket(process, timeout)
        self.provision()
        self.wait_ready(process, timeout)

    def wait_socket(self, process: ManagedProcess, timeout: float = 60.0) -> None:
        """Wait until root can log in through the socket (the server is up)."""
        self._wait(process, timeout, "root", lambda: self.root_connection().close())

    def wait_ready(self, process: ManagedProcess, timeout: float = 60.0) -> None:
        """Wait until the ``zkq`` user can log in over TCP."""
        self._wait(process, timeout, "zkq", lambda: connect(self.settings).close())

    def _wait(self, process: ManagedProcess, timeout: float, who: str, login: Any) -> None:
        def ready() -> bool:
            if not process.alive():
                raise StartupFailed(
                    f"mariadbd (pid {process.pid}) exited with {process.exit_code}; "
                    f"last lines of {process.log_path}:\n" + process.log_tail(15)
                )
            try:
                login()
            except DatabaseUnavailable:
                return False
            return True

        try:
            wait_until(ready, timeout, interval=0.1, what=f"MariaDB to let {who} log in")
        except TimeoutError as exc:
            raise StartupFailed(f"{exc}; see {process.log_path}") from exc

    def provision(self) -> None:
        """Create the database and user (first start)."""
        conn = self.root_connection()
        try:
            with mysql_errors(), conn.cursor() as cur:
                cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
                for host in (HOST, "localhost"):
                    cur.execute(
                        "CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (USER, host, self.password)
                    )
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO %s@%s", (USER, host))
        finally:
            conn.close()

    def create_database(self, name: str) -> MySQLSettings:
        """Another database the ``zkq`` user owns (tests take one each); its settings."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database names here are letters, digits and _: {name!r}")
        conn = self.root_connection()
        try:
            with mysql_errors(), conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                for host in (HOST, "localhost"):
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (USER, host))
        finally:
            conn.close()
        return MySQLSettings(HOST, self.port, USER, self.password, name)

    def root_connection(self) -> Connection:
        """Root, through the socket (the only way root may log in)."""
        root = MySQLSettings(
            HOST,
            self.port,
            "root",
            self.root_password,
            "mysql",
            str(self.socket_path),
            connect_timeout=2.0,
        )
        return connect(root)

    def remove_socket(self) -> None:
        """A socket left by a killed server outside the base directory."""
        if not self.socket_path.is_relative_to(self.base_dir):
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "base_dir": str(self.base_dir),
            "port": self.port,
            "password": self.password,
            "socket_path": str(self.socket_path),
            "buffer_pool_mb": self.buffer_pool_mb,
            "root_password": self.root_password,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MariaDBServer:
        return cls(
            base_dir=Path(data["base_dir"]),
            port=int(data["port"]),
            password=str(data["password"]),
            socket_path=Path(data["socket_path"]),
            buffer_pool_mb=int(data.get("buffer_pool_mb", 64)),
            root_password=str(data.get("root_password", "")),
        )


def native_password_hash(password: str) -> str:
    """What ``PASSWORD()`` stores for ``mysql_native_password``: ``*`` and
    SHA1(SHA1(password)) in upper-case hex."""
    inner = hashlib.sha1(password.encode()).digest()
    return "*" + hashlib.sha1(inner).hexdigest().upper()


def root_grants(password: str) -> str:
    """SQL for mariadb-install-db's ``--extra-file``.  It runs with the grant tables open
    but not loaded (``ALTER USER`` is refused then), so it writes ``mysql.global_priv``,
    where MariaDB 10.4+ keeps accounts, directly."""
    if not password:
        raise ValueError("root needs a password")
    return (
        "UPDATE mysql.global_priv SET priv = JSON_SET(priv,"
        " '$.plugin', 'mysql_native_password',"
        f" '$.authentication_string', '{native_password_hash(password)}')"
        " WHERE user = 'root' AND host = 'localhost';\n"
        # root@127.0.0.1, root@::1 and root@<hostname>: no root over TCP at all
        "DELETE FROM mysql.global_priv WHERE user = 'root' AND host <> 'localhost';\n"
    )


# -- as a member of a cluster -------------------------------------------------------------
def mariadb_ready(member: Member) -> bool:
    return accepts_connections(member.ports["mysql"])


HEALTH_PROBES[MARIADB] = mariadb_ready


def start_member(roster: Roster, server: MariaDBServer, timeout: float = 60.0) -> Member:
    """Start an installed ``server`` as the member ``mariadb`` of ``roster``, provision it
    and migrate its schema."""
    member = roster.add_member(MARIADB, server.argv(), name=MARIADB, ports={"mysql": server.port})
    server.initialise(member.process, timeout)
    migrate(server.settings)
    return member


def restart_member(server: MariaDBServer, member: Member) -> None:
    """Start the stopped ``server`` again as ``member``'s process, on its port and data (a
    fault test's second half); without waiting (see :meth:`MariaDBServer.wait_ready`)."""
    if member.process.alive():
        raise DevClusterError(f"MariaDB still runs (pid {member.process.pid}): stop it first")
    server.remove_socket()
    member.process = server.start(member.name, member.process.log_path)
