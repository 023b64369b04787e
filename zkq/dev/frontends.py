"""The HTTP side of a dev cluster: gunicorn frontends and the HAProxy in front of them.

Each frontend is a member of role ``frontend`` (gunicorn with gevent workers, serving
``zkq.frontend.app:create_app()``) on its own free port; its environment names the ZooKeeper
ensemble and the root, and the MySQL URL comes with the environment the cluster gives every
service it starts.  A frontend stopped or killed for a fault test is
started again on the *same* port, so HAProxy's configuration stays valid and its health
checks bring the server back by themselves.

HAProxy is a member of role ``haproxy``, run in the foreground (``-db``) from a config
rendered from ``haproxy/haproxy.cfg.j2`` and checked with ``haproxy -c`` before it starts.
Its stats page (``/stats``, CSV at ``/stats;csv``) is on a port of its own; the launcher
reads it to learn which frontends HAProxy considers up.

HAProxy also serves HTTPS, on a port of its own, with a certificate from the cluster's own
CA (:mod:`zkq.dev.tls`): clients verify it with ``<state dir>/tls/ca.pem``.  The plain HTTP
port keeps serving the API (tests and benchmarks use it) unless ``https_redirect`` is set,
when it answers every request with a redirect to HTTPS.
"""

from __future__ import annotations

import csv
import http.client
import io
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2

from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.members import HEALTH_PROBES, Member, Roster, check_alive
from zkq.dev.ports import free_port
from zkq.dev.tls import TLS_DIR, make_certificates
from zkq.dev.waiting import wait_until
from zkq.frontend.serve import gunicorn_argv

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
HAPROXY_TEMPLATE = REPO / "haproxy" / "haproxy.cfg.j2"
FRONTEND, HAPROXY = "frontend", "haproxy"


@dataclass(frozen=True)
class HaproxyOptions:
    """What the template leaves open.  The defaults suit tests: a frontend that fails its
    check twice, 300 ms apart, is out of rotation within about a second."""

    check_inter_ms: int = 300
    fall: int = 2
    rise: int = 2
    connect_timeout_ms: int = 1000
    #: longer than the frontends' MAX_WAIT (60 s), so long-polls are not cut
    server_timeout_s: int = 75
    client_timeout_s: int = 75
    maxconn: int = 2000
    #: a line per request in HAProxy's log file, for post-mortems of fault tests
    log_stdout: bool = True
    #: HTTPS on a port of its own, with a certificate from the cluster's CA
    tls: bool = True
    #: the plain HTTP port redirects (308) to HTTPS instead of serving the API
    https_redirect: bool = False


# -- HAProxy config ---------------------------------------------------------------------------
def render_haproxy_config(
    servers: Sequence[tuple[str, str, int]],
    port: int,
    stats_port: int,
    options: HaproxyOptions | None = None,
    socket: Path | None = None,
    template: Path = HAPROXY_TEMPLATE,
    tls_cert: Path | None = None,
    tls_port: int | None = None,
) -> str:
    """The config text for ``servers`` (name, host, port) behind ``port``, and with
    ``tls_cert`` (certificate and key in one PEM file) behind ``tls_port`` over HTTPS."""
    if not servers:
        raise DevClusterError("HAProxy needs at least one frontend to send requests to")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        undefined=jinja2.StrictUndefined,  # a missing variable is an error, not ""
        keep_trailing_newline=True,
        autoescape=False,  # not HTML
    )
    return env.get_template(template.name).render(
        servers=[{"name": n, "host": h, "port": p} for n, h, p in servers],
        bind_host=HOST,
        port=port,
        stats_host=HOST,
        stats_port=stats_port,
        socket=str(socket) if socket else None,
        tls_cert=str(tls_cert) if tls_cert else None,
        tls_port=tls_port,
        **asdict(options or HaproxyOptions()),
    )


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise DevClusterError("haproxy is not installed: apt-get install haproxy")
    return found


def check_haproxy_config(path: Path) -> None:
    """``haproxy -c -f path``; raises :class:`StartupFailed` with HAProxy's complaint."""
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise StartupFailed(f"HAProxy rejects {path}:\n{result.stdout}{result.stderr}")


# -- probes -----------------------------------------------------------------------------------
def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def frontend_ready(member: Member) -> bool:
    """``GET /readyz`` answers 200: ZooKeeper connected and MySQL reachable."""
    try:
        return http_get(member.ports["http"], "/readyz")[0] == 200
    except OSError:
        return False


def haproxy_servers(member: Member) -> dict[str, str]:
    """Server name -> status (``UP``, ``DOWN``, ``UP 1/2``, ...) from the stats CSV."""
    status, body = http_get(member.ports["stats"], "/stats;csv")
    if status != 200:
        raise DevClusterError(f"HAProxy stats answered {status}")
    text = body.decode().lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(io.StringIO(text))
        if row.get("pxname") == "zkq_frontends" and row["svname"] not in ("BACKEND", "FRONTEND")
    }


def haproxy_ready(member: Member) -> bool:
    try:
        return any(s == "UP" for s in haproxy_servers(member).values())
    except (OSError, DevClusterError):
        return False


HEALTH_PROBES[FRONTEND] = frontend_ready
HEALTH_PROBES[HAPROXY] = haproxy_ready


# -- members ----------------------------------------------------------------------------------
def metrics_dir(cluster: Roster, port: int) -> Path:
    """A frontend's ``PROMETHEUS_MULTIPROC_DIR``, named by its port, which it keeps when
    restarted (gunicorn wipes the directory as it starts)."""
    return cluster.state_dir / "frontends" / str(port) / "prometheus"


def frontend_env(cluster: Roster, port: int, zk_hosts: str | None = None) -> dict[str, str]:
    env = {
        "ZKQ_BIND": f"{HOST}:{port}",
        "ZKQ_ZK_HOSTS": zk_hosts or cluster.connect_string,
        "ZKQ_ROOT": cluster.root,
        # one gevent process per frontend: concurrency comes from greenlets, and a small
        # machine runs two frontends next to ZooKeeper, MariaDB and the workers
        "ZKQ_GUNICORN_WORKERS": "1",
        # /metrics sums the counts of all the frontend's worker processes from here
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(cluster, port)),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def start_frontend(
    cluster: Roster,
    *,
    name: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    zk_hosts: str | None = None,
) -> Member:
    """Start one gunicorn frontend; ``zk_hosts`` overrides the connect string (a fault
    test points it at a port where nothing listens)."""
    port = port or free_port(HOST)
    metrics_dir(cluster, port).mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv()
    return cluster.add_member(
        FRONTEND,
        argv,
        name=name,
        env={**frontend_env(cluster, port, zk_hosts), **(env or {})},
        ports={"http": port},
    )


def start_haproxy(
    cluster: Roster,
    frontends: Sequence[Member],
    options: HaproxyOptions | None = None,
    name: str = HAPROXY,
) -> Member:
    """Render, check and start HAProxy in front of ``frontends``."""
    options = options or HaproxyOptions()
    port, stats_port, tls_port = cluster.port_book.claim(HAPROXY, 3)
    ports = {"http": port, "stats": stats_port}
    cert = None
    if options.tls:
        cert = make_certificates(cluster.state_dir / TLS_DIR, [HOST, "localhost"]).server_pem
        ports["https"] = tls_port
    config = cluster.state_dir / f"{name}.cfg"  # haproxy.cfg, unless a test adds another
    servers = [(m.name, HOST, m.ports["http"]) for m in frontends]
    config.write_text(
        render_haproxy_config(servers, port, stats_port, options, tls_cert=cert, tls_port=tls_port)
    )
    check_haproxy_config(config)
    return cluster.add_member(
        HAPROXY, [haproxy_binary(), "-db", "-f", str(config)], name=name, ports=ports
    )


def start_http_side(
    cluster: Roster,
    count: int,
    wait: bool = True,
    timeout: float = 60.0,
    options: HaproxyOptions | None = None,
) -> list[Member]:
    """``count`` frontends, then HAProxy in front of them; with ``wait``, until every
    frontend is ready and HAProxy sees them all up."""
    started = [start_frontend(cluster, port=p) for p in cluster.port_book.claim(FRONTEND, count)]
    if wait:
        wait_ready(started, timeout)
    proxy = start_haproxy(cluster, started, options)
    if wait:
        wait_ready([proxy], timeout)
        wait_until(
            lambda: sum(s == "UP" for s in haproxy_servers(proxy).values()) == count,
            timeout,
            interval=0.1,
            what=f"HAProxy to see {count} frontend(s) up",
            ignore=(OSError, DevClusterError),
        )
    return [*started, proxy]


def wait_ready(members: Sequence[Member], timeout: float) -> None:
    """Until each member's health probe passes; fails fast when one has died."""

    def ready() -> bool:
        check_alive(members)
        return all(m.healthy() for m in members)

    names = ", ".join(m.name for m in members)
    try:
        wait_until(ready, timeout, interval=0.1, what=f"{names} to be ready")
    except TimeoutError as exc:
        raise StartupFailed(str(exc)) from exc


def restart_frontend(
    cluster: Roster,
    name: str,
    zk_hosts: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Member:
    """Start a stopped or killed frontend again under its name and on its port (so HAProxy
    finds it where it was); ``zk_hosts`` and ``env`` as in :func:`start_frontend`."""
    old = cluster.member(name)
    if old.role != FRONTEND:
        raise DevClusterError(f"{name} is a {old.role}, not a frontend")
    if old.process.alive() or old.process.group_members():
        raise DevClusterError(f"{name} still runs (pid {old.process.pid}): stop it first")
    cluster.members.remove(old)
    return start_frontend(cluster, name=name, port=old.ports["http"], zk_hosts=zk_hosts, env=env)


def urls(cluster: Roster) -> dict[str, Any]:
    """Where clients and operators reach the HTTP side (``None`` before it is up)."""
    proxies = cluster.members_of(HAPROXY)
    if not proxies:
        return {
            "haproxy_url": None,
            "https_url": None,
            "ca_file": None,
            "stats_url": None,
            "frontends": {},
        }
    proxy = proxies[0]
    https = "https" in proxy.ports
    return {
        "haproxy_url": f"http://{HOST}:{proxy.ports['http']}",
        "https_url": f"https://{HOST}:{proxy.ports['https']}" if https else None,
        "ca_file": str(cluster.state_dir / TLS_DIR / "ca.pem") if https else None,
        "stats_url": f"http://{HOST}:{proxy.ports['stats']}/stats",
        "frontends": {
            m.name: f"http://{HOST}:{m.ports['http']}" for m in cluster.members_of(FRONTEND)
        },
    }


def require_url(cluster: Roster, which: str) -> str:
    url = urls(cluster)[which]
    if url is None:
        if which in ("https_url", "ca_file") and cluster.members_of(HAPROXY):
            raise DevClusterError("this cluster's HAProxy serves no HTTPS (started without TLS)")
        raise DevClusterError("this cluster has no HAProxy: start it with frontends")
    return str(url)
