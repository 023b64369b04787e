"""One definition of a valid job type and of valid JSON, and every entry point holding to it.

The refused values were found against the archive's real MariaDB column
(tests/integration/test_archive.py proves the boundary there); here, that each way in
refuses them with the same :class:`InvalidInput` before anything is written.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from zkq.coordinator.errors import InvalidInput, PayloadTooLarge
from zkq.coordinator.job import JobSpec, Limits, check_result, validate_spec
from zkq.coordinator.validation import MAX_DEPTH, check_job_type, check_json
from zkq.frontend.api import render
from zkq.frontend.models import JobOut, JobSubmission
from zkq.http_client import HttpClient
from zkq.worker.registry import JobContext


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


#: what Python's json lets through and zkq cannot keep, with words of the message
REFUSED: list[tuple[Any, str]] = [
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    ({"a": [1, float("-inf")]}, "payload['a'][1]"),
    ("\ud800", "lone surrogate"),
    ({"\udc00": 1}, "lone surrogate"),
    (nested(MAX_DEPTH + 1), "deeper"),
    (nested(100_000), "deeper"),
    ({1: "a"}, "not a string"),
    ({1, 2}, "set"),
    (b"bytes", "bytes"),
]

ACCEPTED: list[Any] = [
    None,
    True,
    10**400,
    -0.0,
    1e308,
    "\x00",
    "\U0001f600 é",
    nested(MAX_DEPTH),
    {"a": (1, 2), "b": {"c": None}},
]


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_what_json_cannot_carry_is_refused(value: Any, words: str) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        check_json(value)
    assert words in str(caught.value)


@pytest.mark.parametrize("value", ACCEPTED)
def test_everything_else_json_can_say_is_accepted(value: Any) -> None:
    check_json(value)


@pytest.mark.parametrize(
    "job_type", ["", "é", "x" * 65, ".hidden", "a/b", "a b", "a\n", "٣", 5, None]
)
def test_job_types_are_ascii_names(job_type: Any) -> None:
    with pytest.raises(InvalidInput):
        check_job_type(job_type)
    with pytest.raises(InvalidInput):
        validate_spec(job_type, 0, 1, 1)


def test_a_job_type_the_api_accepts_every_entry_point_accepts() -> None:
    for job_type in ["a", "resize-image_v2.1", "_", "x" * 64]:
        assert check_job_type(job_type) == job_type
        JobSubmission.model_validate({"type": job_type})
    for job_type in ["é", ".a", "x" * 65]:
        with pytest.raises(ValueError):
            JobSubmission.model_validate({"type": job_type})


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_the_python_client_and_cli_refuse_before_writing(value: Any, words: str) -> None:
    # Client.submit and `zkq submit` make their record with JobSpec.to_job
    with pytest.raises(InvalidInput):
        JobSpec("t", value).to_job(time.time(), Limits())


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_the_http_client_refuses_before_sending(value: Any, words: str) -> None:
    # nothing listens there: a request would raise Unavailable, not InvalidInput
    with HttpClient("http://127.0.0.1:9", "zkq_none", timeout=0.1, retries=0) as client:
        with pytest.raises(InvalidInput):
            client.submit("t", value)
        with pytest.raises(InvalidInput):
            client.submit_batch([{"type": "t", "payload": value}])
        with pytest.raises(InvalidInput):
            client.submit("é", None)


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_spawn_refuses_at_the_line_that_asks(value: Any, words: str) -> None:
    ctx = JobContext(job_id="01M81DJSFMKM5WE6J0X6ERV5QZ", type="t", attempt=1, max_attempts=1)
    with pytest.raises(InvalidInput):
        ctx.spawn("child", value)
    with pytest.raises(InvalidInput):
        ctx.spawn("é", None)
    assert ctx.children == []


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_a_result_json_cannot_carry_fails_the_attempt(value: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_result(value, Limits())
    assert str(caught.value).startswith("result")


def test_size_is_counted_after_the_checks() -> None:
    with pytest.raises(PayloadTooLarge, match="over the limit of 100"):
        JobSpec("t", "x" * 100).to_job(time.time(), Limits(payload_bytes=100))


BODIES: list[tuple[bytes, str]] = [
    (b'{"type":"t","payload":1e400}', "out of range"),
    (b'{"type":"t","payload":-1e400}', "out of range"),
    (b'{"type":"t","payload":NaN}', "NaN is not JSON"),
    (b'{"type":"t","payload":"\\ud800"}', "lone surrogate"),
    (b'{"type":"t","payload":{"\\udc00":1}}', "lone surrogate"),
    (b'{"type":"t","payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests"),
    (b'{"type":"t","payload":' + b"[" * 40 + b"]" * 40 + b"}", "deeper than 30"),
]


@pytest.mark.parametrize(("body", "words"), BODIES)
def test_the_api_answers_400_before_writing(
    client: FlaskClient, body: bytes, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the app of tests/unit/conftest.py has no MySQL, so skip the key check: the body is
    # checked before anything reaches ZooKeeper, which this app does not have either
    monkeypatch.setattr("zkq.frontend.auth.require", lambda scope: None)
    monkeypatch.setattr(
        "zkq.frontend.routes.jobs.current_key", lambda: type("K", (), {"tenant": "acme"})()
    )
    r = client.post("/v1/jobs", data=body, content_type="application/json")
    assert r.status_code == 400, r.text
    assert words in r.json["error"]["message"]


def test_a_record_stored_before_these_checks_still_renders() -> None:
    from zkq.coordinator.job import Job

    job = Job(
        id="01M81DJSFMKM5WE6J0X6ERV5QZ",
        type="t",
        payload={"\udc00": ["\ud800", float("nan")]},
        result=float("inf"),
    )
    out = json.loads(render(JobOut.of(job)))
    assert out["payload"] == {"\udc00": ["\ud800", None]} and out["result"] is None


def test_messages_zkq_writes_into_records_are_json_everything_keeps() -> None:
    from zkq.coordinator.job import short, truncate_traceback

    raw = b"caf\xff".decode("utf-8", "surrogateescape")  # a handler's decoded bytes
    for text in (short(f"bad input {raw}"), truncate_traceback(f"Traceback: {raw}")):
        assert text is not None and "\\udcff" in text
        check_json(text, "message")
    assert short("plain ✓") == "plain ✓"
