"""The frontend's settings, loaded in layers when the app is created (never at import):
these defaults, then every ``ZKQ_*`` environment variable (prefix stripped, values parsed as
JSON when they are JSON, as Flask's ``from_prefixed_env`` does), then the test overrides.

=========================  ====================================================  ==========
setting (env ZKQ_...)      meaning                                               default
=========================  ====================================================  ==========
ZK_HOSTS                   ZooKeeper connect string                              127.0.0.1:2181
ROOT                       root znode of the cluster                             /zkq
SESSION_TIMEOUT            ZooKeeper session timeout asked for, seconds          10
ZK_AUTH_FILE               file (0600) with the frontend's ZooKeeper credential  (unset:
ZK_AUTH                    or the credential itself (``user:password``)          anonymous)
ZK_ACL                     every role's identity (:mod:`zkq.coordinator.acl`)    (unset)
PAYLOAD_LIMIT              largest payload, bytes (the coordinator's limit)      65536
MYSQL_URL                  ``mysql://user:pass@host:port/db`` (the colleague's   (unset)
                           :mod:`zkq.coordinator.mysql` reads it)
ZK_TIMEOUT                 deadline of one request's ZooKeeper work, seconds     5
ZK_DISCONNECTED_WAIT       how long a request waits for a lost connection        1.0
ZK_READY_GRACE             /readyz stays 200 this long after ZooKeeper was lost  3.0
                           (an election), seconds; never connected: 503
MAX_WAIT                   cap of ``?wait=`` long-polls, seconds                 60
MAX_BATCH                  jobs per ``POST /v1/jobs/batch``                      1000
MAX_CONTENT_LENGTH         largest request body, bytes                           8 MiB
LIST_SCAN_BUDGET           job records one list page may read from ZooKeeper     2000
RETRY_AFTER                ``Retry-After`` of a 503, seconds                     2
PROXY_HOPS                 proxies in front whose X-Forwarded-For is trusted     1
TRUSTED_PROXIES            addresses or networks (comma-separated) of those      127.0.0.0/8,
                           proxies: X-Forwarded-For from any other peer is       ::1
                           ignored, so a client cannot choose its address
AUTH_FAILURES_PER_MINUTE   requests without a valid key one client address may   60
                           make a minute (per frontend process); then 429
MAX_TYPES_PER_TENANT       distinct job types a tenant may use; a new one past   100
                           that is refused with 409
DEFAULT_RATE_LIMIT         requests a minute of a key with no limit of its own   600
AUTH                       ``on``, or ``off`` for benchmarks only: no key        on
                           lookup, rate limit or request log; every request
                           acts as tenant ``bench-no-auth`` with every scope
=========================  ====================================================  ==========
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ConfigError
from zkq.frontend.proxies import parse_networks

DEFAULTS: dict[str, Any] = {
    "ZK_HOSTS": "127.0.0.1:2181",
    "ROOT": "/zkq",
    "SESSION_TIMEOUT": 10.0,
    "PAYLOAD_LIMIT": 64 * 1024,
    "RESULT_LIMIT": 64 * 1024,
    "MYSQL_URL": None,
    "ZK_AUTH_FILE": None,
    "ZK_AUTH": None,
    "ZK_ACL": None,
    "ZK_TIMEOUT": 5.0,
    "ZK_DISCONNECTED_WAIT": 1.0,
    "ZK_READY_GRACE": 3.0,
    "MAX_WAIT": 60.0,
    "MAX_BATCH": 1000,
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "LIST_SCAN_BUDGET": 2000,
    "RETRY_AFTER": 2,
    "PROXY_HOPS": 1,
    "TRUSTED_PROXIES": "127.0.0.0/8,::1",
    "AUTH_FAILURES_PER_MINUTE": 60,
    "MAX_TYPES_PER_TENANT": 100,
    "DEFAULT_RATE_LIMIT": 600,
    "AUTH": "on",
    # errors are answered by our handlers in our shape; never let Flask re-raise them
    "PROPAGATE_EXCEPTIONS": False,
    "JSON_SORT_KEYS": False,
}

#: ZKQ_AUTH's values; "off" is a benchmarking switch (docs/http.md)
AUTH_MODES = ("on", "off")

_POSITIVE_NUMBERS = (
    "SESSION_TIMEOUT",
    "ZK_TIMEOUT",
    "ZK_DISCONNECTED_WAIT",
    "ZK_READY_GRACE",
    "MAX_WAIT",
    "MAX_BATCH",
    "MAX_CONTENT_LENGTH",
    "LIST_SCAN_BUDGET",
    "RETRY_AFTER",
    "DEFAULT_RATE_LIMIT",
    "AUTH_FAILURES_PER_MINUTE",
    "MAX_TYPES_PER_TENANT",
)


def load(app: Flask, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` in layers and check it; raises :class:`ConfigError`."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("ZKQ")
    if test_config is not None:
        app.config.from_mapping(test_config)
    for key in _POSITIVE_NUMBERS:
        value = app.config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"ZKQ_{key} must be a positive number, not {value!r}")
    # only the exact word turns authentication off: a typo, a JSON true/false or an
    # empty value refuses to start rather than guess which way it was meant
    if app.config["AUTH"] not in AUTH_MODES:
        raise ConfigError(f"ZKQ_AUTH must be 'on' or 'off', not {app.config['AUTH']!r}")
    hops = app.config["PROXY_HOPS"]
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ConfigError(f"ZKQ_PROXY_HOPS must be a whole number >= 0, not {hops!r}")
    app.config["TRUSTED_PROXIES"] = parse_networks(str(app.config["TRUSTED_PROXIES"]))
    # the hosts string may look like JSON to from_prefixed_env ("1.2.3.4" would not, but
    # a bare port would): always keep it a string
    app.config["ZK_HOSTS"] = str(app.config["ZK_HOSTS"])
    app.config["ROOT"] = str(app.config["ROOT"])
    app.extensions["zkq.cluster_config"] = cluster_config(app.config)


def cluster_config(config: Mapping[str, Any]) -> ClusterConfig:
    """The coordinator's config object, from the frontend's layered settings."""
    return ClusterConfig.load(
        environ={},
        hosts=config["ZK_HOSTS"],
        root=config["ROOT"],
        session_timeout=float(config["SESSION_TIMEOUT"]),
        payload_bytes=int(config["PAYLOAD_LIMIT"]),
        result_bytes=int(config["RESULT_LIMIT"]),
        # strings even if they looked like JSON to from_prefixed_env; None or "": unset
        **{
            setting: str(config[key])
            for setting, key in (
                ("zk_auth_file", "ZK_AUTH_FILE"),
                ("zk_auth", "ZK_AUTH"),
                ("zk_acl", "ZK_ACL"),
            )
            if config.get(key) not in (None, "")
        },
    )
