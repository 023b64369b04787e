"""The limit on failed authentications per address, and whose X-Forwarded-For is believed."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from zkq.coordinator.errors import ConfigError
from zkq.frontend.proxies import TrustedProxyFix, parse_networks
from zkq.frontend.ratelimit import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_gets_its_budget_of_failures_then_waits_for_it_to_refill() -> None:
    clock = Clock()
    limiter = FailureLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 20  # one failure every 20 s
    assert limiter.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += 20
    assert limiter.retry_after("10.0.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 20
    clock.now += 3600  # a long quiet spell refills only up to the budget
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 20


def test_the_limiter_forgets_the_least_recent_addresses_past_its_bound() -> None:
    limiter = FailureLimiter(per_minute=1, clock=Clock(), max_addresses=2)
    for address in ("a", "b", "c"):
        limiter.failed(address)
    assert limiter.retry_after("a") is None  # forgotten: a full budget again
    assert limiter.retry_after("b") is not None and limiter.retry_after("c") is not None


def _echo_address(environ: dict[str, Any], start_response: Any) -> Any:
    return Response(environ["REMOTE_ADDR"])(environ, start_response)


@pytest.mark.parametrize(
    ("peer", "seen"),
    [
        ("127.0.0.1", "203.0.113.9"),  # HAProxy on loopback: its header is believed
        ("10.0.0.5", "203.0.113.9"),  # a proxy named by address
        ("198.51.100.7", "198.51.100.7"),  # anyone else: the peer, whatever it claims
    ],
)
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(peer: str, seen: str) -> None:
    app = TrustedProxyFix(_echo_address, 1, parse_networks("127.0.0.0/8, ::1, 10.0.0.5"))
    answer = Client(app).get(
        "/", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": peer}
    )
    assert answer.get_data(as_text=True) == seen


def test_a_trusted_proxy_that_is_not_an_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"ZKQ_TRUSTED_PROXIES: 'no such host\.invalid' is"):
        parse_networks("127.0.0.1,no such host.invalid")
    assert ipaddress.ip_network("127.0.0.1/32") in parse_networks("localhost")
