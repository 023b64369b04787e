"""gunicorn settings of a zkq frontend::

    ZKQ_BIND=127.0.0.1:8001 ZKQ_ZK_HOSTS=... ZKQ_MYSQL_URL=... \
        gunicorn -c frontend/gunicorn.conf.py 'frontend.app:create_app()'

Why gevent workers: a long-poll (``GET /v1/jobs/ID?wait=30``) holds its request open; with
sync workers each one would hold a whole process.  A gevent worker serves thousands of
them as greenlets, provided every wait cooperates: kazoo runs on its gevent handler, and
pymysql (pure Python) uses the patched sockets.

Why the connections start in ``post_worker_init``: that hook runs in the worker, after
gevent has patched it and the app has loaded, never in the master, so no socket is shared
across a fork.  ``worker_exit`` flushes the request log and closes the session, which
deletes nothing (a frontend owns no ephemeral nodes) but frees the server's session now.

Environment (besides the app's own ``ZKQ_*`` settings, see :mod:`frontend.config`):
``ZKQ_BIND`` (comma-separated), ``ZKQ_GUNICORN_WORKERS``, ``ZKQ_WORKER_CONNECTIONS``,
``ZKQ_GRACEFUL_TIMEOUT``, ``ZKQ_LOG_LEVEL``.
"""

import os
from typing import Any

bind = [b.strip() for b in os.environ.get("ZKQ_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = int(os.environ.get("ZKQ_GUNICORN_WORKERS", "2"))
worker_class = "gevent"
worker_connections = int(os.environ.get("ZKQ_WORKER_CONNECTIONS", "1000"))
# In-flight requests (long-polls included) get this long to finish on SIGTERM; a cut
# long-poll is harmless, the client asks again (HAProxy sends it to another frontend).
graceful_timeout = int(os.environ.get("ZKQ_GRACEFUL_TIMEOUT", "10"))
# gevent workers heartbeat from their own greenlet, so long requests do not trip this
timeout = 30
# HAProxy keeps connections to us open; close idle ones a bit after it would
keepalive = 15
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


def post_worker_init(worker: Any) -> None:
    from frontend.app import start_process_resources

    start_process_resources(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    from frontend.app import stop_process_resources

    app = getattr(worker, "wsgi", None)
    if app is not None:
        stop_process_resources(app)
