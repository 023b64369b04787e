"""The frontend's ``/metrics`` without any service running: route templates as labels
(never raw paths), what is counted, and the sum over gunicorn's worker processes in
prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, g
from flask.testing import FlaskClient

from tests.support import FRONTEND_FAMILIES, metric_families
from zkq.frontend import app as app_module
from zkq.frontend import metrics
from zkq.frontend.models import BatchSubmission, JobSubmission

JOB_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def scrape(client: FlaskClient) -> dict[str, Any]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    return metric_families(r.get_data(as_text=True))


def value(families: dict[str, Any], name: str, sample: str | None = None, **labels: str) -> float:
    """The value of the sample with exactly these labels (0 if absent)."""
    for s in families[name].samples:
        if s.name == (sample or name) and s.labels == labels:
            return float(s.value)
    return 0.0


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("/v1/jobs/<job_id:job_id>", "/v1/jobs/{job_id}"),
        ("/v1/jobs/batch", "/v1/jobs/batch"),
        ("/healthz", "/healthz"),
        ("/a/<int:n>/b/<name>", "/a/{n}/b/{name}"),
        ("/files/<path:rest>", "/files/{rest}"),
    ],
)
def test_template_is_the_openapi_spelling_of_a_rule(rule: str, expected: str) -> None:
    assert metrics.template(rule) == expected


def test_requests_are_labelled_by_route_template_never_by_path(client: FlaskClient) -> None:
    for job_id in (JOB_ID, "01BX5ZZKBKACTAV9WEVGEMMVRZ", "not-a-ulid"):
        client.get(f"/v1/jobs/{job_id}")  # no key: 401 (or 400 for the bad id)
    client.get("/nowhere/01BX5ZZKBKACTAV9WEVGEMMVRZ")  # 404, no route
    client.put("/healthz")  # 405: no route for the method either
    client.open("/healthz", method="BREW")  # not a method we name
    client.get("/healthz")
    families = scrape(client)
    assert set(families) >= FRONTEND_FAMILIES
    requests = families["zkq_http_requests"]
    labels = [s.labels for s in requests.samples if s.name == "zkq_http_requests_total"]
    assert {"route": "/v1/jobs/{job_id}", "method": "GET", "status": "401"} in labels
    assert value(
        families, "zkq_http_requests", "zkq_http_requests_total",
        route="/v1/jobs/{job_id}", method="GET", status="401",
    ) == 3  # fmt: skip
    assert {"route": metrics.UNMATCHED, "method": "GET", "status": "404"} in labels
    assert {"route": metrics.UNMATCHED, "method": "PUT", "status": "405"} in labels
    assert {"route": metrics.UNMATCHED, "method": "other", "status": "405"} in labels
    assert {"route": "/healthz", "method": "GET", "status": "200"} in labels
    # no raw path, id or method name leaks into a label
    text = client.get("/metrics").get_data(as_text=True)
    for leak in (JOB_ID, "not-a-ulid", "nowhere", "BREW"):
        assert leak not in text
    assert value(
        families, "zkq_http_request_duration_seconds",
        "zkq_http_request_duration_seconds_count", route="/v1/jobs/{job_id}", method="GET",
    ) == 3  # fmt: skip


def test_metrics_need_no_key_and_are_not_part_of_the_api(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200  # no Authorization header
    assert "/metrics" not in client.get("/v1/openapi.json").get_json()["paths"]
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.get_data(as_text=True).endswith("# EOF\n")
    assert metrics.PATH in app_module.UNLOGGED
    r = client.post("/metrics")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    # the scrape counts itself, once it has answered
    families = scrape(client)
    assert value(
        families, "zkq_http_requests", "zkq_http_requests_total",
        route="/metrics", method="GET", status="200",
    ) >= 1  # fmt: skip


def test_refused_submissions_are_counted(client: FlaskClient) -> None:
    families = scrape(client)
    for outcome in ("accepted", "replayed", "refused"):  # present from the start
        assert value(families, "zkq_submissions", "zkq_submissions_total", outcome=outcome) == 0
    assert client.post("/v1/jobs", json={"type": "echo"}).status_code == 401
    assert client.post("/v1/jobs/batch", json={"jobs": []}).status_code == 401
    assert client.get("/v1/jobs").status_code == 401  # not a submission
    families = scrape(client)
    assert value(families, "zkq_submissions", "zkq_submissions_total", outcome="refused") == 2


def test_each_job_of_a_batch_counts(app: Flask) -> None:
    m = metrics.of(app)
    job = JobSubmission.model_validate({"type": "echo"})
    batch = BatchSubmission.model_validate({"jobs": [{"type": "echo"}] * 5})
    cases: list[tuple[str, Any, int, dict[str, str]]] = [
        ("/v1/jobs/batch", batch, 201, {}),
        ("/v1/jobs", job, 201, {}),
        ("/v1/jobs/batch", batch, 201, {"Idempotent-Replayed": "true"}),
        ("/v1/jobs/batch", batch, 413, {}),
    ]
    for path, body, status, headers in cases:
        with app.test_request_context(path, method="POST"):
            g.body = body
            m.finish(Response(status=status, headers=headers))
    assert m.submissions.labels("accepted")._value.get() == 6
    assert m.submissions.labels("replayed")._value.get() == 5
    assert m.submissions.labels("refused")._value.get() == 5


def test_long_polls_in_progress(app: Flask) -> None:
    seen: list[float] = []

    @app.after_request
    def look(response: Response) -> Response:  # runs before the metrics' own hook
        seen.append(metrics.of(app).long_polls._value.get())
        return response

    client = app.test_client()
    client.get(f"/v1/jobs/{JOB_ID}?wait=5")  # 401 at once, but it asked to wait
    client.get(f"/v1/jobs/{JOB_ID}")
    client.get(f"/v1/jobs/{JOB_ID}?wait=0")
    assert seen == [1.0, 0.0, 0.0]
    assert metrics.of(app).long_polls._value.get() == 0  # back down after


# -- several processes: prometheus_client's multiprocess mode ----------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    from zkq.frontend.app import create_app
    client = create_app({"ZK_HOSTS": "127.0.0.1:1"}).test_client()
    for _ in range(int(sys.argv[1])):
        assert client.get("/healthz").status_code == 200
    if sys.argv[2] == "scrape":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
    """
)


def _child(metrics_dir: Path, requests: int, scrape: bool) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(requests), "scrape" if scrape else "-"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_scrape_sums_every_process_of_the_frontend(tmp_path: Path) -> None:
    # what gunicorn's workers do: each its own process, one directory between them
    _child(tmp_path, 3, scrape=False)
    _child(tmp_path, 4, scrape=False)
    text = _child(tmp_path, 2, scrape=True)
    families = metric_families(text)
    assert set(families) >= FRONTEND_FAMILIES
    assert value(
        families, "zkq_http_requests", "zkq_http_requests_total",
        route="/healthz", method="GET", status="200",
    ) == 9  # fmt: skip
    assert len(list(tmp_path.glob("counter_*.db"))) == 3
