"""``import zkq``: the whole public surface, nothing more, and cheap to import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import zkq
from zkq.coordinator import errors
from zkq.coordinator.client import Client
from zkq.http_client import HttpClient
from zkq.worker.registry import JobContext, Submitter, handler, set_client


def test_the_names_are_the_cores_own() -> None:
    assert zkq.Client is Client and zkq.HttpClient is HttpClient
    assert zkq.handler == handler and zkq.set_client is set_client
    assert zkq.JobContext is JobContext
    assert set(dir(zkq)) >= set(zkq.__all__)


def test_a_handle_submits_through_either_client() -> None:
    clients: list[type[Submitter]] = [Client, HttpClient]  # what mypy checks
    for cls in clients:
        params = inspect.signature(cls.submit).parameters
        assert list(params)[:3] == ["self", "job_type", "payload"]
        assert {"priority", "max_attempts", "timeout"} <= set(params)


def test_the_whole_error_tree_and_only_it_is_exported() -> None:
    tree = {cls.__name__ for cls in errors.CODES.values()}
    exported = {name for name in zkq.__all__ if isinstance(getattr(zkq, name), type)}
    assert {n for n in exported if issubclass(getattr(zkq, n), zkq.ZkqError)} == tree
    assert exported - tree == {
        "Client",
        "HttpClient",
        "Job",
        "JobState",
        "JobContext",
        "Registry",
        # what a handler raises or meets: not ZkqErrors, which are the cluster's refusals
        "Backoff",
        "Cancelled",
        "LeaseLost",
        "Retry",
    }
    assert all(getattr(zkq, cls.__name__) is cls for cls in errors.CODES.values())


def test_importing_zkq_loads_no_service_and_no_client() -> None:
    """Every `zkq` command imports this package: it must not drag in Flask, the frontend,
    the benchmarks, the launcher, or a client's libraries until one is used."""
    heavy = ["flask", "zkq.frontend", "benchmarks", "zkq.dev", "requests", "kazoo", "pymysql"]
    code = (
        "import sys, zkq; "
        f"print([m for m in {heavy!r} if m in sys.modules]); "
        "zkq.handler; print('kazoo' in sys.modules, 'requests' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # a worker app's handlers need neither client's libraries to be declared
    assert out == ["[]", "False False"]
