"""A whole zkq cluster on this machine, for development, demos and the tests of applications
built on zkq, as ``kazoo.testing`` is for kazoo's users.

**Entry points.**  The ``zkq dev up|status|down`` command (:mod:`zkq.dev.cli`), and in
Python :func:`local_cluster`, or :class:`DevCluster` to drive one step by step::

    from zkq.dev import local_cluster

    with local_cluster(tmp_path, worker_app="myapp.handlers", mysql=True) as cluster:
        config = ClusterConfig.load(hosts=cluster.connect_string, root=cluster.root)
        ...  # submit, break things (cluster.kill_member, cluster.stop_zk_node), look

**What it is for.**  A ZooKeeper ensemble, coordinators and workers, and on request MariaDB
and gunicorn frontends behind HAProxy, started as plain child processes on free loopback
ports, from Debian's packages and this virtualenv.  They are stopped exactly (by pid and
start time, never by name) from any shell, and can be stopped, killed and restarted one by
one on purpose.

**What it is not.**  A way to deploy or run zkq for real.  It supervises nothing (a process
that dies stays dead), binds loopback only, starts every ``up`` from an empty ensemble and a
fresh database, trades MariaDB's durability for fewer fsyncs, and keeps the database
password in its state file.  A deployment runs the same ``zkq coordinator`` and
``zkq worker`` commands under a service manager, against an ensemble and a database of
its own.

Modules, lowest first:

- :mod:`zkq.dev.errors`         the launcher's branch of zkq's exception tree
- :mod:`zkq.dev.waiting`        ``wait_until``: conditions with deadlines, never bare sleeps
- :mod:`zkq.dev.ports`          free loopback ports (below the kernel's ephemeral range)
- :mod:`zkq.dev.portbook`       the previous run's ports, taken again where they are free
- :mod:`zkq.dev.processes`      start, probe and stop one detached process (pid + start time)
- :mod:`zkq.dev.statedir`       the state directory: its layout, state file and lock
- :mod:`zkq.dev.fourletter`     ZooKeeper's four-letter words (ruok, srvr, mntr)
- :mod:`zkq.dev.zookeeper`      a ZooKeeper ensemble from Debian's jars, one JVM per node
- :mod:`zkq.dev.members`        the other processes of a cluster: role, name, process, ports;
  and ``Roster``, what the modules below need of the cluster their members join
- :mod:`zkq.dev.registrations`  who ZooKeeper says is registered (workers, coordinators)
- :mod:`zkq.dev.services`       how coordinators and workers are started
- :mod:`zkq.dev.mariadb`        a MariaDB server, and starting it as a member
- :mod:`zkq.dev.frontends`      gunicorn frontends and HAProxy, as members
- :mod:`zkq.dev.health`         what ``up`` waits for and what ``status`` reports
- :mod:`zkq.dev.cluster`        ``DevCluster``: all of the above, recorded in the state file
  so that another invocation can report on the cluster and stop exactly what was started
- :mod:`zkq.dev.discovery`      which dev cluster a ``zkq`` command run from its folder uses
- :mod:`zkq.dev.cli`            the ``zkq dev`` command group
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zkq.dev.cluster import DevCluster
from zkq.dev.errors import DevClusterError


@contextmanager
def local_cluster(state_dir: Path | str = ".zkq-dev", **up_options: Any) -> Iterator[DevCluster]:
    """A cluster started by :meth:`DevCluster.up` with ``up_options``, and stopped on
    leaving the block, also when it raised (and when ``up`` itself failed half-way)."""
    cluster = DevCluster(Path(state_dir))
    try:
        cluster.up(**up_options)
        yield cluster
    finally:
        cluster.down()


__all__ = ["DevCluster", "DevClusterError", "local_cluster"]
