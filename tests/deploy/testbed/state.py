"""state.json: what a testbed started, so `down` in another process finds it by PID.

Only a help: `down` also finds everything by name (the zkqtb prefix) and by path (mounts and
process roots under the state dir), so a lost or stale state file leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class HostState:
    octet: int
    launcher_pid: int | None = None
    init_pid: int | None = None


@dataclass
class State:
    apt_proxy_pid: int | None = None
    hosts: dict[str, HostState] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> State:
        try:
            raw = json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return cls()
        hosts = {name: HostState(**h) for name, h in raw.get("hosts", {}).items()}
        return cls(apt_proxy_pid=raw.get("apt_proxy_pid"), hosts=hosts)

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, state_dir / "state.json")  # readers never see half a file
