"""``zkq bench``: zkq against raw ZooKeeper and kazoo's LockingQueue, in one run.

- :mod:`benchmarks.counters`      what the ensemble counts: transactions (zxid) and watch
  notifications delivered (``mntr``), read before and after each measured window
- :mod:`benchmarks.zk_raw`        the ceiling: kazoo creates, pipelined and sequential
- :mod:`benchmarks.zkq_jobs`      zkq end to end: ``noop`` jobs through real coordinator and
  worker processes
- :mod:`benchmarks.lockingqueue`  the baseline: kazoo's ``LockingQueue`` with consumer
  processes (:mod:`benchmarks.lq_consumer`)
- :mod:`benchmarks.results`       the measured rows, as data
- :mod:`benchmarks.report`        ratios, targets (PASS/MISS), tables and JSON; no I/O
- :mod:`benchmarks.runner`        brings up a private cluster, runs every section, stops it
- :mod:`benchmarks.cli`           the ``zkq bench`` command
"""
