"""HAProxy alone, as the launcher configures it for HTTPS: its certificate verifies against
the cluster's CA, a client without that CA is refused with a clear error, and the optional
redirect sends plain HTTP to HTTPS.  No frontend runs behind it, so every request that gets
through TLS is answered by HAProxy's own 503 (the API's error shape)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from zkq.coordinator.errors import Unavailable
from zkq.dev.frontends import HOST, HaproxyOptions, haproxy_binary, render_haproxy_config
from zkq.dev.ports import free_ports
from zkq.dev.processes import ProcessSpec, start
from zkq.dev.tls import make_certificates
from zkq.dev.waiting import wait_until
from zkq.http_client import CertificateRejected, HttpClient

pytestmark = pytest.mark.integration


@dataclass
class Proxy:
    http_url: str
    https_url: str
    ca_file: Path


@pytest.fixture
def redirecting_proxy(tmp_path: Path) -> Iterator[Proxy]:
    files = make_certificates(tmp_path / "tls", [HOST, "localhost"])
    port, stats_port, tls_port, nobody = free_ports(4, HOST)
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_haproxy_config(
            [("frontend-1", HOST, nobody)],
            port,
            stats_port,
            HaproxyOptions(https_redirect=True),
            tls_cert=files.server_pem,
            tls_port=tls_port,
        )
    )
    process = start(
        ProcessSpec("haproxy", [haproxy_binary(), "-db", "-f", str(config)], tmp_path / "log")
    )
    try:
        proxy = Proxy(f"http://{HOST}:{port}", f"https://{HOST}:{tls_port}", files.ca_file)
        wait_until(
            lambda: _answers(proxy.http_url),
            20,
            interval=0.05,
            what="HAProxy to listen",
            ignore=(requests.ConnectionError,),
        )
        yield proxy
    finally:
        process.stop(10)


def _answers(url: str) -> bool:
    requests.get(url, allow_redirects=False, timeout=1)  # any answer: it listens
    return True


def test_plain_http_is_redirected_to_the_same_path_over_https(redirecting_proxy: Proxy) -> None:
    answer = requests.get(
        f"{redirecting_proxy.http_url}/v1/jobs?limit=5", allow_redirects=False, timeout=5
    )
    assert answer.status_code == 308  # keeps the method and body, unlike 301/302
    assert answer.headers["Location"] == f"{redirecting_proxy.https_url}/v1/jobs?limit=5"


def test_the_client_verifies_haproxy_against_the_clusters_ca(redirecting_proxy: Proxy) -> None:
    # Through TLS to HAProxy, which has no frontend up: its 503, in the API's shape, is what
    # a verified connection gets.
    client = HttpClient(
        redirecting_proxy.https_url, "zkq_x", retries=0, ca_file=redirecting_proxy.ca_file
    )
    with client, pytest.raises(Unavailable, match="no frontend is ready"):
        client.workers()


def test_a_client_without_the_ca_is_refused_with_what_to_do(
    redirecting_proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZKQ_CA_FILE", raising=False)
    client = HttpClient(redirecting_proxy.https_url, "zkq_x")
    with client, pytest.raises(CertificateRejected) as caught:
        client.workers()
    message = str(caught.value)
    assert "not trusted" in message and "ZKQ_CA_FILE" in message
    assert "certificate verify failed" in message
