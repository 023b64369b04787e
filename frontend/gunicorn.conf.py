"""gunicorn settings of a zkq frontend::

    ZKQ_BIND=127.0.0.1:8001 ZKQ_ZK_HOSTS=... ZKQ_MYSQL_URL=... \
        gunicorn -c frontend/gunicorn.conf.py 'zkq.frontend.app:create_app()'

Why gevent workers: a long-poll (``GET /v1/jobs/ID?wait=30``) holds its request open; with
sync workers each one would hold a whole process.  A gevent worker serves thousands of
them as greenlets, provided every wait cooperates: kazoo runs on its gevent handler, and
pymysql (pure Python) uses the patched sockets.

Why the connections start in ``post_worker_init``: that hook runs in the worker, after
gevent has patched it and the app has loaded, never in the master, so no socket is shared
across a fork.  ``worker_exit`` flushes the request log and closes the session, which
deletes nothing (a frontend owns no ephemeral nodes) but frees the server's session now.

Environment (besides the app's own ``ZKQ_*`` settings, see :mod:`zkq.frontend.config`):
``ZKQ_BIND`` (comma-separated), ``ZKQ_GUNICORN_WORKERS``, ``ZKQ_WORKER_CONNECTIONS``,
``ZKQ_GRACEFUL_TIMEOUT``, ``ZKQ_LOG_LEVEL``, ``PROMETHEUS_MULTIPROC_DIR``.

Why ``PROMETHEUS_MULTIPROC_DIR``: a scrape of ``/metrics`` reaches one worker process, but
must show the whole frontend.  With the variable set, every worker keeps its counts in
files there and a scrape sums them all (:mod:`zkq.frontend.metrics`); the master wipes the
directory when it starts and drops a dead worker's gauges (``child_exit``).  The dev
launcher gives each frontend a directory of its own; with more than one worker and none
given, the master makes a temporary one (removed on exit).  prometheus_client reads the
variable when first imported, in the workers (the app is not preloaded): setting it here
in the master is early enough.
"""

import glob
import os
import shutil
import tempfile
from typing import Any

bind = [b.strip() for b in os.environ.get("ZKQ_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = int(os.environ.get("ZKQ_GUNICORN_WORKERS", "2"))
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # in the environment, not a variable of this module: a reload (SIGHUP) runs it again
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["_ZKQ_METRICS_TMPDIR"] = tempfile.mkdtemp(
        prefix="zkq-frontend-metrics-"
    )
worker_class = "gevent"
worker_connections = int(os.environ.get("ZKQ_WORKER_CONNECTIONS", "1000"))
# In-flight requests (long-polls included) get this long to finish on SIGTERM; a cut
# long-poll is harmless, the client asks again (HAProxy sends it to another frontend).
graceful_timeout = int(os.environ.get("ZKQ_GRACEFUL_TIMEOUT", "10"))
# gevent workers heartbeat from their own greenlet, so long requests do not trip this
timeout = 30
# HAProxy keeps connections to us open; close idle ones a bit after it would
keepalive = 15
# No request-line limit of gunicorn's own: its 414 is an HTML page, while the app answers
# a long query string with the API's JSON 400.  HAProxy's buffer (16 KB a request head)
# still bounds it (HAProxy's own 400 beyond that is still its HTML page).
limit_request_line = 0
# We log every request ourselves (frontend.requestlog, to MySQL): no access log.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("ZKQ_LOG_LEVEL", "info")
# the app's own loggers (frontend.*, coordinator.*) to stderr too, like gunicorn's; kazoo
# narrates every reconnection attempt at INFO, its warnings are what matter
# (gunicorn lays this over its defaults one key deep, hence its own loggers restated)
logconfig_dict = {
    "root": {"level": loglevel.upper(), "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "propagate": True},
        "kazoo": {"level": "WARNING"},
    },
}
proc_name = "zkq-frontend"
# never import the app in the master: it must not open connections before the fork
preload_app = False
# gunicorn 23+ opens a control socket at one per-user path: two frontends on one machine
# would take it from each other, and we manage them by pid anyway
control_socket_disable = True


def on_starting(server: Any) -> None:
    # counts of a previous run would be summed into this one's
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        os.makedirs(metrics_dir, exist_ok=True)
        for kind in ("counter", "gauge", "histogram", "summary"):
            for stale in glob.glob(os.path.join(metrics_dir, f"{kind}_*.db")):
                os.remove(stale)


def child_exit(server: Any, worker: Any) -> None:
    # a dead worker's counters still count; its in-progress gauges must not
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    own = os.environ.get("_ZKQ_METRICS_TMPDIR")
    if own:
        shutil.rmtree(own, ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    from zkq.frontend.app import start_process_resources

    start_process_resources(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    from zkq.frontend.app import stop_process_resources

    app = getattr(worker, "wsgi", None)
    if app is not None:
        stop_process_resources(app)
