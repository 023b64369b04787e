"""Property-based requests generated from the OpenAPI document (valid and invalid ones),
sent through HAProxy: none may get a 5xx, and every default check holds (status codes,
content types and bodies as documented, valid data accepted, 405s with a true Allow).

Two phases, both sized by ``ZKQ_SCHEMATHESIS_EXAMPLES`` (default 30, a minute or two for
``make test``):

- each operation on its own, up to that many examples each;
- stateful: scenarios that follow the document's links (a submitted job's id into
  ``GET`` and ``DELETE /v1/jobs/{job_id}``), a third as many scenarios of up to 10 steps,
  randomised (the operations phase is derandomised).

The schema is loaded from the document the code generates (the test collects it before
the stack runs); the first test checks that the stack serves that very document.  The
cases sent are counted and printed at the end (``-s`` shows it).  A longer run::

    ZKQ_SCHEMATHESIS_EXAMPLES=600 .venv/bin/pytest -s tests/cluster/test_schemathesis.py
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

import zkq.frontend.routes  # noqa: F401 - registers the routes the document describes
from tests.cluster.conftest import Stack
from zkq.frontend.openapi import document

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("ZKQ_SCHEMATHESIS_EXAMPLES", "30"))
#: a long-poll on a job no worker serves waits its whole ``wait``: keep the runs short
MAX_WAIT = 0.5

schema = schemathesis.openapi.from_dict(document())
#: cases sent, by phase and status class ("stateful", "4xx"): printed at the end
SENT: collections.Counter[tuple[str, str]] = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    total = sum(SENT.values())
    by = ", ".join(f"{phase} {status}: {n}" for (phase, status), n in sorted(SENT.items()))
    print(f"\nschemathesis: {total} cases ({by}); {EXAMPLES} examples per operation")


def _count(phase: str, response: requests.Response) -> None:
    SENT[(phase, f"{response.status_code // 100}xx")] += 1


def _short_wait(case: schemathesis.Case) -> None:
    query: Any = case.query
    if isinstance(query, dict) and isinstance(query.get("wait"), int | float):
        query["wait"] = min(query["wait"], MAX_WAIT)


def _excluded(case: schemathesis.Case) -> list[Any]:
    """Checks that do not apply to this case.  A list cursor is sealed for the caller's
    tenant (``frontend/cursors.py``): one the API did not give out is refused with a 400,
    and no schema can describe a MAC, so a generated cursor is never "valid data"; nor is
    a generated time (``since``/``until``: a duration ago or an ISO-8601 time)."""
    query: Any = case.query
    if isinstance(query, dict) and {"cursor", "since", "until"} & set(query):
        return [positive_data_acceptance]
    # a bulk body must narrow the selection (type, state or a time), and its times must
    # read as times (`2h`, ISO-8601): rules of the values together that no schema states
    if case.path.startswith("/v1/jobs/bulk/"):
        return [positive_data_acceptance]
    # a job's time must lie within 366 days of the server's now, and run_at and delay
    # exclude each other: rules of the clock and of values together.  A schedule needs one
    # of cron and every, a cron that parses and fires, a real time zone: rules no schema
    # states
    if (case.path.startswith("/v1/jobs") and _timed(case.body)) or (
        case.path == "/v1/schedules" and case.method.upper() == "POST"
    ):
        return [positive_data_acceptance]
    return []


def _timed(body: Any) -> bool:
    items = body.get("jobs", [body]) if isinstance(body, dict) else []
    return any(
        isinstance(item, dict) and (item.get("run_at") is not None or item.get("delay") is not None)
        for item in (items if isinstance(items, list) else [])
    )


def test_the_stack_serves_this_document(stack: Stack, http: requests.Session) -> None:
    served = http.get(f"{stack.url}/v1/openapi.json", timeout=10).json()
    assert served == document()


def test_submitted_jobs_link_to_their_reads_and_cancels() -> None:
    links = {
        link["operationId"]
        for path in ("/v1/jobs", "/v1/jobs/batch")
        for link in document()["paths"][path]["post"]["responses"]["201"]["links"].values()
    }
    assert links == {"get_job", "cancel_job"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    print_blob=True,
)
def test_no_server_errors(case: schemathesis.Case, stack: Stack) -> None:
    _short_wait(case)
    response = case.call(base_url=stack.url, headers=stack.auth(), timeout=30)
    _count("operations", response)
    case.validate_response(response, excluded_checks=_excluded(case))


def test_stateful_scenarios_follow_the_links(stack: Stack) -> None:
    started: list[int] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            started.append(1)

        def before_call(self, case: schemathesis.Case) -> None:
            _short_wait(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": stack.url, "headers": stack.auth(), "timeout": 30}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            _count("stateful", response)

        def validate_response(
            self,
            response: Any,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            # "use after free" takes DELETE for deletion; here it cancels, and a cancelled
            # job stays readable (as `cancelled`) for ever, as every accepted job does
            case.validate_response(
                response,
                excluded_checks=[use_after_free, *_excluded(case)],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    wanted = max(3, EXAMPLES // 3)
    # The links draw from what the server answered, which hypothesis cannot replay: on a
    # long run it may call that an inconsistent strategy.  As schemathesis' own runner
    # does, go on with fresh scenarios then; a real failure (FailureGroup) still fails.
    for _ in range(20):
        try:
            Workflow.run(
                settings=settings(
                    max_examples=wanted - len(started),
                    stateful_step_count=10,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                    print_blob=True,
                )
            )
            break
        except FlakyStrategyDefinition:
            if len(started) >= wanted:
                break
    assert len(started) >= wanted and SENT[("stateful", "2xx")] > 0
