"""The testbed's network: one bridge in the root namespace, one network namespace per host.

Layout::

    root namespace                      namespace zkqtb-<name>
    zkqtb0 (bridge, 10.77.0.1/24) ---- <veth root side> == eth0 (10.77.0.<n>/24)

There is no NAT (the box has no iptables/nft), so hosts can only talk to each other and to
10.77.0.1, where the harness runs the apt proxy. Multicast snooping is switched off on the
bridge: with snooping on, the bridge only floods a group's traffic to ports that sent an IGMP
report, and keepalived's VRRP adverts (224.0.0.18, IP protocol 112) would depend on IGMP
timing; off, every multicast frame is flooded to every port like a dumb switch would.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .common import BRIDGE, GATEWAY, NETMASK_BITS, PREFIX, log, sh

IFNAMSIZ = 15  # the kernel's limit on interface names, without the trailing NUL


def netns_name(host: str) -> str:
    return f"{PREFIX}-{host}"


def veth_name(host: str) -> str:
    """Root-side veth name, ``zkqtb-<name>`` when it fits in 15 characters, else hashed.

    The hash keeps two long names with a common prefix apart, and a readable stem is kept so
    ``ip link`` output still says which host a veth belongs to.
    """
    name = f"{PREFIX}-{host}"
    if len(name) <= IFNAMSIZ:
        return name
    digest = hashlib.sha1(host.encode()).hexdigest()[:4]
    stem = host[: IFNAMSIZ - len(PREFIX) - 1 - 4]
    return f"{PREFIX}-{stem}{digest}"


def _link_exists(name: str) -> bool:
    return sh(["ip", "link", "show", "dev", name], check=False).returncode == 0


def ensure_bridge() -> None:
    if not _link_exists(BRIDGE):
        sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
    # Idempotent: `replace` does not fail when the address is already there.
    sh(["ip", "addr", "replace", f"{GATEWAY}/{NETMASK_BITS}", "dev", BRIDGE])
    # See the module docstring: flood multicast (VRRP) to every port.
    sh(["ip", "link", "set", BRIDGE, "type", "bridge", "mcast_snooping", "0"])
    sh(["ip", "link", "set", BRIDGE, "up"])
    snoop = Path(f"/sys/class/net/{BRIDGE}/bridge/multicast_snooping").read_text().strip()
    if snoop != "0":
        raise RuntimeError(f"{BRIDGE}: multicast_snooping is {snoop}, wanted 0")


def add_host(host: str, address: str) -> None:
    """Create the namespace and its wiring; idempotent only in the sense of 'fails loudly'."""
    ns, veth = netns_name(host), veth_name(host)
    remove_host(host)  # leftovers of a crashed run with the same name
    sh(["ip", "netns", "add", ns])
    # Create both ends in the root namespace under unique names, then move and rename the
    # host side: creating it as `eth0` directly would clash with the root's own eth0.
    peer = f"{veth[: IFNAMSIZ - 2]}-p"
    sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
    sh(["ip", "link", "set", peer, "netns", ns])
    sh(["ip", "link", "set", veth, "master", BRIDGE, "up"])
    nsx = ["ip", "-n", ns]
    sh([*nsx, "link", "set", peer, "name", "eth0"])
    sh([*nsx, "link", "set", "lo", "up"])
    sh([*nsx, "addr", "add", f"{address}/{NETMASK_BITS}", "dev", "eth0"])
    sh([*nsx, "link", "set", "eth0", "up"])
    sh([*nsx, "route", "add", "default", "via", GATEWAY])


def remove_host(host: str) -> None:
    ns, veth = netns_name(host), veth_name(host)
    if _link_exists(veth):
        sh(["ip", "link", "del", veth], check=False)
    if ns in list_namespaces():
        sh(["ip", "netns", "del", ns], check=False)


def cut_link(host: str) -> None:
    """Unplug the host's cable: the root-side end goes down, the host sees carrier loss."""
    sh(["ip", "link", "set", veth_name(host), "down"])


def restore_link(host: str) -> None:
    sh(["ip", "link", "set", veth_name(host), "up"])


def list_namespaces() -> list[str]:
    out = sh(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    return [entry["name"] for entry in json.loads(out or "[]")]


def testbed_namespaces() -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(f"{PREFIX}-")]


def namespace_pids(ns: str) -> list[int]:
    out = sh(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split()]


def testbed_links() -> list[str]:
    out = sh(["ip", "-j", "link", "show"], check=False).stdout.strip()
    return [e["ifname"] for e in json.loads(out or "[]") if e["ifname"].startswith(PREFIX)]


def teardown() -> None:
    """Delete every zkqtb namespace, veth and the bridge (processes must be gone already)."""
    for ns in testbed_namespaces():
        # Deleting the namespace also destroys its veth end, and with it the root-side peer.
        sh(["ip", "netns", "del", ns], check=False)
    for link in testbed_links():
        if link != BRIDGE:
            sh(["ip", "link", "del", link], check=False)
    if _link_exists(BRIDGE):
        sh(["ip", "link", "del", BRIDGE], check=False)
    log.debug("network torn down")
