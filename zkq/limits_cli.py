"""``zkq limits list|set|clear``: per-type concurrency limits, and what ``zkq status``
shows of them (the limits, the reserves, how many jobs wait on a cap).

The leader applies them at assignment (:mod:`zkq.coordinator.admission`); see
docs/architecture.md, "Fairness: reserved slots and type limits".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from zkq.coordinator.admission import Admission
from zkq.coordinator.census import LiveWorker, Reader
from zkq.coordinator.controls import Controls
from zkq.coordinator.limits import TypeLimit
from zkq.coordinator.roster import WorkerView
from zkq.coordinator.zk import ZkSession, zk_errors
from zkq.options import ZOOKEEPER, CliContext, connection_options, json_option, pass_cli
from zkq.output import emit, table


def _cap(value: int | None) -> str:
    return "-" if value is None else str(value)


def limits_rows(limits: dict[str, TypeLimit | None]) -> list[dict[str, Any]]:
    return [
        {"type": t, **(limit.to_dict() if limit else {"unreadable": True})}
        for t, limit in sorted(limits.items())
    ]


def limits_table(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        [
            (
                r["type"],
                "unreadable" if r.get("unreadable") else _cap(r.get("cluster")),
                "" if r.get("unreadable") else _cap(r.get("per_worker")),
                r.get("waiting", ""),
            )
            for r in rows
        ],
        ["TYPE", "CLUSTER", "PER WORKER", "WAITING ON A CAP"],
    )


def capped(
    session: ZkSession,
    deadline: float,
    workers: Sequence[LiveWorker],
    depths: dict[str, int],
    limits: dict[str, TypeLimit | None],
) -> dict[str, int]:
    """Pending jobs per type that no live worker may take now because of a limit or the
    reserve rule: the leader's rule, applied to what ZooKeeper holds now (each inbox job's
    record is read for its type, only when some cap or reserve is in force)."""
    readable = {t: limit for t, limit in limits.items() if limit is not None}
    views = [
        WorkerView(
            w.id,
            w.registration.types,
            w.registration.slots,
            w.registration.prefetch,
            w.registration.draining,
            set(w.inbox),
            w.registration.reserve,
            w.registration.lanes,
            w.registration.type_limits,
            w.registration.lost_slots,
        )
        for w in workers
    ]
    if not readable and not any(v.reserve or v.type_limits for v in views):
        return {}
    layout = session.settings.layout
    with zk_errors():
        records = Reader(session, deadline).data([layout.job(j) for w in workers for j in w.inbox])
    held: dict[str, dict[str, int]] = {}
    for w in workers:
        for job_id in w.inbox:
            found = records.get(layout.job(job_id))
            job_type = _type_of(found[0]) if found else None
            if job_type is not None:
                counts = held.setdefault(w.id, {})
                counts[job_type] = counts.get(job_type, 0) + 1
    admission = Admission()
    admission.begin(views, held, readable)
    return admission.capped(depths, views)


def _type_of(raw: bytes) -> str | None:
    try:
        found = json.loads(raw).get("type")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


@click.group()
def limits() -> None:
    """Per-type concurrency limits: the most assigned plus running jobs of a type, across
    the cluster and on any one worker.  Jobs over a limit wait pending; what already runs
    finishes."""


@limits.command("list")
@connection_options(ZOOKEEPER)
@json_option
@pass_cli
def list_limits(cli: CliContext) -> None:
    """Every type's limits."""
    rows = limits_rows(cli.with_client(lambda c: Controls(c.store).limits()))
    emit(rows, cli.as_json, lambda: limits_table(rows) if rows else "no limits set")


@limits.command("set")
@connection_options(ZOOKEEPER)
@click.argument("job_type")
@click.option(
    "--cluster",
    type=click.IntRange(0),
    default=None,
    help="The most jobs of the type assigned or running across the cluster.",
)
@click.option(
    "--per-worker",
    type=click.IntRange(0),
    default=None,
    help="The most jobs of the type assigned or running on any one worker.",
)
@json_option
@pass_cli
def set_limit(cli: CliContext, job_type: str, cluster: int | None, per_worker: int | None) -> None:
    """Limit JOB_TYPE (replacing its limits; an option left out is no cap)."""
    if cluster is None and per_worker is None:
        raise click.UsageError(
            "give --cluster N and/or --per-worker M (to remove a limit: zkq limits clear TYPE)"
        )
    limit = TypeLimit(cluster, per_worker)
    cli.with_client(lambda c: Controls(c.store).set_limit(job_type, limit))
    emit(
        {"type": job_type, **limit.to_dict()},
        cli.as_json,
        lambda: f"{job_type}: cluster {_cap(cluster)}, per worker {_cap(per_worker)}",
    )


@limits.command("clear")
@connection_options(ZOOKEEPER)
@click.argument("job_type")
@json_option
@pass_cli
def clear_limit(cli: CliContext, job_type: str) -> None:
    """Remove JOB_TYPE's limits."""
    changed = cli.with_client(lambda c: Controls(c.store).clear_limit(job_type))
    emit(
        {"type": job_type, "changed": changed},
        cli.as_json,
        lambda: f"{job_type}: no limits" + ("" if changed else " (had none)"),
    )


__all__ = ["capped", "limits", "limits_rows", "limits_table"]
