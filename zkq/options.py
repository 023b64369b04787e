"""What every ``zkq`` command shares: cluster options (flags, environment, config file),
connecting, one-line errors with meaningful exit statuses, and table output.

Exit statuses: 0 done; 1 the request failed (a job that did not succeed, a bad id, a
refused transition); 2 usage; 3 the cluster could not be reached.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import Unavailable, ZkqError
from zkq.coordinator.job import Job

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3


def cluster_options(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_file",
        envvar="ZKQ_CONFIG",
        default=None,
        type=click.Path(dir_okay=False),
        help="TOML config file (default /etc/zkq/zkq.toml if present).",
        expose_value=False,
        is_eager=True,
        callback=_remember_config,
    )(fn)
    fn = click.option("--session-timeout", type=float, default=None, help="Seconds (default 10).")(
        fn
    )
    fn = click.option("--root", envvar="ZKQ_ROOT", default=None, help="Root znode (default /zkq).")(
        fn
    )
    fn = click.option(
        "--zk", "hosts", envvar="ZKQ_ZK_HOSTS", default=None, help="ZooKeeper connect string."
    )(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Answer in JSON.")(fn)


def metrics_option(fn: F) -> F:
    return click.option(
        "--metrics-port",
        type=int,
        default=None,
        envvar="ZKQ_METRICS_PORT",
        help="Serve Prometheus /metrics on this port (127.0.0.1).",
    )(fn)


def log_options(fn: F) -> F:
    fn = click.option("--log-format", type=click.Choice(["text", "json"]), default="text")(fn)
    fn = click.option("--log-level", default="info", show_default=True)(fn)
    return fn


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Keep --config out of every command's signature: commands call load_config, which
    reads it from the context."""
    ctx.meta["zkq.config_file"] = value


def load_config(
    hosts: str | None, root: str | None, session_timeout: float | None, **settings: Any
) -> ClusterConfig:
    """``settings``: more of :meth:`ClusterConfig.load`'s overrides (``mysql_url``, ...)."""
    ctx = click.get_current_context(silent=True)
    config_file = ctx.meta.get("zkq.config_file") if ctx is not None else None
    try:
        return ClusterConfig.load(
            hosts=hosts,
            root=root,
            session_timeout=session_timeout,
            config_file=config_file,
            **settings,
        )
    except ZkqError as exc:
        raise click.UsageError(str(exc)) from exc


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"zkq: {message}", err=True)
    sys.exit(code)


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run a request, turning zkq errors into one line on stderr and an exit status."""
    try:
        return fn()
    except Unavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except ZkqError as exc:
        fail(str(exc))


def connect(
    hosts: str | None, root: str | None, session_timeout: float | None, **settings: Any
) -> Any:
    """A started :class:`zkq.coordinator.client.Client`, or exit 3 with what to check."""
    from zkq.coordinator.client import Client

    # kazoo narrates each refused connection; a command answers in one line of its own
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)

    client = Client(load_config(hosts, root, session_timeout, **settings), connect_timeout=5.0)
    run_guarded(client.start)
    return client


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Columns aligned to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(r[i], int | float) for r in rows) and bool(rows) for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def emit(data: Any, as_json: bool, human: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else human())


def show_job(job: Job, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job.to_dict(), indent=2))
        return
    rows: list[tuple[str, Any]] = [
        ("id", job.id),
        ("type", job.type),
        ("state", str(job.state)),
        ("priority", job.priority),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("worker", job.worker or "-"),
        ("created", when(job.created_at)),
        ("finished", when(job.finished_at)),
        ("payload", json.dumps(job.payload)),
        ("result", json.dumps(job.result)),
    ]
    if job.tenant:
        rows.append(("tenant", job.tenant))
    if job.parent:
        rows.append(("parent", job.parent))
    if job.error:
        rows.append(("error", f"{job.error.get('type')}: {job.error.get('message')}"))
    if job.children:
        rows.append(("children", ", ".join(job.children)))
    for key, value in rows:
        click.echo(f"{key:<10} {value}")
    if job.history:
        click.echo("")
        click.echo(
            table(
                [
                    (
                        a.number,
                        a.worker,
                        when(a.started_at),
                        f"{a.ended_at - a.started_at:.3f}s" if a.ended_at else "running",
                        a.outcome or "-",
                        (a.error or "")[:60],
                    )
                    for a in job.history
                ],
                ["ATTEMPT", "WORKER", "STARTED", "TOOK", "OUTCOME", "ERROR"],
            )
        )
