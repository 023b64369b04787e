"""``zkq bench``: zkq against raw ZooKeeper and kazoo's LockingQueue, in one run.

- :mod:`zkq.bench.counters`      what the ensemble counts: transactions (zxid) and watch
  notifications delivered (``mntr``), read before and after each measured window
- :mod:`zkq.bench.zk_raw`        the ceiling: kazoo creates, pipelined and sequential
- :mod:`zkq.bench.zkq_jobs`      zkq end to end: ``noop`` jobs through real coordinator and
  worker processes
- :mod:`zkq.bench.lockingqueue`  the baseline: kazoo's ``LockingQueue`` with consumer
  processes (:mod:`zkq.bench.lq_consumer`)
- :mod:`zkq.bench.results`       the measured rows, as data
- :mod:`zkq.bench.report`        ratios, targets (PASS/MISS), tables and JSON; no I/O
- :mod:`zkq.bench.runner`        brings up a private cluster, runs every section, stops it
- :mod:`zkq.bench.cli`           the ``zkq bench`` command
"""
