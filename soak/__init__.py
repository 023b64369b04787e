"""The chaos soak: ``make soak`` / ``python -m soak`` from a checkout (not installed).

A bounded run of jobs submitted over HTTP through HAProxy, with Idempotency-Keys, to a
local cluster started by the project's own launcher (:mod:`zkq.dev`), while a schedule kills
and partitions its parts in turn.  Every execution of a handler is recorded in an append-only
file that survives a ``kill -9`` of its worker; at the end every accepted job is accounted
for and the run exits non-zero on any loss or double commit.

==============  ==============================================================
module          what it is
==============  ==============================================================
``app``         the handler the soak's workers run, which records each execution
``executions``  reading those records back
``load``        the submitters (HTTP, Idempotency-Keys, retried until answered)
``partitions``  black-holing proxies in front of a worker and of one ZooKeeper node
``faults``      the schedule of kills, restarts and partitions, and its log
``accounting``  what the records and the cluster say at the end
``replicas``    whether the ZooKeeper nodes agree on every accepted job
``report``      the figures, as text or JSON
``runner``      brings it all together; ``cli`` is the command
==============  ==============================================================
"""
