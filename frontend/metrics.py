"""Prometheus metrics of a frontend, served at ``GET /metrics``: no API key (like the
probes), not in the OpenAPI document (it is not part of the API), not request-logged.

- ``zkq_http_requests_total{route, method, status}``
- ``zkq_http_request_duration_seconds{route, method}``: from the first hook to the
  response built; long-polls (``?wait=``) are timed too, up to their wait
- ``zkq_submissions_total{outcome}``: ``accepted`` and ``replayed`` (an ``Idempotency-Key``
  seen before) count jobs, each job of a batch; ``refused`` counts the jobs of a refused
  submission, or one when its body could not be read (a refusal before parsing: no key,
  rate limit, bad JSON)
- ``zkq_http_long_polls_in_progress``: ``GET /v1/jobs/{job_id}?wait=...`` being served
- ``zkq_request_log_pending``, ``zkq_request_log_dropped_total``: the request log's buffer
  (:mod:`zkq.frontend.requestlog`), refreshed every second and at each scrape

``route`` is the template of the route that matched, as the OpenAPI document writes it
(``/v1/jobs/{job_id}``), never the path asked for, so a label value per route and not per
job id or scanner's guess; a request no route matched (404, 405) is ``unmatched``.  A
method outside the usual few is ``other``.

One frontend is one gunicorn master and ``ZKQ_GUNICORN_WORKERS`` processes, and a scrape
reaches one of them.  With ``PROMETHEUS_MULTIPROC_DIR`` set (``frontend/gunicorn.conf.py``
sees to it when there is more than one worker; the dev launcher gives every frontend a
directory of its own), prometheus_client keeps every process's values in files there and a
scrape sums them all, dead processes' counters included (``child_exit`` drops their
gauges).  Without it, one process's registry is the whole frontend.

Updating a metric writes to memory (a memory-mapped file in multiprocess mode) under an
uncontended lock: no request waits on I/O for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder

from zkq.coordinator.errors import DatabaseUnavailable
from zkq.frontend.models import BatchSubmission
from zkq.frontend.resources import Resources
from zkq.frontend.resources import of as resources_of

log = logging.getLogger(__name__)

EXTENSION = "zkq.metrics"
PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
SUBMISSIONS = frozenset({"/v1/jobs", "/v1/jobs/batch"})
LONG_POLL = ("GET", "/v1/jobs/{job_id}")
#: long-polls last up to MAX_WAIT (60 s)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REFRESH_INTERVAL = 1.0

_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@functools.cache  # one entry per rule of the app
def template(rule: str) -> str:
    """A Werkzeug rule in OpenAPI's spelling: ``/v1/jobs/<job_id:job_id>`` ->
    ``/v1/jobs/{job_id}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def route_label() -> str:
    """The current request's route template, or ``unmatched``."""
    rule = request.url_rule
    return UNMATCHED if rule is None else template(rule.rule)


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def _long_poll(route: str) -> bool:
    if (request.method, route) != LONG_POLL:
        return False
    try:
        return float(request.args.get("wait", "0")) > 0
    except ValueError:
        return False  # refused with a 400 at once


class FrontendMetrics:
    """The metrics of one app; ``multiproc_dir`` switches to prometheus_client's
    multiprocess mode (which it chose from the environment when imported)."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        # The metrics live here; in multiprocess mode their values also go to files, and a
        # scrape reads the files instead (this registry would show one process's only).
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zkq_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "zkq_http_request_duration_seconds",
            "Time to answer, by route template and method",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.submissions = Counter(
            "zkq_submissions",
            "Jobs submitted: accepted, replayed (idempotent retry) or refused",
            ["outcome"],
            registry=self.registry,
        )
        self.long_polls = Gauge(
            "zkq_http_long_polls_in_progress",
            "GET /v1/jobs/{job_id}?wait= requests being served",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_pending = Gauge(
            "zkq_request_log_pending",
            "Request-log rows buffered, not yet written to MySQL",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_dropped = Counter(
            "zkq_request_log_dropped",
            "Request-log rows dropped (buffer full while MySQL was away, or refused)",
            registry=self.registry,
        )
        for outcome in ("accepted", "replayed", "refused"):
            self.submissions.labels(outcome)  # present at 0 before the first submission
        self._dropped_seen: tuple[int, int] = (0, 0)  # (id of the log, its count seen)
        self._refreshing = threading.Lock()  # the refresher and a scrape
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    # -- the request path ------------------------------------------------------------------

    def begin(self) -> None:
        g.metrics_started = time.perf_counter()
        if _long_poll(route_label()):
            self.long_polls.inc()
            g.metrics_long_poll = True

    def finish(self, response: Response) -> Response:
        started = g.pop("metrics_started", None)
        route = route_label()
        method = method_label(request.method)
        status = response.status_code
        self.requests.labels(route, method, str(status)).inc()
        if started is not None:
            self.duration.labels(route, method).observe(time.perf_counter() - started)
        if method == "POST" and route in SUBMISSIONS:
            self._submission(status, response)
        return response

    def end(self, _exc: BaseException | None) -> None:
        # teardown: runs whatever happened to the request, so the gauge comes back down
        if g.pop("metrics_long_poll", False):
            self.long_polls.dec()

    def _submission(self, status: int, response: Response) -> None:
        body = g.get("body")
        jobs = len(body.jobs) if isinstance(body, BatchSubmission) else 1
        if status == 201:
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            self.submissions.labels("replayed" if replayed else "accepted").inc(jobs)
        elif status >= 400:
            self.submissions.labels("refused").inc(jobs)

    # -- the request log, read from this process ------------------------------------------

    def refresh_request_log(self, resources: Resources) -> None:
        try:
            request_log = resources.mysql.request_log
        except DatabaseUnavailable:
            return  # no MySQL configured: no request log
        with self._refreshing:
            self.log_pending.set(request_log.pending)
            seen_log, seen = self._dropped_seen
            if seen_log != id(request_log):
                seen = 0  # a new log (the process restarted its resources)
            dropped = request_log.dropped
            if dropped > seen:
                self.log_dropped.inc(dropped - seen)
            self._dropped_seen = (id(request_log), max(seen, dropped))

    def start(self, app: Flask) -> None:
        """In multiprocess mode, refresh this process's request-log gauges every second
        (a scrape may reach another process, which cannot read this one's buffer)."""
        if self.multiproc_dir is None or self._refresher is not None:
            return
        resources = resources_of(app)
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(REFRESH_INTERVAL):
                try:
                    self.refresh_request_log(resources)
                except Exception:  # a metric must never take the process down
                    log.exception("refreshing the request-log metrics failed")

        self._refresher = threading.Thread(target=run, name="metrics-refresh", daemon=True)
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(2.0)
            self._refresher = None

    # -- exposition ------------------------------------------------------------------------

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body and its content type: Prometheus' text format, or OpenMetrics when
        ``accept`` asks for it (as the coordinators' and workers' endpoints answer)."""
        encoder, content_type = choose_encoder(accept)
        if self.multiproc_dir is None:
            return encoder(self.registry), content_type
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiproc_dir)
        return encoder(registry), content_type


def of(app: Flask) -> FrontendMetrics:
    metrics: FrontendMetrics = app.extensions[EXTENSION]
    return metrics


def multiproc_dir() -> str | None:
    """The directory of multiprocess mode, if prometheus_client runs in it: it chose when
    first imported, from the environment of that moment."""
    if values.ValueClass is values.MutexValue:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            log.warning(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: "
                "/metrics shows this process's counts only"
            )
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def serve() -> Response:
    metrics = of(current_app)
    with contextlib.suppress(DatabaseUnavailable):
        metrics.refresh_request_log(resources_of(current_app))
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    return Response(body, content_type=content_type)


def init_app(app: Flask) -> None:
    metrics = FrontendMetrics(multiproc_dir())
    app.extensions[EXTENSION] = metrics
    app.before_request(metrics.begin)
    app.after_request(metrics.finish)
    app.teardown_request(metrics.end)
    app.add_url_rule(
        PATH,
        endpoint="metrics",
        view_func=serve,
        methods=["GET"],
        provide_automatic_options=False,
    )
