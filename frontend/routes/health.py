"""Probes and the API's description: no key needed.

``/healthz`` says the process serves HTTP (a liveness probe: restart me if not).
``/readyz`` says it can do its job: ZooKeeper connected and MySQL answering; HAProxy's
``option httpchk`` takes a frontend out of rotation while it answers 503.
"""

from __future__ import annotations

from typing import Any

from zkq.frontend.api import api
from zkq.frontend.models import Health, Readiness
from zkq.frontend.resources import current as resources


@api.route("/healthz", "GET", summary="Liveness", scope=None, ok=(200, Health), tag="health")
def healthz() -> tuple[Any, ...]:
    return Health(status="ok"), 200


@api.route(
    "/readyz",
    "GET",
    summary="Readiness: ZooKeeper connected and MySQL reachable (else 503)",
    scope=None,
    ok=(200, Readiness),
    also={503: Readiness},
    tag="health",
)
def readyz() -> tuple[Any, ...]:
    res = resources()
    zk = res.zk_ready()
    mysql = res.mysql_ready()
    ready = zk and mysql
    body = Readiness(status="ready" if ready else "not ready", zookeeper=zk, mysql=mysql)
    return body, 200 if ready else 503
