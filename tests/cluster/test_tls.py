"""HTTPS through HAProxy on the whole stack, as ``zkq dev up`` starts it: the Python client
verifies HAProxy's certificate against the cluster's CA, and one without it is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.cluster.conftest import Stack
from zkq.http_client import CertificateRejected, HttpClient

pytestmark = pytest.mark.cluster


def https(stack: Stack) -> tuple[str, str]:
    """The stack's HTTPS URL and CA file, as ``zkq dev status`` reports them."""
    status = stack.cluster.status()
    return status["https_url"], status["ca_file"]


def test_a_job_goes_through_https_verified_against_the_clusters_ca(stack: Stack) -> None:
    url, ca_file = https(stack)
    assert url.startswith("https://127.0.0.1:") and ca_file.endswith("/tls/ca.pem")
    with HttpClient(url, stack.keys["alice"], ca_file=ca_file) as client:
        job = client.submit("echo", {"over": "tls"})
        assert client.wait(job.id, timeout=30).result == {"over": "tls"}


def test_the_ca_file_may_come_from_the_environment(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = https(stack)
    monkeypatch.setenv("ZKQ_CA_FILE", ca_file)
    with HttpClient(url, stack.keys["alice"]) as client:
        assert isinstance(client.workers(), list)


def test_a_client_that_does_not_trust_the_ca_is_refused_clearly(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZKQ_CA_FILE", raising=False)
    client = HttpClient(https(stack)[0], stack.keys["alice"], retries=4)
    with client, pytest.raises(CertificateRejected, match=r"not trusted.*ZKQ_CA_FILE"):
        client.submit("echo", 1)


def test_haproxys_key_is_readable_by_its_owner_only(stack: Stack) -> None:
    tls_dir = Path(https(stack)[1]).parent
    assert stat.S_IMODE(os.stat(tls_dir / "haproxy.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tls_dir).st_mode) == 0o700
