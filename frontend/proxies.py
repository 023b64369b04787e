"""Which peers may say who the client is.

Behind HAProxy the client's address comes in ``X-Forwarded-For`` (HAProxy appends the peer
it saw; ProxyFix takes that last entry).  A client that reaches a frontend *directly* can
write the header too, so it is believed only from the proxies' own addresses
(``ZKQ_TRUSTED_PROXIES``): from anyone else the TCP peer is the client, whatever the header
says.  The client's address is what the request log records and what the limit on failed
authentications counts by (:class:`zkq.frontend.ratelimit.FailureLimiter`), so a client
able to choose it could dodge that limit, or spend another client's budget.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from zkq.coordinator.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.0/8, ::1, 10.1.2.3, lb1"`` as networks (an address is a network of one;
    a host name stands for its addresses, resolved now, at start-up)."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            networks.extend(_resolve(item))
    return tuple(networks)


def _resolve(name: str) -> list[Network]:
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            f"ZKQ_TRUSTED_PROXIES: {name!r} is neither an address, a network nor a host name "
            "that resolves (e.g. 10.0.0.5, 10.0.0.0/24 or lb1; comma-separated)"
        ) from exc
    return [ipaddress.ip_network(str(info[4][0]).split("%")[0]) for info in found]


def trusted(address: str | None, networks: Iterable[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # a unix socket peer, say: not one of the proxies
    return any(ip in net for net in networks)


class TrustedProxyFix:
    """ProxyFix for requests whose TCP peer is a trusted proxy; the rest untouched."""

    def __init__(self, app: Any, hops: int, networks: Iterable[Network]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops)
        self.networks = tuple(networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if trusted(environ.get("REMOTE_ADDR"), self.networks):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
