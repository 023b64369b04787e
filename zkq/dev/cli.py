"""``zkq dev up|down|status|env``: a whole zkq cluster on this machine, as plain processes.

Attach with ``main.add_command(dev)``.  The state directory (``--state-dir``, or
``ZKQ_DEV_DIR``) is an option of the group and lives in ``ctx.meta``, so it does not take
over the parent command's ``ctx.obj``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from zkq.coordinator.acl import Role
from zkq.dev import credentials, discovery
from zkq.dev.cluster import DevCluster
from zkq.dev.errors import DevClusterError
from zkq.dev.frontends import HaproxyOptions, urls
from zkq.dev.zookeeper import SERVING_MODES
from zkq.output import fail

_STATE_DIR_KEY = "zkq.dev.state_dir"

#: ``status`` exit codes, as LSB init scripts use them
EXIT_OK, EXIT_DOWN, EXIT_NOT_RUNNING = 0, 1, 3


@click.group("dev")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".zkq-dev"),
    envvar="ZKQ_DEV_DIR",
    show_default=True,
    help="Where the cluster keeps its state file, ZooKeeper data and logs (env ZKQ_DEV_DIR).",
)
@click.pass_context
def dev(ctx: click.Context, state_dir: Path) -> None:
    """Run a whole zkq cluster on this machine: a three-node ZooKeeper ensemble,
    coordinators and workers, as plain processes on free loopback ports.

    `up` starts it, `status` shows it, `down` stops exactly what `up` started (also from
    another shell).  Logs are in STATE_DIR/logs and STATE_DIR/zookeeper/zk<N>.

    While it runs, every zkq command run from the folder that holds .zkq-dev (or with
    ZKQ_DEV_DIR set) uses it when nothing else names a cluster (no --zk, --config,
    ZKQ_ZK_HOSTS, ZKQ_CONFIG or /etc/zkq/zkq.toml): `zkq status`, `zkq worker --app myapp`.
    `eval "$(zkq dev env)"` does the same for another shell.  A `up` after a `down` takes
    the same ports again where they are free.
    """
    ctx.meta[_STATE_DIR_KEY] = state_dir


def _cluster() -> DevCluster:
    return DevCluster(click.get_current_context().meta[_STATE_DIR_KEY])


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Our errors become one line on stderr and exit status 1 (details are in the logs
    the message names)."""
    try:
        yield
    except (DevClusterError, TimeoutError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(first) from exc


def _progress(message: str) -> None:
    click.echo(f"zkq dev: {message}", err=True)


@dev.command()
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--coordinators", type=click.IntRange(min=0), default=2, show_default=True)
@click.option(
    "--app",
    default="zkq.worker.builtin",
    show_default=True,
    help="Python module with the handlers the workers serve.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Jobs each worker runs at once.",
)
@click.option("--zk-size", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--tick-ms",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="ZooKeeper tickTime; 200 makes session expiry quick for experiments.",
)
@click.option(
    "--session-timeout-ms",
    type=click.IntRange(min=1),
    default=None,
    help="Session timeout the services ask of ZooKeeper (default: theirs).",
)
@click.option("--root", default="/zkq", show_default=True, help="Root znode of the cluster.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for ready.")
@click.option("--no-wait", is_flag=True, help="Do not wait for services to register.")
@click.option(
    "--mysql/--no-mysql",
    default=True,
    show_default=True,
    help="Run MariaDB (API keys, request log, job archive) and migrate its schema.",
)
@click.option(
    "--frontends",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="gunicorn frontends behind an HAProxy (none with --no-mysql: they need it).",
)
@click.option(
    "--https-redirect",
    is_flag=True,
    help="HAProxy's plain HTTP port redirects to HTTPS instead of serving the API.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up(
    workers: int,
    coordinators: int,
    app: str,
    concurrency: int,
    zk_size: int,
    tick_ms: int,
    session_timeout_ms: int | None,
    root: str,
    timeout: float,
    no_wait: bool,
    mysql: bool,
    frontends: int,
    https_redirect: bool,
    as_json: bool,
) -> None:
    """Start the cluster and wait until it is ready.

    Refuses if a cluster from the same state directory still runs.  If anything fails to
    start, whatever did start is stopped again.
    """
    with _one_line_errors():
        status = _cluster().up(
            workers,
            coordinators,
            app,
            concurrency,
            tick_ms=tick_ms,
            session_timeout_ms=session_timeout_ms,
            zk_size=zk_size,
            root=root,
            wait_ready=not no_wait,
            timeout=timeout,
            progress=_progress,
            mysql=mysql,
            frontends=frontends if mysql else 0,
            haproxy=HaproxyOptions(https_redirect=https_redirect),
        )
    _print_status(status, as_json)


@dev.command()
@click.option("--timeout", default=10.0, show_default=True, help="Seconds before SIGKILL.")
@click.option("--json", "as_json", is_flag=True, help="Print what was stopped as JSON.")
def down(timeout: float, as_json: bool) -> None:
    """Stop every process the cluster started (SIGTERM, then SIGKILL after --timeout).

    Safe to run twice: with no cluster it does nothing and exits 0.
    """
    with _one_line_errors():
        result = _cluster().down(timeout)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    total = len(result["stopped"]) + len(result["already_dead"])
    if total == 0:
        click.echo("no dev cluster was running")
        return
    click.echo(f"stopped {len(result['stopped'])} process(es)", nl=False)
    if result["already_dead"]:
        click.echo(f"; already dead: {', '.join(result['already_dead'])}", nl=False)
    click.echo()


@dev.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Show every process and ZooKeeper node.

    Exit status: 0 all up and ZooKeeper has its quorum, 1 something is down, 3 no cluster
    runs from this state directory.
    """
    with _one_line_errors():
        result = _cluster().status()
    _print_status(result, as_json)
    if not result["running"]:
        sys.exit(EXIT_NOT_RUNNING)
    sys.exit(EXIT_OK if result["ok"] else EXIT_DOWN)


@dev.command("env")
@click.option(
    "--role",
    type=click.Choice([str(r) for r in Role]),
    default=str(Role.COORDINATOR),
    show_default=True,
    help="Whose ZooKeeper credential ZKQ_CONFIG's file carries (coordinator: may do "
    "everything; operator: reads only; worker: for `zkq worker`).",
)
@click.option("--json", "as_json", is_flag=True, help="The variables as one JSON object.")
def env(role: str, as_json: bool) -> None:
    """Print the shell exports that point zkq at this cluster from any shell and folder:

    \b
        eval "$(zkq dev env)"

    ZKQ_CONFIG: the config file the cluster writes (ZooKeeper, root, credential, MySQL,
    HAProxy stats), read by every zkq command; ZKQ_URL: HAProxy's HTTPS address, for curl
    and zkq.HttpClient; ZKQ_CA_FILE: the CA certificate that signed it, which zkq.HttpClient
    trusts.  Commands run from the cluster's own folder need none of it.  Exit 3 when the
    cluster does not run.
    """
    cluster = _cluster()
    if not discovery.is_running(cluster.state_dir) or not cluster.load():
        fail(
            f"no dev cluster is running from {cluster.state_dir}: start one with `zkq dev up`",
            EXIT_NOT_RUNNING,
        )
    http = urls(cluster)
    variables = {
        "ZKQ_CONFIG": str(credentials.config_file(cluster.state_dir, Role(role))),
        "ZKQ_URL": http["https_url"] or http["haproxy_url"],
        "ZKQ_CA_FILE": http["ca_file"],
    }
    exports = {name: value for name, value in variables.items() if value}
    if as_json:
        click.echo(json.dumps(exports, indent=2))
        return
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo(f'# the dev cluster in {cluster.state_dir}: eval "$(zkq dev env)" to use it')


# -- human output ---------------------------------------------------------------------------


def _print_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    if not status["running"]:
        click.echo(f"no dev cluster is running from {status['state_dir']}")
        return
    click.echo(_table(_rows(status)))
    click.echo()
    click.echo(f"zookeeper: {status['connect']}   root: {status['root']}")
    state_dir = Path(status["state_dir"])
    where = (
        f"in {state_dir.parent}"
        if state_dir.name == discovery.DEFAULT_DEV_DIR
        else (f"with ZKQ_DEV_DIR={state_dir}")
    )
    click.echo(f'zkq commands run {where} use this cluster; elsewhere: eval "$(zkq dev env)"')
    if status.get("mysql"):
        click.echo(
            f"mysql: {status['mysql']} (URL with password in {status['state_dir']}/state.json)"
        )
    if status.get("haproxy_url"):
        click.echo(f"http: {status['haproxy_url']}   stats: {status['stats_url']} (;csv for CSV)")
    if status.get("https_url"):
        click.echo(f"https: {status['https_url']}   CA: {status['ca_file']} (ZKQ_CA_FILE)")
    registered = status.get("registered")
    if registered is not None:
        click.echo(
            f"registered: {registered['workers']} worker(s), "
            f"{registered['coordinators']} coordinator(s) in the election"
        )
    click.echo("all up" if status["ok"] else "NOT OK: something is down (see above)")


def _rows(status: dict[str, Any]) -> list[list[str]]:
    rows = [["NAME", "ROLE", "PID", "STATE", "PORT", "RSS", "DETAIL"]]
    for node in status["zookeeper"]:
        state = "up" if node["mode"] in SERVING_MODES else "down"
        detail = node["mode"] + (", zxid " + node["zxid"] if node.get("zxid") else "")
        rows.append(
            [
                node["name"],
                "zookeeper",
                _dash(node["pid"]),
                state,
                str(node["client_port"]),
                _mib(node["rss_bytes"]),
                detail,
            ]
        )
    for member in status["members"]:
        detail = ""
        if not member["alive"]:
            # The exit code is known only to the process that started (and reaped) it.
            code = member["exit_code"]
            detail = ("exited" if code is None else f"exit {code}") + f", log {member['log']}"
        rows.append(
            [
                member["name"],
                member["role"],
                str(member["pid"]),
                "up" if member["healthy"] else "down",
                ",".join(str(p) for p in member["ports"].values()) or "-",
                _mib(member["rss_bytes"]),
                detail,
            ]
        )
    return rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f} MiB"
