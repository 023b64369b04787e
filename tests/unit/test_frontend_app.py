"""The Flask app without any service running: what it answers on its own, and that it
fails closed when it cannot reach MySQL or ZooKeeper."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError

from zkq.coordinator import errors as zkq_errors
from zkq.coordinator.errors import ConfigError
from zkq.frontend import errors
from zkq.frontend.app import create_app
from zkq.frontend.models import BatchSubmission, JobSubmission, ListQuery
from zkq.frontend.resources import of


def error_code(response: object) -> str:
    body = response.get_json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


def test_liveness_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.get_json() == {"status": "not ready", "zookeeper": False, "mysql": False}


def test_openapi_document(client: FlaskClient) -> None:
    doc = client.get("/v1/openapi.json").get_json()
    assert set(doc["paths"]) == {
        "/v1/jobs",
        "/v1/jobs/batch",
        "/v1/jobs/{job_id}",
        "/v1/jobs/bulk/cancel",
        "/v1/jobs/bulk/requeue",
        "/v1/workers",
        "/v1/queues",
        "/healthz",
        "/readyz",
        "/v1/openapi.json",
        "/v1/schedules",
        "/v1/schedules/{name}",
        "/v1/schedules/{name}/pause",
        "/v1/schedules/{name}/resume",
    }
    assert set(doc["paths"]["/v1/jobs/{job_id}"]) == {"get", "delete"}
    wait = [p for p in doc["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"] if p["in"] == "query"]
    assert [p["name"] for p in wait] == ["wait"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_authentication_fails_closed_without_mysql(client: FlaskClient) -> None:
    r = client.post("/v1/jobs", json={"type": "echo"})
    assert r.status_code == 401 and error_code(r) == "unauthenticated"
    r = client.post(
        "/v1/jobs", json={"type": "echo"}, headers={"Authorization": "Bearer zkq_" + "a" * 43}
    )
    assert r.status_code == 503 and error_code(r) == "database_unavailable"
    assert r.headers["Retry-After"] == "2"


def test_routing_errors_have_the_one_shape(client: FlaskClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = client.put("/v1/jobs")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
    assert r.headers["Allow"] == "GET, HEAD, POST"
    r = client.open("/v1/jobs/batch", method="OPTIONS")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_config_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKQ_MAX_WAIT", "5")
    monkeypatch.setenv("ZKQ_ROOT", "/elsewhere")
    app = create_app({"MAX_WAIT": 7})
    assert app.config["MAX_WAIT"] == 7  # the test override wins over the environment
    assert app.config["ROOT"] == "/elsewhere"
    assert app.config["ZK_TIMEOUT"] == 5.0  # a default
    monkeypatch.setenv("ZKQ_MAX_BATCH", "0")
    with pytest.raises(ConfigError):
        create_app()


def test_models_are_strict() -> None:
    assert JobSubmission.model_validate({"type": "a.b-c_d", "timeout": 3}).timeout == 3.0
    for bad in (
        {"type": "echo", "priority": "5"},
        {"type": "echo", "priority": True},
        {"type": "echo", "max_attempts": 0},
        {"type": "echo", "timeout": 0},
        {"type": ".hidden"},
        {"type": "x" * 65},
        {"type": "echo", "extra": 1},
    ):
        with pytest.raises(ValidationError):
            JobSubmission.model_validate(bad)
    with pytest.raises(ValidationError):
        BatchSubmission.model_validate({"jobs": [{"type": "noop"}] * 1001})
    assert ListQuery.model_validate({"limit": "10"}).limit == 10  # query strings convert
    with pytest.raises(ValidationError):
        ListQuery.model_validate({"limit": "10", "colour": "red"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (zkq_errors.InvalidInput("x"), 400),
        (zkq_errors.InvalidJobId("x"), 400),
        (zkq_errors.MalformedRequest("x"), 400),
        (zkq_errors.PayloadTooLarge("x"), 413),
        (zkq_errors.BodyTooLarge("x"), 413),
        (zkq_errors.Unauthenticated("x"), 401),
        (zkq_errors.Forbidden("x"), 403),
        (zkq_errors.JobNotFound("01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404),
        (zkq_errors.NotFound("x"), 404),
        (zkq_errors.ApiKeyNotFound("x"), 404),
        (zkq_errors.WorkerNotFound("x"), 404),
        (zkq_errors.MethodNotAllowed("x"), 405),
        (zkq_errors.InvalidTransition("x"), 409),
        (zkq_errors.JobIdTaken("x"), 409),
        (zkq_errors.IdempotencyKeyReused("x"), 409),
        (zkq_errors.UnsupportedMediaType("x"), 415),
        (zkq_errors.RateLimited("x", 3), 429),
        (zkq_errors.Unavailable("x"), 503),
        (zkq_errors.Timeout("x"), 503),
        (zkq_errors.DatabaseUnavailable("x"), 503),
        (zkq_errors.BadGateway("x"), 502),
        (zkq_errors.GatewayTimeout("x"), 504),
        (zkq_errors.DatabaseError("x"), 500),
        (zkq_errors.InternalError("x"), 500),
        (RuntimeError("bug"), 500),
    ],
)
def test_one_status_table(error: BaseException, status: int) -> None:
    assert errors.status_of(error) == status


@pytest.mark.parametrize("cls", [zkq_errors.CODES[code] for code in sorted(zkq_errors.CODES)])
def test_what_the_frontend_answers_the_http_client_raises_again(
    app: Flask, cls: type[zkq_errors.ZkqError]
) -> None:
    """One tree, one table of codes: an error body names the class that was raised, or
    says the server's bug (500) without its details."""
    with app.test_request_context("/v1/jobs"):
        response = errors.error_response(cls.from_message("it happened"))
    body = response.get_json()["error"]
    again = zkq_errors.from_code(body["code"], body["message"])
    if response.status_code == 500:
        assert type(again) is zkq_errors.InternalError
    else:
        assert type(again) is cls and str(again) == "it happened"


def test_readiness_rides_out_a_short_loss_of_zookeeper(app: Flask, client: FlaskClient) -> None:
    """Ready while connected until less than ZK_READY_GRACE ago; never connected, or lost
    for longer, not ready (the app's ZooKeeper is a dead port: it never connects)."""
    gate = of(app).zk
    assert not gate.connected and client.get("/readyz").get_json()["zookeeper"] is False
    gate._seen_connected = time.monotonic() - gate.ready_grace / 2  # lost a moment ago
    assert client.get("/readyz").get_json()["zookeeper"] is True
    gate._seen_connected = time.monotonic() - gate.ready_grace - 0.1  # lost for longer
    assert client.get("/readyz").get_json()["zookeeper"] is False
