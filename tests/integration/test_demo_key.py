"""``make run``'s demo key (:func:`zkq.demo.demo_key`) against the session's MariaDB: one
key for every run, kept across a database started afresh, never a revoked one back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.mysql_support import fresh_database, pool_of
from tests.support import run_zkq, user_env
from zkq.demo import demo_key
from zkq.dev.mariadb import MariaDBServer
from zkq.frontend.keys import KeyStore

pytestmark = pytest.mark.integration


def test_every_make_run_uses_the_same_demo_key(mariadb: MariaDBServer, tmp_path: Path) -> None:
    path = tmp_path / "demo-key"
    first = fresh_database(mariadb)
    key = demo_key(path, first.url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == key + "\n"
    # a second run against the same cluster: the key as it was, and no new one
    assert demo_key(path, first.url) == key
    with pool_of(first) as pool:
        assert [k.prefix for k in KeyStore(pool).list()] == [key[4:12]]
    # `make down` and `make run`: a new database, the same key, which it accepts
    second = fresh_database(mariadb)
    assert demo_key(path, second.url) == key
    with pool_of(second) as pool:
        keys = KeyStore(pool)
        found = keys.authenticate(key)
        assert found is not None and found.tenant == "demo"
        keys.revoke(key[4:12])
    # revoked by someone: never brought back, a new one instead
    renewed = demo_key(path, second.url)
    assert renewed != key and path.read_text() == renewed + "\n"
    # revoked with `zkq keys revoke` (the installed command, from the cluster's folder): the
    # file forgets it, so the next `make run`, on a database started afresh that knows
    # nothing of the revocation, does not register it again
    revoked = run_zkq(
        "keys",
        "revoke",
        renewed[4:12],
        "--json",
        env=user_env(ZKQ_MYSQL_URL=second.url, ZKQ_DEV_DIR=str(tmp_path)),
        cwd=tmp_path,
    )
    assert json.loads(revoked.stdout)["demo_key_forgotten"] is True
    assert not path.exists()
    assert demo_key(path, fresh_database(mariadb).url) != renewed
    # a file edited by hand into no key at all: a new one too
    path.write_text("not a key\n")
    assert demo_key(path, second.url).startswith("zkq_")
