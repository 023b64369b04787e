"""``zkq db`` and ``zkq keys``: the MySQL side of a cluster.

``zkq db migrate`` applies the schema migrations (safe to run from several places at once),
``zkq db status`` shows which are applied.  ``zkq keys create|list|revoke`` manage the API
keys of the HTTP frontends; ``create`` prints the secret once, and only its hash is kept.

Each takes ``--mysql URL`` (or ``ZKQ_MYSQL_URL``) and ``--json``; exit statuses as every
``zkq`` command: 1 refused, 2 usage, 3 MySQL unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from zkq.coordinator.errors import ZkqError
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.options import emit, json_option, run_guarded, table

F = TypeVar("F", bound=Callable[..., Any])


def mysql_option(fn: F) -> F:
    return click.option(
        "--mysql",
        "mysql_url",
        envvar="ZKQ_MYSQL_URL",
        metavar="URL",
        help="MySQL database, mysql://user:password@host:port/db (env ZKQ_MYSQL_URL).",
    )(fn)


def _settings(mysql_url: str | None) -> MySQLSettings:
    if not mysql_url:
        raise click.UsageError("no database: pass --mysql URL or set ZKQ_MYSQL_URL")
    try:
        return MySQLSettings.from_url(mysql_url)
    except ZkqError as exc:
        raise click.UsageError(str(exc)) from exc


def _key_store(mysql_url: str | None) -> Any:
    from zkq.frontend.keys import KeyStore

    return KeyStore(ConnectionPool(_settings(mysql_url), max_size=1), cache_seconds=0)


# -- zkq db ------------------------------------------------------------------------------
@click.group("db")
def db() -> None:
    """The MySQL database: API keys, rate limits, request log and job archive."""


@db.command("migrate")
@mysql_option
@json_option
def migrate_command(mysql_url: str | None, as_json: bool) -> None:
    """Apply the schema migrations this zkq ships that the database lacks.

    Idempotent, and safe to run from two places at once (a lock serialises them).
    """
    from zkq.coordinator.migrate import available, migrate

    settings = _settings(mysql_url)

    def progress(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    applied = run_guarded(lambda: migrate(settings, progress=progress))
    current = max((m.version for m in available()), default=0)
    emit(
        {"applied": [m.label for m in applied], "version": current},
        as_json,
        lambda: (
            f"applied {len(applied)} migration(s); the schema is at version {current}"
            if applied
            else f"the schema is up to date (version {current})"
        ),
    )


@db.command("status")
@mysql_option
@json_option
def status_command(mysql_url: str | None, as_json: bool) -> None:
    """Which migrations are applied (exit 1 when some are missing)."""
    from zkq.coordinator.migrate import status

    settings = _settings(mysql_url)
    found = run_guarded(lambda: status(settings))
    rows = [
        {
            "migration": s.migration.label,
            "applied_at": s.applied_at.isoformat() + "Z" if s.applied_at else None,
        }
        for s in found
    ]
    emit(
        rows,
        as_json,
        lambda: table(
            [(r["migration"], r["applied_at"] or "pending") for r in rows],
            ["MIGRATION", "APPLIED (UTC)"],
        ),
    )
    if any(s.applied_at is None for s in found):
        raise SystemExit(1)


# -- zkq keys ----------------------------------------------------------------------------
@click.group("keys")
def keys() -> None:
    """API keys of the HTTP frontends: each has a tenant, scopes and a rate limit."""


@keys.command("create")
@mysql_option
@click.option("--tenant", required=True, help="Whose jobs the key submits and reads.")
@click.option(
    "--scopes",
    default="submit,read",
    show_default=True,
    help="Comma-separated: submit, read, admin (admin may do everything).",
)
@click.option("--name", default="", help="What the key is for, for operators.")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=None,
    help="Requests per minute (default: the frontends' default).",
)
@json_option
def create_command(
    mysql_url: str | None,
    tenant: str,
    scopes: str,
    name: str,
    rate_limit: int | None,
    as_json: bool,
) -> None:
    """Create a key and print its secret.  The secret is shown this once: store it now."""
    store = _key_store(mysql_url)
    key_id, secret = run_guarded(lambda: store.create(tenant, scopes, name, rate_limit))
    key = run_guarded(lambda: store.get(key_id))
    emit(
        {**key.to_dict(), "secret": secret},
        as_json,
        lambda: (
            f"{secret}\n"
            f"key {key.id} ({key.display_prefix}) for tenant {key.tenant}, "
            f"scopes {','.join(key.scope_list)}: the secret above is not shown again"
        ),
    )


@keys.command("list")
@mysql_option
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@json_option
def list_command(mysql_url: str | None, tenant: str | None, active: bool, as_json: bool) -> None:
    """List keys (never their secrets)."""
    store = _key_store(mysql_url)
    found = run_guarded(lambda: store.list(tenant, include_revoked=not active))
    emit(
        [k.to_dict() for k in found],
        as_json,
        lambda: table(
            [
                (
                    k.id,
                    k.display_prefix,
                    k.tenant,
                    ",".join(k.scope_list),
                    "default" if k.rate_limit_per_minute is None else k.rate_limit_per_minute,
                    k.created_at.strftime("%Y-%m-%d %H:%M"),
                    "revoked" if k.revoked else "active",
                    k.name,
                )
                for k in found
            ],
            ["ID", "PREFIX", "TENANT", "SCOPES", "LIMIT/MIN", "CREATED (UTC)", "STATE", "NAME"],
        ),
    )


@keys.command("revoke")
@mysql_option
@click.argument("key")
@json_option
def revoke_command(mysql_url: str | None, key: str, as_json: bool) -> None:
    """Revoke KEY (an id, or a prefix as `zkq keys list` shows it).  Frontends stop
    accepting it within a few seconds."""
    store = _key_store(mysql_url)
    revoked = run_guarded(lambda: store.revoke(key))
    emit(
        revoked.to_dict(),
        as_json,
        lambda: f"revoked key {revoked.id} ({revoked.display_prefix}) of {revoked.tenant}",
    )


COMMANDS = (db, keys)
