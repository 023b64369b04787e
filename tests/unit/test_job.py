import json
import time
from typing import Any

import pytest

from zkq.coordinator.errors import InvalidInput, InvalidTransition, PayloadTooLarge
from zkq.coordinator.ids import id_for_time, id_time
from zkq.coordinator.job import (
    TRANSITIONS,
    Attempt,
    AttemptOutcome,
    Job,
    JobSpec,
    JobState,
    Limits,
    check_payload,
    check_transition,
    validate_spec,
)


def test_terminal_states_only_go_back_to_the_queue_by_an_operator() -> None:
    for state in JobState:
        if state.terminal:
            assert TRANSITIONS[state] <= {JobState.PENDING, JobState.SCHEDULED}
    assert not TRANSITIONS[JobState.SUCCEEDED]
    assert not JobState.SCHEDULED.terminal


def test_a_record_using_no_new_field_is_written_as_schema_1_and_reads_back() -> None:
    job = JobSpec("t", {"a": 1}).to_job(1000.0, Limits())
    data = json.loads(job.to_bytes())
    assert data["schema"] == 1 and "run_at" not in data and "retry" not in data
    assert Job.from_bytes(job.to_bytes()) == job


def test_a_delayed_submission_is_scheduled_and_written_as_schema_2() -> None:
    job = JobSpec("t", delay=30, retry={"backoff": "fixed", "delay": 5}).to_job(1000.0, Limits())
    assert job.state == JobState.SCHEDULED and job.run_at == 1030.0
    assert job.scheduled_for == "delay"
    data = json.loads(job.to_bytes())
    assert data["schema"] == 2 and data["retry"] == {"backoff": "fixed", "delay": 5.0}
    assert Job.from_bytes(job.to_bytes()) == job.replace(schema=2)
    due_now = JobSpec("t", run_at=999.0).to_job(1000.0, Limits())
    assert due_now.state == JobState.PENDING and due_now.run_at == 999.0


@pytest.mark.parametrize(
    "changes",
    [
        {"run_at": 1.0, "delay": 1.0},
        {"delay": -1},
        {"delay": True},
        {"run_at": "soon"},
        {"run_at": float("nan")},
        {"delay": 400 * 86400},
        {"retry": {"backoff": "fixed", "base": 2}},
        {"retry": {"backoff": "sometimes"}},
    ],
)
def test_a_bad_time_or_policy_is_refused_with_what_to_change(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        JobSpec("t", **changes).to_job(1000.0, Limits())


def test_check_transition_refuses_what_the_table_does_not_allow() -> None:
    job = Job(id="01M81DJSFMKM5WE6J0X6ERV5QZ", type="t", state=JobState.SUCCEEDED)
    with pytest.raises(InvalidTransition):
        check_transition(job, JobState.CANCELLED)
    check_transition(job.replace(state=JobState.PENDING), JobState.ASSIGNED)


def test_record_round_trips_through_json() -> None:
    job = Job(
        id="01M81DJSFMKM5WE6J0X6ERV5QZ",
        type="resize",
        payload={"a": [1, 2]},
        state=JobState.RUNNING,
        history=(Attempt(1, "w1", 1.0, 2.0, "error", "boom"),),
        children=("01M81DJSFMKM5WE6J0X6ERV5QA",),
    )
    again = Job.from_bytes(job.to_bytes())
    assert again == job
    assert Job.from_dict({**job.to_dict(), "added_later": 1}) == job  # unknown fields ignored


def test_attempt_outcomes_are_stored_as_the_strings_records_always_held() -> None:
    stored = (
        b'{"id":"01M81DJSFMKM5WE6J0X6ERV5QZ","type":"t","state":"pending","history":['
        b'{"number":1,"worker":"w1","started_at":1.0,"ended_at":2.0,"outcome":"timeout",'
        b'"error":"late"},{"number":2,"worker":"w2","started_at":3.0}]}'
    )
    job = Job.from_bytes(stored)
    assert job.history[0].outcome is AttemptOutcome.TIMEOUT
    assert job.history[1].outcome is None  # still running when the record was read
    assert job.to_dict()["history"][0]["outcome"] == "timeout"
    assert b'"outcome":"timeout"' in job.to_bytes()
    assert {o.value for o in AttemptOutcome} >= {
        "succeeded",
        "error",
        "lost",
        "timeout",
        "cancelled",
    }


def test_an_outcome_a_newer_zkq_wrote_keeps_the_record_readable() -> None:
    stored = (
        b'{"id":"01M81DJSFMKM5WE6J0X6ERV5QZ","type":"t","state":"pending","history":['
        b'{"number":1,"worker":"w1","started_at":1.0,"ended_at":2.0,"outcome":"preempted"}]}'
    )
    job = Job.from_bytes(stored)
    assert job.history[0].outcome == "preempted"
    assert b'"outcome":"preempted"' in job.to_bytes()  # and written back as it was


@pytest.mark.parametrize(
    "damaged",
    [
        b"[1, 2]",
        b'"a string"',
        b"null",
        b'{"id":"01M81DJSFMKM5WE6J0X6ERV5QZ","history":[1]}',
        b'{"id":"01M81DJSFMKM5WE6J0X6ERV5QZ","type":"t","children":5}',
        b'{"id":"01M81DJSFMKM5WE6J0X6ERV5QZ","type":"t","schema":"2"}',
        b'{"type":"t"}',
    ],
    ids=["a-list", "a-string", "null", "bad-history", "bad-children", "bad-schema", "no-id"],
)
def test_json_that_is_no_record_is_a_value_error(damaged: bytes) -> None:
    """What readers that set damaged records aside catch (as for bytes that are not
    JSON at all), never an AttributeError from inside."""
    with pytest.raises(ValueError):
        Job.from_bytes(damaged)


def test_a_newer_schema_is_refused_clearly() -> None:
    job = Job(id="01M81DJSFMKM5WE6J0X6ERV5QZ", type="t")
    with pytest.raises(InvalidInput, match="upgrade"):
        Job.from_dict({**job.to_dict(), "schema": 99})


def test_payload_limit() -> None:
    limits = Limits(payload_bytes=100)
    check_payload("x" * 90, limits)
    with pytest.raises(PayloadTooLarge, match="over the limit of 100"):
        check_payload("x" * 100, limits)
    with pytest.raises(InvalidInput):
        check_payload({1, 2}, limits)


@pytest.mark.parametrize(
    ("job_type", "priority", "attempts", "timeout"),
    [
        ("", 0, 1, 1),
        ("a/b", 0, 1, 1),
        ("ok", -1, 1, 1),
        ("ok", 1000, 1, 1),
        ("ok", True, 1, 1),
        ("ok", 0, 0, 1),
        ("ok", 0, 101, 1),
        ("ok", 0, 1, 0),
        ("ok", 0, 1, "5"),
    ],
)
def test_invalid_specs_are_refused(
    job_type: str, priority: int, attempts: int, timeout: float
) -> None:
    with pytest.raises(InvalidInput):
        validate_spec(job_type, priority, attempts, timeout)


def test_a_spec_becomes_a_pending_record_with_a_fresh_id() -> None:
    now = time.time()
    job = JobSpec("t", {"a": 1}, priority=5, timeout=10, tenant="acme").to_job(now, Limits())
    assert (job.type, job.payload, job.priority, job.tenant) == ("t", {"a": 1}, 5, "acme")
    assert job.state == JobState.PENDING and job.created_at == job.updated_at == now
    assert isinstance(job.timeout, float) and abs(id_time(job.id) - now) < 1


def test_a_spec_keeps_its_own_id_only_when_it_is_dated_about_now() -> None:
    now = time.time()
    own = id_for_time(now - 10)
    assert JobSpec("t", job_id=own).to_job(now, Limits()).id == own
    with pytest.raises(InvalidInput, match="dated"):
        JobSpec("t", job_id=id_for_time(now - 3600)).to_job(now, Limits())
    with pytest.raises(PayloadTooLarge):
        JobSpec("t", "x" * 70_000).to_job(now, Limits())
