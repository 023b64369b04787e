"""Ansible inventory for the testbed hosts.

Written as JSON in a ``.yml``/``.json`` file: JSON is YAML, so Ansible's yaml inventory
plugin reads it, and host variables keep their types (an INI inventory would re-parse every
value as a Python literal). Stdlib only, no PyYAML needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


def build(
    addresses: Mapping[str, str],
    key: Path,
    groups: Mapping[str, Iterable[str]] | None = None,
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
    groupvars: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    for name, address in addresses.items():
        hosts[name] = {"ansible_host": address, **dict((hostvars or {}).get(name, {}))}
    children: dict[str, Any] = {}
    for group, members in (groups or {}).items():
        members = list(members)
        unknown = sorted(set(members) - set(addresses))
        if unknown:
            raise ValueError(f"group {group!r} names unknown hosts: {unknown}")
        children[group] = {"hosts": {m: None for m in members}}
        if groupvars and group in groupvars:
            children[group]["vars"] = dict(groupvars[group])
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": SSH_COMMON_ARGS,
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "hosts": hosts,
            "children": children,
        }
    }


def write(path: Path, inventory: Mapping[str, Any]) -> Path:
    if path.suffix not in (".yml", ".yaml", ".json"):
        raise ValueError(f"{path}: use a .yml, .yaml or .json name (the yaml plugin's)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(inventory, indent=2) + "\n")
    return path
