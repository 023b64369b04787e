"""How ``zkq frontend`` starts gunicorn: the packaged config, and the cluster settings
turned into the ``ZKQ_*`` variables the frontend reads.

The frontend's settings are environment variables (:mod:`zkq.frontend.config`), read in
each gunicorn worker; every other zkq process also reads the config file
(``/etc/zkq/zkq.toml``).  ``zkq frontend`` resolves the cluster settings as every ``zkq``
command does and hands them down, so one host's services share one config file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zkq.coordinator.config import ClusterConfig

#: the gunicorn config shipped in the package, beside this module
GUNICORN_CONF = Path(__file__).resolve().with_name("gunicorn.conf.py")
APP = "zkq.frontend.app:create_app()"


def settings_environment(config: ClusterConfig) -> dict[str, str]:
    """The ``ZKQ_*`` variables that give a frontend the settings of ``config``."""
    env = {
        "ZKQ_ZK_HOSTS": config.zk.hosts,
        "ZKQ_ROOT": config.zk.root,
        "ZKQ_SESSION_TIMEOUT": str(config.zk.session_timeout),
        "ZKQ_PAYLOAD_LIMIT": str(config.limits.payload_bytes),
        "ZKQ_RESULT_LIMIT": str(config.limits.result_bytes),
    }
    if config.mysql is not None:
        env["ZKQ_MYSQL_URL"] = config.mysql.url
    # the credential as resolved (perhaps read from a file): the environment of the exec'd
    # gunicorn is the process's own, never its argv; the file setting is blanked so the
    # workers do not find two credentials in one layer
    env["ZKQ_ZK_AUTH"] = config.zk.auth or ""
    env["ZKQ_ZK_AUTH_FILE"] = ""
    env["ZKQ_ZK_ACL"] = config.zk.acl.format() if config.zk.acl else ""
    return env


def gunicorn_argv() -> list[str]:
    """gunicorn run by this interpreter (so the virtualenv's), with the packaged config."""
    return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), APP]
