"""Which cluster a ``zkq`` command talks to: the settings options, declared once here, and
:class:`CliContext`, the one object (click's ``ctx.obj``) they resolve into.

A setting comes from the first layer that has it: a flag, then the environment
(``ZKQ_ZK_HOSTS``, ``ZKQ_ROOT``, ``ZKQ_SESSION_TIMEOUT``, ``ZKQ_MYSQL_URL``, ...), then the
TOML file (``--config``, else ``ZKQ_CONFIG``, else ``/etc/zkq/zkq.toml`` if present), and
when none of these names a cluster, the local dev cluster running from the working directory
(:mod:`zkq.settings_source`).  Only the first layer is click's: each option's callback
stores its flag in the context, and the context hands the flags to
:meth:`ClusterConfig.load`, which adds the environment and the file as it does for every
zkq process.  No option reads an ``envvar`` of its own: one repeated on a command would
read the environment again and override the same flag given before the command.

**Where the options go, and why there.**  ``zkq status --zk H --json`` is how the docs, the
tests and the local launcher (``zkq worker --zk H --root R ...``) write a command, and click
parses each command's options on its own, so a command must declare the settings it
accepts.  The group declares them too, so they may also come first (``zkq --zk H status``,
handy in an alias).  Both places attach the same declarations (:data:`ZOOKEEPER`,
:data:`MYSQL` through :func:`connection_options`) and store into the same context; a value
given after the command wins over one given before it.  A command never takes a setting as
a parameter.  It asks the context, with ``@pass_cli``:

- ``cli.config``: the :class:`ClusterConfig`, resolved once, on first use (by then every
  option has been read); a bad setting is a usage error, exit 2;
- ``cli.client()``: a started :class:`zkq.coordinator.client.Client`, made on first use and
  closed when the command ends; exit 3 when ZooKeeper cannot be reached;
- ``cli.mysql_pool()``: a pool of connections to the MySQL database, likewise;
- ``cli.as_json``: whether to answer in JSON (``--json``, stored the same way).

The two other shapes were worse: options on the group alone would break every invocation
written today, and one decorator per command passing the values as parameters (zkq's first
shape) had seventeen signatures take and pass on the same four values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.output import run_guarded
from zkq.settings_source import SettingsSource

if TYPE_CHECKING:
    from zkq.coordinator.client import Client

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
#: what ``click.option(...)`` returns: it adds one option to a command
Declaration = Callable[[Any], Any]


@dataclass
class CliContext:
    """``ctx.obj`` of every ``zkq`` command: the settings given as flags, and what they
    resolve into, each made once and on first use."""

    #: :meth:`ClusterConfig.load`'s overrides given as flags (``hosts``, ``mysql_url``, ...)
    flags: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False
    _config: ClusterConfig | None = field(default=None, init=False, repr=False)
    _client: Client | None = field(default=None, init=False, repr=False)
    _pool: ConnectionPool | None = field(default=None, init=False, repr=False)
    _source: SettingsSource | None = field(default=None, init=False, repr=False)

    @property
    def config(self) -> ClusterConfig:
        if self._config is None:
            try:
                self._config = ClusterConfig.load(**self.source.overrides())
            except ZkqError as exc:
                raise click.UsageError(str(exc)) from exc
        return self._config

    @property
    def source(self) -> SettingsSource:
        if self._source is None:
            command = click.get_current_context(silent=True)
            name = command.command.name if command is not None else None
            self._source = SettingsSource.find(self.flags, os.environ, name)
        return self._source

    def client(self) -> Client:
        """A started client of the cluster, or exit 3 with what to check."""
        if self._client is None:
            from zkq.coordinator.client import Client  # kazoo only for commands that connect

            # kazoo narrates each refused connection; a command answers in one line of its own
            logging.getLogger("kazoo").setLevel(logging.CRITICAL)
            client = Client(self.config, connect_timeout=5.0)
            # registered before start: a failed start exits, and the session's threads go too
            click.get_current_context().call_on_close(client.close)
            run_guarded(lambda: self.source.start(client))
            self._client = client
        return self._client

    def with_client(self, request: Callable[[Client], T]) -> T:
        """``request(client)``; a zkq error becomes one line on stderr and an exit status."""
        client = self.client()
        result: T = run_guarded(lambda: request(client))
        return result

    def mysql(self) -> MySQLSettings:
        if self.config.mysql is None:
            raise click.UsageError(
                "no database: pass --mysql URL, set ZKQ_MYSQL_URL, "
                "give [mysql] url in the config file, or run `zkq dev up` here"
            )
        return self.config.mysql

    def mysql_pool(self) -> ConnectionPool:
        """One connection at most, closed when the command ends; connects on first use."""
        if self._pool is None:
            self._pool = ConnectionPool(self.mysql(), max_size=1)
            click.get_current_context().call_on_close(self._pool.close)
        return self._pool


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


# -- declarations -----------------------------------------------------------------------
def _store(setting: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        cli = ctx.ensure_object(CliContext)
        # click calls back for options left out too (with None): that must not undo the
        # same option given to the group
        if value is not None:
            cli.flags[setting] = value

    return store


def setting_option(*decls: str, setting: str, **attrs: Any) -> Declaration:
    """An option for ``setting`` of :meth:`ClusterConfig.load`, stored in the context and
    not passed to the command (which reads ``cli.config``)."""
    return click.option(*decls, setting, expose_value=False, callback=_store(setting), **attrs)


def _store_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    cli = ctx.ensure_object(CliContext)
    cli.as_json = cli.as_json or value


CONFIG = setting_option(
    "--config",
    setting="config_file",
    type=click.Path(dir_okay=False),
    help="TOML config file (env ZKQ_CONFIG; default /etc/zkq/zkq.toml if present).",
)
ZOOKEEPER: Sequence[Declaration] = (
    setting_option(
        "--zk",
        setting="hosts",
        metavar="HOSTS",
        help="ZooKeeper connect string, host:port,... (env ZKQ_ZK_HOSTS; default: the dev "
        "cluster running from here, see `zkq dev --help`, else 127.0.0.1:2181).",
    ),
    setting_option(
        "--root",
        setting="root",
        metavar="ZNODE",
        help="Root znode of the cluster (env ZKQ_ROOT; default /zkq).",
    ),
    setting_option(
        "--session-timeout",
        setting="session_timeout",
        type=float,
        metavar="SECONDS",
        help="Session timeout asked of ZooKeeper (env ZKQ_SESSION_TIMEOUT; default 10).",
    ),
)
MYSQL: Sequence[Declaration] = (
    setting_option(
        "--mysql",
        setting="mysql_url",
        metavar="URL",
        help="MySQL database URL, mysql://user:password@host:port/db (env ZKQ_MYSQL_URL).",
    ),
)


def connection_options(*groups: Sequence[Declaration]) -> Callable[[F], F]:
    """The options of ``groups`` (:data:`ZOOKEEPER`, :data:`MYSQL`), then ``--config``,
    for a command or the group."""
    declarations = [*(d for group in groups for d in group), CONFIG]

    def declare(fn: F) -> F:
        # decorators apply innermost first, and click lists options in reverse of that
        for option in reversed(declarations):
            fn = option(fn)
        return fn

    return declare


json_option: Declaration = click.option(
    "--json",
    "as_json",
    is_flag=True,
    expose_value=False,
    callback=_store_json,
    help="Answer in JSON on stdout.",
)


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
