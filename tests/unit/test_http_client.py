"""``zkq.HttpClient`` against a scripted local HTTP server: retries keep the same
Idempotency-Key, errors come back as the core's classes, chosen by the server's code."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from zkq.coordinator.errors import (
    CODES,
    BadGateway,
    Forbidden,
    InvalidTransition,
    JobNotFound,
    MalformedRequest,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
    WaitTimeout,
    ZkqError,
)
from zkq.coordinator.job import JobSpec
from zkq.dev.ports import free_port
from zkq.http_client import HttpClient

JOB_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
JOB: dict[str, Any] = {
    "id": JOB_ID,
    "type": "echo",
    "state": "pending",
    "payload": 1,
    "priority": 0,
    "max_attempts": 1,
    "timeout": 300.0,
    "attempts": 0,
    "created_at": 1.0,
    "updated_at": 1.0,
}


class Script:
    """What the server answers, request by request: ("drop",) closes the connection."""

    def __init__(self) -> None:
        self.answers: list[tuple[Any, ...]] = []
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            answer = script.answers.pop(0)
            if answer[0] == "drop":
                self.close_connection = True
                self.connection.close()
                return
            status, payload, *headers = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": f"{code} happened"}}


def test_submit_retries_with_the_same_idempotency_key(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [("drop",), (503, error("unavailable"), ("Retry-After", "0")), (201, JOB)]
    client = HttpClient(url, "zkq_secret", timeout=5, backoff=0.01)
    job = client.submit("echo", 1)
    assert job.id == JOB_ID
    posts = [s for s in script.seen if s["method"] == "POST"]
    assert len(posts) == 3
    keys = {s["headers"]["Idempotency-Key"] for s in posts}
    assert len(keys) == 1  # one logical submit, one key
    assert {s["body"] for s in posts} == {posts[0]["body"]}
    assert posts[0]["headers"]["Authorization"] == "Bearer zkq_secret"
    # the next submit is another logical submission: a new key
    script.answers = [(201, JOB)]
    client.submit("echo", 1)
    assert script.seen[-1]["headers"]["Idempotency-Key"] not in keys


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "malformed_request", MalformedRequest),
        (413, "payload_too_large", PayloadTooLarge),
        (401, "unauthenticated", Unauthenticated),
        (403, "forbidden", Forbidden),
        (404, "job_not_found", JobNotFound),
        (409, "invalid_transition", InvalidTransition),
        (429, "rate_limited", RateLimited),
    ],
)
def test_errors_are_the_core_classes_and_not_retried(
    server: tuple[str, Script], status: int, code: str, cls: type[ZkqError]
) -> None:
    url, script = server
    script.answers = [(status, error(code), ("Retry-After", "7"))]
    client = HttpClient(url, "k", backoff=0.01)
    with pytest.raises(cls) as raised:
        client.get(JOB_ID)
    assert type(raised.value) is cls and raised.value.code == code
    assert raised.value.status == status and raised.value.retry_after == 7.0
    assert str(raised.value) == f"{code} happened"
    assert len(script.seen) == 1


def test_every_code_of_the_tree_comes_back_as_its_class(server: tuple[str, Script]) -> None:
    url, script = server
    client = HttpClient(url, "k", retries=0, backoff=0.01)
    for code, cls in CODES.items():
        script.answers = [(400, error(code))]
        with pytest.raises(ZkqError) as raised:
            client.get(JOB_ID)
        assert type(raised.value) is cls, code
    # a code this version does not know still says what the server said
    script.answers = [(418, error("teapot"))]
    with pytest.raises(ZkqError) as unknown:
        client.get(JOB_ID)
    assert type(unknown.value) is ZkqError and unknown.value.code == "teapot"
    assert unknown.value.status == 418


def test_rate_limited_keeps_its_retry_after_and_is_not_retried(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.answers = [(429, error("rate_limited"), ("Retry-After", "3"))]
    with pytest.raises(RateLimited) as raised:
        HttpClient(url, "k", backoff=0.01).submit("echo", 1)
    assert raised.value.retry_after == 3.0 and len(script.seen) == 1


def test_gives_up_after_its_retries(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, error("unavailable"))] * 3
    client = HttpClient(url, "k", retries=2, backoff=0.01)
    with pytest.raises(Unavailable) as raised:
        client.get(JOB_ID)
    assert raised.value.code == "unavailable" and raised.value.status == 503
    assert len(script.seen) == 3
    nowhere = HttpClient(f"http://127.0.0.1:{free_port()}", "k", retries=1, backoff=0.01)
    with pytest.raises(Unavailable) as unreachable:
        nowhere.get(JOB_ID)
    assert type(unreachable.value) is Unavailable and unreachable.value.status is None


def test_a_proxy_error_without_a_code_is_named_by_its_status(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.answers = [(502, "<html>bad gateway</html>"), (201, JOB)]
    assert HttpClient(url, "k", backoff=0.01).submit("echo", 1).id == JOB_ID  # retried
    script.answers = [(502, "<html>bad gateway</html>")]
    with pytest.raises(BadGateway):
        HttpClient(url, "k", retries=0).get(JOB_ID)
    script.answers = [(500, "<html>oops</html>")]
    with pytest.raises(ZkqError) as other:
        HttpClient(url, "k", retries=0).get(JOB_ID)
    assert other.value.code == "http_error" and other.value.status == 500


def test_a_batch_takes_handle_specs(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(201, {"jobs": [JOB]})]
    jobs = HttpClient(url, "k").submit_batch([JobSpec("echo", 1, priority=4), {"type": "noop"}])
    assert [j.id for j in jobs] == [JOB_ID]
    sent = json.loads(script.seen[0]["body"])["jobs"]
    assert sent[0] == {
        "type": "echo",
        "payload": 1,
        "priority": 4,
        "max_attempts": 1,
        "timeout": 300.0,
    }
    assert sent[1] == {"type": "noop"}


def test_wait_long_polls_until_the_job_ends(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, JOB), (200, {**JOB, "state": "succeeded", "result": 5})]
    job = HttpClient(url, "k").wait(JOB_ID, timeout=60)
    assert str(job.state) == "succeeded" and job.result == 5
    assert len(script.seen) == 2 and all("wait=" in s["path"] for s in script.seen)


def test_wait_raises_on_timeout_with_the_record_as_it_stood(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, JOB)]  # still pending when the time is up
    with pytest.raises(WaitTimeout, match="still pending") as raised:
        HttpClient(url, "k").wait(JOB_ID, timeout=0)
    assert isinstance(raised.value, TimeoutError)
    assert raised.value.job is not None and raised.value.job.id == JOB_ID
    assert str(raised.value.job.state) == "pending" and len(script.seen) == 1


def test_the_ca_file_comes_from_the_argument_else_the_environment(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zkq.coordinator.errors import ConfigError

    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until a TLS handshake")
    monkeypatch.delenv("ZKQ_CA_FILE", raising=False)
    assert HttpClient("https://h", "k").verify is True  # the system's CAs
    monkeypatch.setenv("ZKQ_CA_FILE", str(ca))
    assert HttpClient("https://h", "k").verify == str(ca)
    other = tmp_path / "other.pem"
    other.write_text("")
    assert HttpClient("https://h", "k", ca_file=other).verify == str(other)
    # a file that is not there is named at once, not found out in a TLS handshake
    with pytest.raises(ConfigError, match="ZKQ_CA_FILE: cannot read the CA file"):
        monkeypatch.setenv("ZKQ_CA_FILE", str(tmp_path / "missing.pem"))
        HttpClient("https://h", "k")


def test_a_bulk_action_follows_the_cursor_and_sums_the_steps(server: tuple[str, Script]) -> None:
    url, script = server

    def step(done: int, skipped: int, cursor: str | None) -> tuple[int, dict[str, Any]]:
        counts = {"matched": done + skipped, "done": done, "skipped": skipped, "failed": 0}
        return 200, {"action": "cancel", "dry_run": False, **counts, "next_cursor": cursor}

    script.answers = [step(3, 0, "c1"), step(2, 1, "c2"), step(1, 0, None)]
    total = HttpClient(url, "k").bulk_cancel(type="echo", state=["pending"], since="2h")
    assert (total["matched"], total["done"], total["skipped"], total["failed"]) == (7, 6, 1, 0)
    sent = [json.loads(s["body"]) for s in script.seen]
    assert [s["path"] for s in script.seen] == ["/v1/jobs/bulk/cancel"] * 3
    assert sent[0] == {"type": "echo", "state": ["pending"], "since": "2h"}
    assert [s.get("cursor") for s in sent] == [None, "c1", "c2"]


def test_a_list_asks_for_its_order_and_time_window(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"jobs": [JOB], "next_cursor": None})]
    page = HttpClient(url, "k").list(order="newest", since="10m", until=1700000000, tenant="shop")
    assert [j.id for j in page.jobs] == [JOB_ID]
    path = script.seen[0]["path"]
    assert "order=newest" in path and "since=10m" in path and "until=1700000000" in path
    assert "tenant=shop" in path
