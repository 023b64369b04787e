"""``zkq zk``: znodes as they are, with zkq's JSON records decoded for reading."""

from __future__ import annotations

import json
from typing import Any

from zkq.coordinator.client import Client
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.zk import NoNode, Stat


def resolve(client: Client, path: str) -> str:
    """An absolute path stays; a relative one is taken under the cluster's root."""
    if path.startswith("/"):
        return path.rstrip("/") or "/"
    root = client.config.zk.root
    return f"{root}/{path}".rstrip("/") if path else root


def _decode(raw: bytes | None) -> tuple[str, Any]:
    if not raw:
        return "empty", None
    try:
        return "json", json.loads(raw)
    except ValueError:
        pass
    try:
        return "text", raw.decode()
    except UnicodeDecodeError:
        return "bytes", raw.hex()


def _stat(stat: Stat) -> dict[str, Any]:
    return {
        "version": stat.version,
        "children": stat.num_children,
        "bytes": stat.data_length,
        "ephemeral_owner": f"0x{stat.ephemeral_owner:x}" if stat.ephemeral_owner else None,
        "created": stat.created,
        "modified": stat.modified,
    }


def ls(client: Client, path: str) -> dict[str, Any]:
    full = resolve(client, path)
    try:
        children = sorted(client.session.get_children(full))
    except NoNode:
        raise InvalidInput(f"no znode at {full}") from None
    return {"path": full, "children": children}


def get(client: Client, path: str) -> dict[str, Any]:
    full = resolve(client, path)
    try:
        raw, stat = client.session.get(full)
    except NoNode:
        raise InvalidInput(f"no znode at {full}") from None
    kind, value = _decode(raw)
    return {"path": full, "kind": kind, "data": value, "stat": _stat(stat)}


def render_get(found: dict[str, Any]) -> str:
    data = found["data"]
    shown = json.dumps(data, indent=2) if found["kind"] == "json" else str(data or "")
    stat = found["stat"]
    head = (
        f"{found['path']}  (version {stat['version']}, {stat['bytes']} bytes, "
        f"{stat['children']} children"
        + (f", ephemeral of session {stat['ephemeral_owner']}" if stat["ephemeral_owner"] else "")
        + ")"
    )
    return head + ("\n" + shown if shown else "")


def tree(client: Client, path: str, depth: int, max_children: int) -> dict[str, Any]:
    zk = client.session

    def walk(node: str, level: int) -> dict[str, Any]:
        try:
            children = sorted(zk.get_children(node))
        except NoNode:
            return {"path": node, "gone": True}
        entry: dict[str, Any] = {"path": node, "children_total": len(children)}
        if level < depth:
            entry["children"] = [
                walk(f"{node.rstrip('/')}/{child}", level + 1) for child in children[:max_children]
            ]
        return entry

    full = resolve(client, path)
    if zk.exists(full) is None:
        raise InvalidInput(f"no znode at {full}")
    return walk(full, 0)


def render_tree(found: dict[str, Any]) -> str:
    lines: list[str] = []

    def show(entry: dict[str, Any], indent: str) -> None:
        name = entry["path"].rsplit("/", 1)[-1] or "/"
        total = entry.get("children_total", 0)
        lines.append(f"{indent}{name}" + (f"  ({total})" if total else ""))
        shown = entry.get("children", [])
        for child in shown:
            show(child, indent + "  ")
        if shown and total > len(shown):
            lines.append(f"{indent}  … {total - len(shown)} more")

    lines.append(found["path"] + f"  ({found.get('children_total', 0)})")
    for child in found.get("children", []):
        show(child, "  ")
    return "\n".join(lines)
