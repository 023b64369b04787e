"""The local cluster launcher behind ``zkq dev up|down|status``, and what the tests start.

Everything runs as plain child processes on free loopback ports, supervised by pid:

- :mod:`zkq.dev.ports`          free loopback ports (below the kernel's ephemeral range)
- :mod:`zkq.dev.waiting`        ``wait_until``: conditions with deadlines, never bare sleeps
- :mod:`zkq.dev.processes`      start, probe and stop one detached process (pid + start time)
- :mod:`zkq.dev.zookeeper`      a ZooKeeper ensemble from Debian's jars, one JVM per node
- :mod:`zkq.dev.fourletter`     ZooKeeper's four-letter words (ruok, srvr, mntr)
- :mod:`zkq.dev.members`        the other processes of a cluster: role, name, process, ports
- :mod:`zkq.dev.registrations`  who ZooKeeper says is registered (workers, coordinators)
- :mod:`zkq.dev.cluster`        ``DevCluster``: ensemble + members + a state file, so that
  another invocation can report on the cluster and stop exactly what was started
- :mod:`zkq.dev.cli`            the ``zkq dev`` command group
- :mod:`zkq.dev.errors`         the launcher's branch of zkq's exception tree
"""
