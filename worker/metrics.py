"""Prometheus metrics of a worker (one registry per worker).

- ``zkq_worker_jobs_total{type, outcome}``: outcome is succeeded, failed (the attempt
  raised), fenced (the completion was refused: the job had been taken back), abandoned
  (the session was lost while it ran) or revoked (the worker stopped the attempt: it was
  cancelled, taken back at its lease, or its session ended; counted when it was stopped)
- ``zkq_worker_job_duration_seconds{type}``: handler run time
- ``zkq_worker_job_wait_seconds{type}``: from submission to the start of the attempt
- ``zkq_worker_slots``, ``zkq_worker_busy_slots``
- ``zkq_worker_lost_slots``: slots whose revoked handler could not be stopped
- ``zkq_worker_revocations_total{reason, end}``: revoked attempts by why (cancelled, lease or
  session) and how the handler ended (returned, async_exc, sigterm, sigkill,
  died, lost)
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class WorkerMetrics:
    def __init__(
        self, slots: int, busy: Callable[[], int], lost: Callable[[], int] = lambda: 0
    ) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "zkq_worker_jobs",
            "Attempts ended, by outcome",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "zkq_worker_job_duration_seconds",
            "Handler run time",
            ["type"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "zkq_worker_job_wait_seconds",
            "Submission to start of the attempt",
            ["type"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        Gauge("zkq_worker_slots", "Slots this worker offers", registry=self.registry).set(slots)
        Gauge("zkq_worker_busy_slots", "Attempts in progress", registry=self.registry).set_function(
            busy
        )
        Gauge(
            "zkq_worker_lost_slots",
            "Slots whose revoked handler could not be stopped and still runs",
            registry=self.registry,
        ).set_function(lost)
        self.revocations = Counter(
            "zkq_worker_revocations",
            "Revoked attempts, by reason and by how the handler ended",
            ["reason", "end"],
            registry=self.registry,
        )

    def ended(self, job_type: str, outcome: str, seconds: float | None = None) -> None:
        self.jobs.labels(job_type, outcome).inc()
        if seconds is not None:
            self.duration.labels(job_type).observe(seconds)

    def revoked(self, reason: str, end: str, _seconds: float = 0.0) -> None:
        self.revocations.labels(reason, end).inc()

    def started(self, job_type: str, waited: float) -> None:
        self.wait.labels(job_type).observe(max(0.0, waited))
