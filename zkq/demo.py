"""``python -m zkq.demo``: a demo workload through HAProxy against the local cluster
that ``zkq dev up`` started (``make run`` runs both), then where to look.

It uses an API key of a ``demo`` tenant, submits a mix of built-in jobs over HTTP (a
batch of quick ones, some that sleep, some that fail and are retried until dead, one
cancelled), follows them to the end with long-polls, and prints what happened and the
commands to try next.

The key is made once and kept in ``<state dir>/demo-key`` (0600): every ``make run`` uses
it again, also after ``make down`` (the new database gets the same key), so a key exported
or pasted somewhere keeps working.  A new one is made only when it was revoked.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

from zkq.coordinator.errors import InvalidInput, WaitTimeout
from zkq.coordinator.job import Job
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.cluster import DevCluster
from zkq.dev.frontends import require_url
from zkq.frontend.keys import PREFIX_CHARS, SECRET_PREFIX, KeyStore
from zkq.http_client import HttpClient

DEMO_KEY = "demo-key"
SCOPES, NAME = "submit,read,admin", "make run demo"


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

    key_file = cluster.state_dir / DEMO_KEY
    secret = demo_key(key_file, mysql_url)
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
  demo API key            {secret}    (the same on every `make run`: {key_file})

Try, from this folder (zkq commands here use this cluster; the first line puts zkq on
your PATH):
  . {_activate()}
  zkq status
  zkq jobs --state dead
  zkq job {example.id}
  zkq dev status
  curl -s --cacert {ca_file} -H 'Authorization: Bearer {secret}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"type": "echo", "payload": {{"hello": "zkq"}}}}' {base_url}/v1/jobs
  curl -s --cacert {ca_file} -H 'Authorization: Bearer {secret}' '{base_url}/v1/jobs/{example.id}'
  eval "$(zkq dev env)"    (sets ZKQ_CONFIG, ZKQ_URL, ZKQ_CA_FILE: zkq works from any folder)
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


def demo_key(path: Path, mysql_url: str) -> str:
    """The demo's API key: the one kept in ``path`` while the database accepts it, or
    registered again in a database started afresh; a new one if it was revoked (or never
    made, or the file is damaged).  Kept in ``path``, readable by its owner only."""
    saved = path.read_text().strip() if path.exists() else ""
    pool = ConnectionPool(MySQLSettings.from_url(mysql_url), 1)
    try:
        keys = KeyStore(pool, cache_seconds=0, negative_seconds=0)
        if saved and keys.authenticate(saved) is not None:
            return saved
        # a key of that prefix the database refuses was revoked: never bring it back
        revoked = any(key.prefix == _prefix(saved) for key in keys.list())
        try:
            again = saved if saved and not revoked else None
            _, secret = keys.create("demo", SCOPES, name=NAME, secret=again)
        except InvalidInput:  # not a secret at all: a file edited by hand
            _, secret = keys.create("demo", SCOPES, name=NAME)
    finally:
        pool.close()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file of another mode keeps it through O_TRUNC
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def forget_revoked(prefix: str, state_dir: Path) -> bool:
    """After ``zkq keys revoke``: forget the dev cluster's demo key if it is the one
    revoked.  The next ``zkq dev up`` starts its database afresh, where nothing remembers
    the revocation, so :func:`demo_key` would register the secret again.  True if it was."""
    path = state_dir / DEMO_KEY
    try:
        saved = path.read_text().strip()
    except OSError:
        return False
    if not saved or _prefix(saved) != prefix:
        return False
    path.unlink(missing_ok=True)
    return True


def _prefix(secret: str) -> str:
    return secret[len(SECRET_PREFIX) :][:PREFIX_CHARS]


def _activate() -> str:
    """The virtualenv's activate script, as short as it can be written from here."""
    script = Path(sys.prefix) / "bin" / "activate"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


if __name__ == "__main__":
    sys.exit(main())
