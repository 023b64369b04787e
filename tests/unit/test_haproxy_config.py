"""The HAProxy config: the template renders what the brief asks, and HAProxy accepts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.frontends import REPO, check_haproxy_config, render_haproxy_config

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
