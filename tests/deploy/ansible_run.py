"""Running the project's playbooks from the tests, as an operator would, and reading the
recap at the end of each run ("zk1 : ok=40 changed=0 unreachable=0 failed=0 ...")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkq.dev.owner import OWNERS_ENV

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
TESTBED_INVENTORY = ANSIBLE_DIR / "inventories" / "testbed"

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


@dataclass
class PlaybookRun:
    playbook: str
    returncode: int
    seconds: float
    log: Path
    #: host -> {"ok": n, "changed": n, "failed": n, "unreachable": n, ...}
    recap: dict[str, dict[str, int]]

    def changed_hosts(self) -> dict[str, int]:
        return {h: c["changed"] for h, c in self.recap.items() if c.get("changed")}

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    recap: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap, recap = True, {}
            continue
        if in_recap:
            match = _RECAP.match(line.strip())
            if match:
                counts = dict(pair.split("=") for pair in match["counts"].split())
                recap[match["host"]] = {k: int(v) for k, v in counts.items()}
    return recap


def environment() -> dict[str, str]:
    # Not marked as the test run's (zkq.dev.owner): ssh's control masters outlive each
    # playbook by ControlPersist and end on their own; one to a host the test cut off
    # would otherwise be reported as a leak when the run ends.
    env = {k: v for k, v in os.environ.items() if k != OWNERS_ENV}
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        # the tests read the plain recap; per-task timings would only lengthen the log
        ANSIBLE_CALLBACKS_ENABLED="",
        PYTHONUNBUFFERED="1",
    )
    return env


def playbook(
    name: str,
    log_dir: Path,
    inventories: Sequence[Path] = (TESTBED_INVENTORY,),
    args: Sequence[str] = (),
    timeout: float = 1200,
) -> PlaybookRun:
    """Run ``ansible-playbook`` on one of the project's playbooks; its output goes to a log
    file of its own (shown by :meth:`PlaybookRun.tail` when a test fails)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{time.strftime('%H%M%S')}-{Path(name).stem}.log"
    argv = ["ansible-playbook", name]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    argv += list(args)
    started = time.monotonic()
    with log.open("w") as out:
        # its own process group: on a timeout, its ssh children go with it
        proc = subprocess.Popen(
            argv,
            cwd=ANSIBLE_DIR,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    seconds = time.monotonic() - started
    return PlaybookRun(name, returncode, seconds, log, parse_recap(log.read_text()))


def hostvars(inventories: Sequence[Path] = (TESTBED_INVENTORY,)) -> dict[str, dict[str, Any]]:
    """Each host's variables as Ansible reads the inventory (group_vars included): the one
    source of truth for the test hosts' addresses and the floating address."""
    argv = ["ansible-inventory", "--list"]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    proc = subprocess.run(
        argv, cwd=ANSIBLE_DIR, env=environment(), capture_output=True, text=True, check=True
    )
    found: dict[str, dict[str, Any]] = json.loads(proc.stdout)["_meta"]["hostvars"]
    return found


def inventory_hosts(inventories: Sequence[Path] = (TESTBED_INVENTORY,)) -> dict[str, str]:
    """host -> address."""
    return {host: str(v["ansible_host"]) for host, v in hostvars(inventories).items()}
