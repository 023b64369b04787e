"""The surfaces that carry ``run_at``/``delay``/``retry``: the HTTP body models, the
HTTP client's bodies, the idempotency hash and ``zkq submit``'s flags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
import pytest
from pydantic import BaseModel, ValidationError

from zkq.coordinator.backoff import Backoff
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import JobSpec
from zkq.frontend import idempotency
from zkq.frontend.api import describe
from zkq.frontend.models import JobOut, JobSubmission
from zkq.frontend.timing_models import ExponentialBackoff, FixedBackoff, retry_dict
from zkq.http_bodies import submission
from zkq.timing_options import parse_at, retry_policy

XMAS = 1798135200.0  # 2026-12-24T18:00:00Z


def refused(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        JobSubmission.model_validate({"type": "t", **body})
    return describe(caught.value)


def test_the_body_takes_run_at_as_a_number_or_rfc3339_with_its_zone() -> None:
    assert JobSubmission.model_validate({"type": "t", "run_at": XMAS}).run_at == XMAS
    text = JobSubmission.model_validate({"type": "t", "run_at": "2026-12-24T19:00:00+01:00"})
    assert text.run_at == XMAS
    assert refused({"run_at": "2026-12-24T18:00:00"}).startswith("run_at:")
    assert refused({"run_at": "tomorrow"}).startswith("run_at:")
    assert refused({"run_at": True}).startswith("run_at:")
    assert refused({"run_at": -5}).startswith("run_at:")


def test_the_body_takes_a_delay_alone() -> None:
    assert JobSubmission.model_validate({"type": "t", "delay": 30}).delay == 30.0
    assert refused({"delay": -1}).startswith("delay:")
    assert refused({"delay": "30"}).startswith("delay:")
    assert refused({"delay": 1e9}).startswith("delay:")
    assert "run_at or delay" in refused({"delay": 5, "run_at": XMAS})


def test_retry_is_a_strict_union_held_to_the_coordinators_bounds() -> None:
    body = JobSubmission.model_validate({"type": "t", "retry": {"backoff": "fixed", "delay": 30}})
    assert retry_dict(body.retry) == Backoff.fixed(30).to_dict()
    exp = JobSubmission.model_validate({"type": "t", "retry": {"backoff": "exponential"}})
    assert retry_dict(exp.retry) == Backoff().to_dict()
    assert retry_dict(None) is None
    assert refused({"retry": {"backoff": "fixed", "delay": 30, "base": 1}}).startswith("retry.")
    assert "retry.exponential.factor" in refused(
        {"retry": {"backoff": "exponential", "factor": 50}}
    )
    assert "retry.fixed.jitter" in refused({"retry": {"backoff": "fixed", "delay": 1, "jitter": 2}})
    assert refused({"retry": {"backoff": "sometimes"}}).startswith("retry:")
    assert refused({"retry": {"delay": 3}}).startswith("retry:")
    assert refused({"retry": "fixed"}).startswith("retry:")
    assert refused({"retry": {"backoff": "fixed"}}).startswith("retry.fixed.delay")


@pytest.mark.parametrize("model", [ExponentialBackoff, FixedBackoff])
def test_the_documented_bounds_are_the_coordinators(model: type[BaseModel]) -> None:
    """The document states each bound; backoff.py decides: the two must agree."""
    kind = model.model_fields["backoff"].annotation.__args__[0]  # type: ignore[union-attr]
    for name, field in model.model_json_schema()["properties"].items():
        if name == "backoff":
            continue
        low, high = field["minimum"], field["maximum"]
        base = {"backoff": kind, "delay": 1.0} if kind == "fixed" else {"backoff": kind}
        for good in (low, high):
            Backoff.from_dict({**base, name: good})
        for bad in (low - 0.0005, high + 1):
            with pytest.raises(InvalidInput):
                Backoff.from_dict({**base, name: bad})


def test_a_job_shows_its_timing_fields_only_when_set() -> None:
    plain = JobSpec("t").to_job(100.0, limits())
    shown = JobOut.of(plain).model_dump(mode="json")
    assert not {"run_at", "scheduled_for", "retry", "schedule", "lane"} & set(shown)
    later = JobSpec("t", delay=60, retry={"backoff": "none"}).to_job(100.0, limits())
    shown = JobOut.of(later).model_dump(mode="json")
    assert shown["state"] == "scheduled" and shown["run_at"] == 160.0
    assert shown["scheduled_for"] == "delay" and shown["retry"] == {"backoff": "none"}


def limits() -> Any:
    from zkq.coordinator.job import Limits

    return Limits()


def test_a_replayed_body_without_the_new_fields_hashes_as_it_always_did() -> None:
    old = {"type": "t", "payload": None, "priority": 0, "max_attempts": 1, "timeout": 300.0}
    body = JobSubmission.model_validate({"type": "t"})
    assert idempotency.hashed(body) == old
    later = JobSubmission.model_validate({"type": "t", "delay": 5})
    assert idempotency.hashed(later) == {**old, "delay": 5.0}


def test_the_http_client_sends_timing_in_the_apis_form() -> None:
    spec = JobSpec("t", 1, delay=30, retry=Backoff.fixed(5))  # type: ignore[arg-type]
    body = submission(spec)
    assert body["delay"] == 30 and body["retry"] == {"backoff": "fixed", "delay": 5.0}
    assert "run_at" not in body
    aware = JobSpec("t", run_at=datetime(2026, 12, 24, 18, tzinfo=UTC))  # type: ignore[arg-type]
    assert submission(aware)["run_at"] == XMAS
    with pytest.raises(InvalidInput, match="naive"):
        submission(JobSpec("t", run_at=datetime(2026, 12, 24)))  # type: ignore[arg-type]
    assert set(submission({"type": "t"})) == {"type"}


def test_the_backoff_flags_make_the_policy_and_name_the_flag_at_fault() -> None:
    none = dict.fromkeys(("base", "factor", "max", "jitter", "delay"))
    assert retry_policy(None, none) is None
    assert retry_policy("none", none) == {"backoff": "none"}
    assert retry_policy(None, {**none, "delay": 30.0}) == Backoff.fixed(30).to_dict()
    assert retry_policy(None, {**none, "base": 2.0}) == Backoff(base=2).to_dict()
    with pytest.raises(click.UsageError, match="--backoff-factor"):
        retry_policy("exponential", {**none, "factor": 50.0})
    with pytest.raises(click.UsageError, match="--backoff fixed does not take"):
        retry_policy("fixed", {**none, "delay": 3.0, "base": 1.0})
    assert parse_at("2026-12-24T18:00:00Z") == XMAS and parse_at(None) is None
    with pytest.raises(click.BadParameter, match="zone"):
        parse_at("2026-12-24 18:00")
