"""Manual use: python -m tests.deploy.testbed {up NAME..., down, status, ssh NAME [CMD...]}.

`up` leaves the testbed running and records it in <state-dir>/state.json, so `status`,
`ssh` and `down` work from another shell. Needs root.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import Testbed, aptproxy, hosts, network
from .common import DEFAULT_STATE_DIR


def _parse_host(spec: str) -> tuple[str, int | None]:
    # NAME or NAME=OCTET
    name, _, octet = spec.partition("=")
    return name, int(octet) if octet else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.testbed")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="bring up hosts (NAME or NAME=OCTET)")
    p_up.add_argument("hosts", nargs="+")
    p_up.add_argument("--inventory", type=Path, help="also write an Ansible inventory here")
    p_down = sub.add_parser("down", help="remove everything (also a crashed run's leftovers)")
    p_down.add_argument("--keep-files", action="store_true", help="keep hosts' upper layers")
    sub.add_parser("status", help="show hosts, processes and leftovers")
    p_ssh = sub.add_parser("ssh", help="ssh to a host (interactive without CMD)")
    p_ssh.add_argument("name")
    p_ssh.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if os.geteuid() != 0:
        parser.error("needs root (namespaces, mounts, links)")

    if args.cmd == "up":
        tb = Testbed(dict(_parse_host(h) for h in args.hosts), args.state_dir)
        tb.up()
        if args.inventory:
            tb.write_inventory(args.inventory)
        for name in tb.names:
            print(f"{name}\t{tb.address(name)}")
        print(f"ssh key: {tb.ssh_key}")
        return 0
    if args.cmd == "down":
        Testbed.attach(args.state_dir).down(keep_files=args.keep_files)
        return 0
    if args.cmd == "status":
        return _status(args.state_dir)
    tb = Testbed.attach(args.state_dir)
    ssh = tb.ssh_argv(args.name)
    if not args.command:
        ssh.insert(1, "-t")  # an interactive shell wants a terminal
    os.execvp(ssh[0], [*ssh, *args.command])


def _status(state_dir: Path) -> int:
    tb = Testbed.attach(state_dir)
    for name in tb.names:
        init = hosts.find_init(tb.host(name))
        print(f"{name}\t{tb.address(name)}\t" + (f"up (PID 1 = {init})" if init else "down"))
    acng = [p for p in (tb._state.apt_proxy_pid,) if p and aptproxy._is_acng(p)]
    print(f"apt proxy: {'pid ' + str(acng[0]) if acng else 'not running'}")
    print(f"namespaces: {' '.join(network.testbed_namespaces()) or '-'}")
    print(f"links: {' '.join(network.testbed_links()) or '-'}")
    mounts = [m for m in hosts.mountpoints() if m.startswith(str(state_dir))]
    print(f"mounts under {state_dir}: {len(mounts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
