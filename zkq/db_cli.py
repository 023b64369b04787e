"""``zkq db`` and ``zkq keys``: the MySQL side of a cluster.

``zkq db migrate`` applies the schema migrations (safe to run from several places at once),
``zkq db status`` shows which are applied.  ``zkq keys create|list|revoke`` manage the API
keys of the HTTP frontends; ``create`` prints the secret once, and only its hash is kept.

Each takes ``--mysql URL`` (else ``ZKQ_MYSQL_URL``, else ``[mysql] url`` in the config
file: :mod:`zkq.options`) and ``--json``; exit statuses as every ``zkq`` command: 1
refused, 2 usage, 3 MySQL unreachable.
"""

from __future__ import annotations

from typing import Any

import click

from zkq.options import MYSQL, CliContext, connection_options, json_option, pass_cli
from zkq.output import emit, run_guarded, table


def _key_store(cli: CliContext) -> Any:
    from zkq.frontend.keys import KeyStore

    return KeyStore(cli.mysql_pool(), cache_seconds=0)


# -- zkq db ------------------------------------------------------------------------------
@click.group("db")
def db() -> None:
    """The MySQL database: API keys, rate limits, request log and job archive."""


@db.command("migrate")
@connection_options(MYSQL)
@json_option
@pass_cli
def migrate_command(cli: CliContext) -> None:
    """Apply the schema migrations this zkq ships that the database lacks.

    Idempotent, and safe to run from two places at once (a lock serialises them).
    """
    from zkq.coordinator.migrate import available, migrate

    settings = cli.mysql()

    def progress(message: str) -> None:
        if not cli.as_json:
            click.echo(message, err=True)

    applied = run_guarded(lambda: migrate(settings, progress=progress))
    current = max((m.version for m in available()), default=0)
    emit(
        {"applied": [m.label for m in applied], "version": current},
        cli.as_json,
        lambda: (
            f"applied {len(applied)} migration(s); the schema is at version {current}"
            if applied
            else f"the schema is up to date (version {current})"
        ),
    )


@db.command("status")
@connection_options(MYSQL)
@json_option
@pass_cli
def status_command(cli: CliContext) -> None:
    """Which migrations are applied (exit 1 when some are missing)."""
    from zkq.coordinator.migrate import status

    settings = cli.mysql()
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
        cli.as_json,
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
@connection_options(MYSQL)
@click.option("--tenant", required=True, help="Whose jobs the key submits and reads.")
@click.option(
    "--scopes",
    default="submit,read",
    show_default=True,
    help="Comma-separated: submit, read, admin (admin may do everything, and reads and "
    "cancels every tenant's jobs, those of `zkq submit` included).",
)
@click.option("--name", default="", help="What the key is for, for operators.")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=None,
    help="Requests per minute (default: the frontends' default).",
)
@json_option
@pass_cli
def create_command(
    cli: CliContext, tenant: str, scopes: str, name: str, rate_limit: int | None
) -> None:
    """Create a key and print its secret.  The secret is shown this once: store it now."""
    store = _key_store(cli)
    key_id, secret = run_guarded(lambda: store.create(tenant, scopes, name, rate_limit))
    key = run_guarded(lambda: store.get(key_id))
    emit(
        {**key.to_dict(), "secret": secret},
        cli.as_json,
        lambda: (
            f"{secret}\n"
            f"key {key.id} ({key.display_prefix}) for tenant {key.tenant}, "
            f"scopes {','.join(key.scope_list)}: the secret above is not shown again"
        ),
    )


@keys.command("list")
@connection_options(MYSQL)
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@json_option
@pass_cli
def list_command(cli: CliContext, tenant: str | None, active: bool) -> None:
    """List keys (never their secrets)."""
    store = _key_store(cli)
    found = run_guarded(lambda: store.list(tenant, include_revoked=not active))
    emit(
        [k.to_dict() for k in found],
        cli.as_json,
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
@connection_options(MYSQL)
@click.argument("key")
@json_option
@pass_cli
def revoke_command(cli: CliContext, key: str) -> None:
    """Revoke KEY (an id, or a prefix as `zkq keys list` shows it).  Frontends stop
    accepting it within a few seconds."""
    from zkq.demo import forget_revoked
    from zkq.dev.discovery import state_dir

    store = _key_store(cli)
    revoked = run_guarded(lambda: store.revoke(key))
    # the demo key `make run` keeps must not come back with the next run's fresh database
    forgotten = forget_revoked(revoked.prefix, state_dir())
    emit(
        {**revoked.to_dict(), "demo_key_forgotten": forgotten},
        cli.as_json,
        lambda: (
            f"revoked key {revoked.id} ({revoked.display_prefix}) of {revoked.tenant}"
            + ("; it was `make run`'s demo key: the next run makes a new one" if forgotten else "")
        ),
    )


COMMANDS = (db, keys)
