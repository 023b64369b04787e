"""The HAProxy config: the template renders what the brief asks, and HAProxy accepts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.frontends import (
    REPO,
    HaproxyOptions,
    check_haproxy_config,
    render_haproxy_config,
)
from zkq.dev.tls import make_certificates

needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy", path="/usr/sbin:/usr/bin:/usr/local/sbin") is None,
    reason="haproxy is not installed",
)
SERVERS = [("frontend-1", "127.0.0.1", 18001), ("frontend-2", "127.0.0.1", 18002)]


def test_rendered_config_has_what_the_frontends_need() -> None:
    text = render_haproxy_config(SERVERS, 18080, 18404)
    for line in (
        "balance roundrobin",
        "option httpchk GET /readyz",
        "http-check expect status 200",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response",
        "option forwardfor",
        "stats uri /stats",
        "bind 127.0.0.1:18080",
        "bind 127.0.0.1:18404",
        "server frontend-1 127.0.0.1:18001 check",
        "server frontend-2 127.0.0.1:18002 check",
        "inter 300ms",
        "fall 2 rise 2",
    ):
        assert line in text, line
    # long-polls (MAX_WAIT 60 s) must not be cut by the proxy
    assert "timeout server 75s" in text and "timeout client 75s" in text


def test_no_servers_is_an_error() -> None:
    with pytest.raises(DevClusterError):
        render_haproxy_config([], 18080, 18404)


@needs_haproxy
def test_haproxy_accepts_the_rendered_and_the_example_config(tmp_path: Path) -> None:
    rendered = tmp_path / "haproxy.cfg"
    rendered.write_text(render_haproxy_config(SERVERS, 18080, 18404, socket=tmp_path / "s"))
    check_haproxy_config(rendered)
    check_haproxy_config(REPO / "haproxy" / "haproxy.cfg")


@needs_haproxy
def test_a_broken_config_is_refused_with_haproxys_words(tmp_path: Path) -> None:
    broken = tmp_path / "broken.cfg"
    broken.write_text("defaults\n    mode http\n    retry-on sometimes\n")
    with pytest.raises(StartupFailed, match="retry-on"):
        check_haproxy_config(broken)


# -- TLS ----------------------------------------------------------------------------------------
#: the variables the Ansible role passes (ansible/roles/haproxy/tasks/main.yml): none of TLS's
ANSIBLE_VARIABLES = {
    "servers": [{"name": n, "host": h, "port": p} for n, h, p in SERVERS],
    "bind_host": "0.0.0.0",
    "port": 8080,
    "stats_host": "0.0.0.0",
    "stats_port": 8404,
    "socket": "/run/zkq-haproxy/admin.sock",
    "check_inter_ms": 1000,
    "fall": 2,
    "rise": 2,
    "connect_timeout_ms": 2000,
    "server_timeout_s": 75,
    "client_timeout_s": 75,
    "maxconn": 4000,
    "log_stdout": True,
}


def test_the_ansible_roles_variables_still_render_a_config_without_tls() -> None:
    import jinja2

    template = REPO / "haproxy" / "haproxy.cfg.j2"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent), undefined=jinja2.StrictUndefined
    )
    text = env.get_template(template.name).render(**ANSIBLE_VARIABLES)
    assert "ssl crt" not in text and "http-request redirect" not in text
    assert "bind 0.0.0.0:8080" in text


def test_tls_binds_its_own_port_and_redirects_only_when_asked() -> None:
    cert = Path("/etc/zkq/haproxy.pem")
    serving = render_haproxy_config(SERVERS, 18080, 18404, tls_cert=cert, tls_port=18443)
    assert "bind 127.0.0.1:18443 ssl crt /etc/zkq/haproxy.pem" in serving
    assert "bind 127.0.0.1:18080\n" in serving  # plain HTTP still serves the API
    assert "http-request redirect" not in serving
    redirecting = render_haproxy_config(
        SERVERS, 18080, 18404, HaproxyOptions(https_redirect=True), tls_cert=cert, tls_port=18443
    )
    assert ":18443%[capture.req.uri] code 308 if !{ ssl_fc }" in redirecting


@needs_haproxy
def test_haproxy_accepts_the_tls_config_with_a_certificate_of_the_clusters_ca(
    tmp_path: Path,
) -> None:
    files = make_certificates(tmp_path / "tls", ["127.0.0.1", "localhost"])
    assert files.server_pem.stat().st_mode & 0o777 == 0o600  # it holds the private key
    assert not list((tmp_path / "tls").glob("*.key"))  # the CA's key is gone
    rendered = tmp_path / "haproxy.cfg"
    rendered.write_text(
        render_haproxy_config(
            SERVERS,
            18080,
            18404,
            HaproxyOptions(https_redirect=True),
            tls_cert=files.server_pem,
            tls_port=18443,
        )
    )
    check_haproxy_config(rendered)
