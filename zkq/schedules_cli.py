"""``zkq schedules``: periodic schedules (cron or every N seconds) that the leader turns into
jobs, one per tick.  Writing commands use this process's ZooKeeper credential, as ``zkq
pause`` does; a schedule belongs to a tenant (``--owner``) or to ``_``, the operators'."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from zkq.coordinator.schedule_book import ScheduleBook, ScheduleView
from zkq.coordinator.schedules import SYSTEM_OWNER, ScheduleRecord
from zkq.options import ZOOKEEPER, CliContext, connection_options, json_option, pass_cli
from zkq.output import emit, table

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")

owner_option = click.option(
    "--owner",
    default=SYSTEM_OWNER,
    show_default=True,
    help="Whose schedule: a tenant, or _ for operators' and config schedules.",
)


def seconds(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``2h``, ``1d`` as seconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise click.BadParameter(f"{text!r} is not a duration: use 30s, 5m, 2h or 1d")
    return float(found.group(1)) * _UNITS[found.group(2)]


def book(cli: CliContext, owner: str) -> ScheduleBook:
    client = cli.client()
    return ScheduleBook(client.session, client.store.layout, owner)


def show(view: ScheduleView) -> str:
    r, s = view.record, view.state
    when = f"cron {r.cron} ({r.timezone})" if r.cron else f"every {r.every:g}s"
    lines = [
        f"{r.owner}/{r.name}: {when}{'  PAUSED' if r.paused else ''}",
        f"  job: type {r.template['type']}, priority {r.template['priority']}, "
        f"max attempts {r.template['max_attempts']}, timeout {r.template['timeout']:g}s",
        f"  misfire {r.misfire} (grace {r.grace:g}s), overlap {r.overlap}, source {r.source}",
        f"  last tick: {s.last_tick or '-'}  last job: {s.last_job or '-'}  skipped: {s.skipped}",
    ]
    return "\n".join(lines)


@click.group("schedules")
def schedules() -> None:
    """Periodic schedules: jobs made by the leader on a cron or every N seconds.

    Each tick makes exactly one job, whose id is derived from the tick.  Ticks missed
    while no coordinator led (or while paused) follow --misfire: run-once makes one job
    for the latest of them, skip makes none.
    """


@schedules.command("list")
@connection_options(ZOOKEEPER)
@owner_option
@click.option("--all", "everyone", is_flag=True, help="Every owner's schedules.")
@json_option
@pass_cli
def list_command(cli: CliContext, owner: str, everyone: bool) -> None:
    """List schedules with their last tick."""
    views = cli.with_client(lambda _c: book(cli, owner).list(everyone=everyone))
    rows = [
        [
            f"{v.record.owner}/{v.record.name}",
            v.record.cron or f"every {v.record.every:g}s",
            v.record.template["type"],
            "paused" if v.record.paused else "active",
            v.state.last_tick or "-",
            v.state.skipped,
        ]
        for v in views
    ]
    emit(
        [v.to_dict() for v in views],
        cli.as_json,
        lambda: (
            table(rows, ["schedule", "when", "type", "status", "last tick", "skipped"])
            if rows
            else "no schedules"
        ),
    )


@schedules.command("show")
@connection_options(ZOOKEEPER)
@click.argument("name")
@owner_option
@json_option
@pass_cli
def show_command(cli: CliContext, name: str, owner: str) -> None:
    """Show one schedule: its definition and where it is."""
    view = cli.with_client(lambda _c: book(cli, owner).get(name))
    emit(view.to_dict(), cli.as_json, lambda: show(view))


@schedules.command("add")
@connection_options(ZOOKEEPER)
@click.argument("name")
@click.option("--cron", "cron", metavar="EXPR", help="Five-field cron, as '30 2 * * *'.")
@click.option("--every", metavar="DURATION", help="An interval of at least 1s: 30s, 5m, 2h.")
@click.option("--tz", "timezone", default="UTC", show_default=True, help="IANA zone of --cron.")
@click.option("--type", "job_type", required=True, help="The job type each tick submits.")
@click.option("--payload", default="null", metavar="JSON", help="The jobs' payload.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--max-attempts", type=int, default=1, show_default=True)
@click.option("--timeout", type=float, default=300.0, show_default=True, metavar="SECONDS")
@click.option(
    "--misfire",
    type=click.Choice(["run-once", "skip"]),
    default="run-once",
    show_default=True,
    help="Ticks missed (no leader, paused): one job for the latest, or none.",
)
@click.option(
    "--misfire-grace",
    type=float,
    default=None,
    metavar="SECONDS",
    help="How late a tick still runs as itself (default: min(60s, period/2)).",
)
@click.option(
    "--overlap",
    type=click.Choice(["allow", "skip"]),
    default="allow",
    show_default=True,
    help="skip: no new job while the last one has not finished.",
)
@owner_option
@json_option
@pass_cli
def add_command(
    cli: CliContext,
    name: str,
    cron: str | None,
    every: str | None,
    timezone: str,
    job_type: str,
    payload: str,
    priority: int,
    max_attempts: int,
    timeout: float,
    misfire: str,
    misfire_grace: float | None,
    overlap: str,
    owner: str,
) -> None:
    """Add schedule NAME: --cron EXPR or --every DURATION, making jobs of --type."""
    if (cron is None) == (every is None):
        raise click.UsageError("give exactly one of --cron and --every")
    try:
        body: Any = json.loads(payload)
    except ValueError:
        raise click.BadParameter(f"{payload!r} is not JSON", param_hint="--payload") from None

    interval = seconds(every) if every is not None else None

    def run(_client: Any) -> tuple[ScheduleView, bool]:
        record = ScheduleRecord(
            name=name,
            owner=owner,
            cron=cron,
            every=interval,
            timezone=timezone,
            template={
                "type": job_type,
                "payload": body,
                "priority": priority,
                "max_attempts": max_attempts,
                "timeout": timeout,
            },
            misfire=misfire.replace("-", "_"),
            misfire_grace=misfire_grace,
            overlap=overlap,
        )
        return book(cli, owner).add(record)

    view, created = cli.with_client(run)
    emit(
        {**view.to_dict(), "created": created},
        cli.as_json,
        lambda: f"schedule {owner}/{name} " + ("added" if created else "exists (the same)"),
    )


def _toggle(cli: CliContext, name: str, owner: str, paused: bool) -> None:
    def run(_client: Any) -> ScheduleView:
        if paused:
            return book(cli, owner).pause(name)
        return book(cli, owner).resume(name)

    view = cli.with_client(run)
    emit(
        view.to_dict(),
        cli.as_json,
        lambda: f"schedule {owner}/{name} " + ("paused" if paused else "resumed"),
    )


@schedules.command("pause")
@connection_options(ZOOKEEPER)
@click.argument("name")
@owner_option
@json_option
@pass_cli
def pause_command(cli: CliContext, name: str, owner: str) -> None:
    """Stop a schedule's ticks until resumed."""
    _toggle(cli, name, owner, True)


@schedules.command("resume")
@connection_options(ZOOKEEPER)
@click.argument("name")
@owner_option
@json_option
@pass_cli
def resume_command(cli: CliContext, name: str, owner: str) -> None:
    """Resume a paused schedule; ticks missed meanwhile follow its misfire policy."""
    _toggle(cli, name, owner, False)


@schedules.command("remove")
@connection_options(ZOOKEEPER)
@click.argument("name")
@owner_option
@json_option
@pass_cli
def remove_command(cli: CliContext, name: str, owner: str) -> None:
    """Remove a schedule (jobs it made stay).  A config schedule comes back when a
    coordinator that declares it leads: take it out of the config first."""
    cli.with_client(lambda _c: book(cli, owner).remove(name))
    emit(
        {"owner": owner, "name": name, "removed": True},
        cli.as_json,
        lambda: f"schedule {owner}/{name} removed",
    )
