"""What ``zkq status`` shows: the ensemble, the leader, workers, queues and frontends, and
(with MySQL) the finished jobs the archive refused and quarantined.

Each part is read on its own, so a part that cannot be read (a ZooKeeper node down, no
HAProxy stats address) is reported as such instead of failing the whole view.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from zkq.coordinator import census, serving
from zkq.coordinator.client import Client
from zkq.coordinator.controls import Controls
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.zk import NoNode
from zkq.dev.fourletter import four_letter, parse_srvr
from zkq.limits_cli import capped, limits_rows, limits_table
from zkq.output import age, table, workers_table


def ensemble(connect_string: str) -> list[dict[str, Any]]:
    members = []
    for address in connect_string.split("/")[0].split(","):
        host, _, port = address.strip().rpartition(":")
        entry: dict[str, Any] = {"address": address.strip()}
        try:
            entry["healthy"] = four_letter(host, int(port), "ruok", timeout=1.0) == "imok"
            entry.update(parse_srvr(four_letter(host, int(port), "srvr", timeout=1.0)))
        except (OSError, ValueError) as exc:
            entry.update(mode="down", healthy=False, error=str(exc))
        members.append(entry)
    return members


def election(client: Client) -> dict[str, Any]:
    session = client.session
    path = client.config.zk.layout.election
    contenders = []
    try:
        nodes = session.get_children(path)
    except NoNode:  # no coordinator has ever run under this root: none leads
        nodes = []
    for node in sorted(nodes, key=lambda n: n[-10:]):
        try:
            contenders.append(session.get(f"{path}/{node}")[0].decode())
        except Exception:  # gone between the listing and the read
            continue
    return {"leader": contenders[0] if contenders else None, "coordinators": contenders}


#: the stats page's URI in zkq's HAProxy config (haproxy/haproxy.cfg.j2)
STATS_URI = "/stats"


def stats_base(address: str) -> tuple[str, bool]:
    """``address`` as the haproxy-stats library wants it (``host:port/uri``, to which it
    appends ``/;csv;norefresh``), and whether it is HTTPS.

    Takes what an operator has at hand: ``host:port`` (the URI is then zkq's ``/stats``),
    ``host:port/uri`` (``host:port/`` for a stats page at the root), or the stats page's
    URL, as ``zkq dev`` records it in ``stats_url``, ``;csv`` and all.
    """
    text = address.strip()
    https = text.lower().startswith("https://")
    text = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", text)
    text = re.split(r"[;?#]", text, maxsplit=1)[0]
    host, slash, uri = text.partition("/")
    if not slash:
        return host + STATS_URI, https
    uri = uri.rstrip("/")
    return (f"{host}/{uri}" if uri else host), https


def check_status(raw: object) -> str:
    """A server's last health-check result (``L7OK``). HAProxy prefixes it with ``* ``
    while the next check is under way; that says nothing about the server, so drop it."""
    return str(raw or "").removeprefix("* ")


def frontends(stats_address: str) -> list[dict[str, Any]]:
    """The servers of every backend as HAProxy sees them (its CSV stats), named as in
    HAProxy's config (``frontend-1``), each with its address (``host:port``, which HAProxy
    reports when its stats section says ``stats show-legends``, as zkq's does)."""
    # the library configures the root logger when first imported: undo that, and keep
    # its own complaints off our output (a failure is reported below, in one line)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import haproxystats

    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("haproxystats").setLevel(logging.CRITICAL)
    base, https = stats_base(stats_address)
    server = haproxystats.HAProxyServer(base, timeout=2, https=https)
    if server.failed:
        raise OSError(
            f"no HAProxy stats at {server.url}: give --haproxy-stats as host:port/URI "
            "(the stats page's URI)"
        )
    return [
        {
            "backend": str(backend.name),
            "server": str(listener.name),
            "address": str(getattr(listener, "addr", "") or ""),
            "status": str(listener.status),
            "sessions": listener.scur,
            "total_sessions": listener.stot,
            "http_5xx": getattr(listener, "hrsp_5xx", 0) or 0,
            "check": check_status(getattr(listener, "check_status", "")),
        }
        for backend in server.backends
        for listener in backend.listeners
    ]


def collect(client: Client, haproxy_stats: str | None) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    view: dict[str, Any] = {"root": client.config.zk.root, "time": time.time()}
    view["ensemble"] = ensemble(client.config.zk.hosts)
    view.update(election(client))
    live = census.workers(client.session, deadline)
    view["workers"] = [
        {
            "id": w.id,
            "host": w.registration.host,
            "slots": w.registration.slots,
            "lost_slots": w.registration.lost_slots,
            "busy": len(w.inbox),  # assigned or running: named as by `zkq workers`
            "pool": w.registration.pool,
            "draining": w.registration.draining,
            "types": sorted(w.registration.types),
            "inbox": w.inbox,
            "reserve": w.registration.reserve,
        }
        for w in live
    ]
    view["queues"] = [q.__dict__ for q in census.queues(client.session, deadline)]
    type_limits = Controls(client.store).limits()
    depths = {q["type"]: q["depth"] for q in view["queues"]}
    waiting = capped(client.session, deadline, live, depths, type_limits)
    view["limits"] = limits_rows(type_limits)
    for row in view["limits"]:
        row["waiting"] = waiting.get(row["type"], 0)
    view["capped"] = waiting
    view["scheduled"] = census.scheduled(client.session, deadline)
    view["unserved"] = serving.unserved_queues(view["queues"], view["workers"])
    view["unserved_after"] = client.config.unserved_after
    if haproxy_stats:
        try:
            view["frontends"] = frontends(haproxy_stats)
        except OSError as exc:
            view["frontends"] = []
            view["frontends_error"] = str(exc)
    if client.archive is not None:
        try:
            view["quarantined"] = client.archive.quarantined()
        except ZkqError as exc:
            view["quarantined"] = None
            view["archive_error"] = f"cannot read the archive: {exc}"
    problems = [
        f"ZooKeeper {m['address']} is {m['mode']}"
        for m in view["ensemble"]
        if m["mode"] not in ("leader", "follower", "standalone")
    ]
    if view["leader"] is None:
        problems.append("no coordinator is leading")
    if not view["workers"]:
        problems.append("no worker is registered")
    problems += [
        f"frontend {f['server']} is {f['status']}"
        for f in view.get("frontends", [])
        if not f["status"].startswith("UP")
    ]
    if "frontends_error" in view:
        problems.append(view["frontends_error"])
    problems += serving.unserved_problems(view["unserved"], view["unserved_after"])
    problems += quarantine_problems(view)
    view["problems"] = problems
    view["ok"] = not problems
    return view


def quarantine_problems(view: dict[str, Any]) -> list[str]:
    if view.get("archive_error"):
        return [view["archive_error"]]
    count = view.get("quarantined")
    if not count:
        return []
    return [
        f"{count} finished job(s) quarantined: the archive refused their records; each is "
        "still shown by `zkq job ID`; see MySQL's job_quarantine (reason column) and delete "
        "a row once dealt with"
    ]


def render(view: dict[str, Any]) -> str:
    parts = [
        "ZooKeeper ensemble",
        table(
            [
                (
                    m["address"],
                    m["mode"],
                    "yes" if m.get("healthy") else "no",
                    m.get("connections"),
                    m.get("zxid"),
                    (m.get("latency_ms") or {}).get("avg"),
                )
                for m in view["ensemble"]
            ],
            ["ADDRESS", "MODE", "HEALTHY", "CONNECTIONS", "ZXID", "AVG LATENCY MS"],
        ),
        "",
        f"Coordinators: {len(view['coordinators'])}, leader {view['leader'] or 'NONE'}",
        "",
        "Workers",
        workers_table(view["workers"]),
        "",
        "Queues",
        table(
            [
                (
                    q["type"],
                    q["depth"],
                    age(q["oldest_age"]),
                    q["running"],
                    "yes" if q["paused"] else "no",
                )
                for q in view["queues"]
            ],
            ["TYPE", "PENDING", "OLDEST", "RUNNING", "PAUSED"],
        ),
    ]
    if view.get("limits") or view.get("capped"):
        listed = {r["type"] for r in view.get("limits", [])}
        extra = [
            {"type": t, "cluster": None, "per_worker": None, "waiting": n}
            for t, n in sorted(view.get("capped", {}).items())
            if t not in listed  # held back by the reserve rule or a handler's concurrency
        ]
        parts += ["", "Limits", limits_table([*view.get("limits", []), *extra])]
    if "scheduled" in view:
        waiting = view["scheduled"]
        parts.append(f"Scheduled: {waiting['scheduled']} waiting, {waiting['due']} due")
    if "frontends" in view:
        parts += [
            "",
            "Frontends (HAProxy)",
            table(
                [
                    (
                        f["backend"],
                        f["server"],
                        f["address"] or "-",
                        f["status"],
                        f["check"],
                        f["sessions"],
                        f["total_sessions"],
                        f["http_5xx"],
                    )
                    for f in view["frontends"]
                ],
                ["BACKEND", "SERVER", "ADDRESS", "STATUS", "CHECK", "SESSIONS", "TOTAL", "5XX"],
            ),
        ]
    parts += ["", "OK" if view["ok"] else "PROBLEMS: " + "; ".join(view["problems"])]
    return "\n".join(parts)
