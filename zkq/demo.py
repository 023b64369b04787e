"""``python -m zkq.demo``: a demo workload through HAProxy against the local cluster
that ``zkq dev up`` started (``make run`` runs both), then where to look.

It creates an API key for a ``demo`` tenant, submits a mix of built-in jobs over HTTP (a
batch of quick ones, some that sleep, some that fail and are retried until dead, one
cancelled), follows them to the end with long-polls, and prints what happened.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

from zkq.coordinator.acl import Role
from zkq.coordinator.errors import WaitTimeout
from zkq.coordinator.job import Job
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev import credentials
from zkq.dev.cluster import DevCluster
from zkq.dev.frontends import require_url
from zkq.frontend.keys import KeyStore
from zkq.http_client import HttpClient


def main() -> int:
    cluster = DevCluster(Path(os.environ.get("ZKQ_DEV_DIR", ".zkq-dev")))
    if not cluster.load():
        print("zkq demo: no local cluster is running: start one with `zkq dev up`", file=sys.stderr)
        return 3
    try:
        base_url, stats_url = require_url(cluster, "https_url"), cluster.stats_url
        mysql_url = cluster.mysql_url
        ca_file = require_url(cluster, "ca_file")
    except Exception as exc:
        print(f"zkq demo: this cluster has no HTTP side ({exc})", file=sys.stderr)
        return 3

    pool = ConnectionPool(MySQLSettings.from_url(mysql_url), 1)
    try:
        _, secret = KeyStore(pool).create("demo", "submit,read,admin", name="make run demo")
    finally:
        pool.close()
    client = HttpClient(base_url, api_key=secret, timeout=10, ca_file=ca_file)

    started = time.monotonic()
    print(f"submitting the demo workload through HAProxy at {base_url} ...")
    quick = client.submit_batch(
        [{"type": "echo", "payload": {"n": n}} for n in range(150)]
        + [{"type": "noop", "priority": 5} for _ in range(50)]
    )
    slow = [client.submit("sleep", 0.5 + n / 10) for n in range(8)]
    failing = [client.submit("fail", f"demo failure {n}", max_attempts=3) for n in range(3)]
    doomed = client.submit("sleep", 30)
    client.cancel(doomed.id)
    jobs = [*quick, *slow, *failing]
    print(f"submitted {len(jobs) + 1} jobs in {time.monotonic() - started:.2f}s; waiting ...")

    finished = [_outcome(client, job.id) for job in jobs]
    states = Counter(str(job.state) for job in finished)
    states[str(client.get(doomed.id).state)] += 1
    took = time.monotonic() - started
    print(f"all done in {took:.2f}s: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    example = finished[0]
    print(f"for example {example.id}: {example.state}, result {example.result!r}")
    dead = finished[-1]
    message = (dead.error or {}).get("message")
    print(f"and {dead.id}: {dead.state} after {dead.attempts} attempts ({message})")

    print(
        f"""
Where to look:
  API (through HAProxy)   {base_url}/v1/openapi.json
  its CA certificate      {ca_file}    (ZKQ_CA_FILE={ca_file} for zkq.HttpClient)
  HAProxy stats           {stats_url}    (CSV: {stats_url};csv)
  demo API key            {secret}

Try:
  curl -s --cacert {ca_file} -H 'Authorization: Bearer {secret}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"type": "echo", "payload": {{"hello": "zkq"}}}}' {base_url}/v1/jobs
  curl -s --cacert {ca_file} -H 'Authorization: Bearer {secret}' '{base_url}/v1/jobs/{example.id}'
  .venv/bin/zkq dev status
  .venv/bin/zkq status {_as_operator(cluster)} --haproxy-stats {_host_port(stats_url)}
  make down     (stops everything `make run` started)"""
    )
    return 0


def _outcome(client: HttpClient, job_id: str) -> Job:
    """The job once it ends; as it last was if it has not after two minutes (a slow
    machine), so the demo still reports where each job stands."""
    try:
        return client.wait(job_id, timeout=120)
    except WaitTimeout as exc:
        return exc.job if exc.job is not None else client.get(job_id)


def _as_operator(cluster: DevCluster) -> str:
    """How a command reaches the cluster: as the read-only operator, whose config file
    names the ensemble and the credential (an anonymous one is refused)."""
    if not cluster.acl_identities:
        return f"--zk {cluster.connect_string} --root {cluster.root}"
    return f"--config {credentials.config_file(cluster.state_dir, Role.OPERATOR)}"


def _host_port(url: str) -> str:
    """``http://127.0.0.1:8404/stats`` → ``127.0.0.1:8404/stats`` (what haproxy-stats wants)."""
    return url.split("://", 1)[-1]


if __name__ == "__main__":
    sys.exit(main())
