"""The Flask app factory.

::

    gunicorn -c frontend/gunicorn.conf.py 'zkq.frontend.app:create_app()'

``create_app`` reads its settings in layers (:mod:`zkq.frontend.config`) and wires the parts
with ``init_app``; it opens no connection.  Connections belong to each gunicorn worker
process (:mod:`zkq.frontend.resources`): they start in the worker after the fork, or on first
use outside gunicorn.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

from zkq.coordinator.errors import DatabaseUnavailable
from zkq.frontend import auth, config, errors, metrics, openapi
from zkq.frontend.api import api
from zkq.frontend.proxies import TrustedProxyFix
from zkq.frontend.requestlog import RequestRecord
from zkq.frontend.resources import EXTENSION, Resources, current, of

log = logging.getLogger(__name__)

#: probes are not logged: HAProxy checks every frontend several times a second (and
#: Prometheus scrapes each every few seconds)
UNLOGGED = frozenset({"/healthz", "/readyz", metrics.PATH})


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    config.load(app, test_config)
    if app.config["AUTH"] == "off":
        log.warning(
            "ZKQ_AUTH=off: NO AUTHENTICATION, no rate limits, no request log; every request "
            "acts as tenant %r with every scope. A benchmarking switch: never serve clients "
            "with it.",
            auth.AUTH_OFF_KEY.tenant,
        )
    hops = int(app.config["PROXY_HOPS"])
    if hops:
        # the client's address from X-Forwarded-For, trusting only the proxies we run:
        # anything a client writes into the header itself sits further left and is ignored,
        # and the header is believed only from the proxies' addresses (frontend/proxies.py)
        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, hops, app.config["TRUSTED_PROXIES"]
        )
    app.extensions[EXTENSION] = Resources(app.config, app.extensions["zkq.cluster_config"])
    errors.init_app(app)
    import zkq.frontend.routes  # noqa: F401 - registers the routes with `api`

    api.init_app(app)
    openapi.init_app(app)
    metrics.init_app(app)
    app.before_request(_begin)
    app.after_request(_finish)
    return app


def start_process_resources(app: Flask) -> None:
    """Connect this process (gunicorn's ``post_worker_init``)."""
    of(app).start()
    metrics.of(app).start(app)


def stop_process_resources(app: Flask) -> None:
    """Flush the request log and disconnect (gunicorn's ``worker_exit``)."""
    metrics.of(app).stop()  # first: its refresher reads the resources
    of(app).stop()


def _begin() -> None:
    g.started_at = time.time()
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    rate = g.get("rate_limit")
    if rate is not None:
        response.headers["X-RateLimit-Limit"] = str(rate[0])
        response.headers["X-RateLimit-Remaining"] = str(rate[1])
    if request.path not in UNLOGGED and auth.enabled():
        _log(response)
    return response


def _log(response: Response) -> None:
    key = g.get("api_key")
    record = RequestRecord(
        at=g.get("started_at", time.time()),
        method=request.method,
        path=request.path,
        status=response.status_code,
        latency_ms=(time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
        key_id=key.id if key is not None else None,
        tenant=key.tenant if key is not None else None,
        job_id=g.get("job_id"),
        client_addr=request.remote_addr,
    )
    # no MySQL configured: nowhere to log to, and the response says so already
    with contextlib.suppress(DatabaseUnavailable):
        current().mysql.request_log.record(record)  # buffers; never waits on MySQL
