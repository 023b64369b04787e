"""Jobs submitted with the installed ``zkq`` command (no API key) belong to a tenant, and an
admin key reads, waits on, lists and cancels them over HTTP; a tenant key stays confined to
its own tenant's jobs."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.cluster.conftest import Stack
from tests.support import operator_env, run_zkq, unique_type


def zkq(stack: Stack, *args: str, env: dict[str, str] | None = None) -> str:
    """``zkq *args`` as an operator runs it (the installed command, the coordinator's
    credential); its standard output.  A tenant of the caller's shell does not leak in."""
    return run_zkq(*args, env=operator_env(stack.cluster, **(env or {}))).stdout


def get(stack: Stack, path: str, key: str, **params: Any) -> requests.Response:
    """GET with the key named ``key`` (of the stack's), or with the secret ``key``."""
    headers = stack.auth(key) if key in stack.keys else {"Authorization": f"Bearer {key}"}
    return requests.get(f"{stack.url}{path}", params=params, headers=headers, timeout=20)


def default_reader(stack: Stack) -> str:
    """A new key of tenant ``default`` (the CLI's), scope read."""
    return stack.new_key("default", "read", None)[1]


def test_a_cli_job_has_a_tenant_an_admin_key_reads_and_other_keys_do_not(stack: Stack) -> None:
    job_type = unique_type()  # served by no worker: the job stays pending until cancelled
    job_id = zkq(stack, "submit", job_type).strip()
    # alice's key is an admin's (of tenant acme): it reads every tenant's jobs
    r = get(stack, f"/v1/jobs/{job_id}", "alice")
    assert r.status_code == 200, r.text
    assert r.json()["tenant"] == "default" and r.json()["state"] == "pending"
    r = get(stack, f"/v1/jobs/{job_id}", "alice", wait=0.5)  # a long-poll too
    assert r.status_code == 200 and r.json()["id"] == job_id
    # tenant keys, even of the admin's tenant, read their own tenant's jobs alone
    for key in ("bob", "reader"):
        r = get(stack, f"/v1/jobs/{job_id}", key)
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found", key
    # a key of the default tenant reads it, without being told whose it is
    r = get(stack, f"/v1/jobs/{job_id}", default_reader(stack))
    assert r.status_code == 200 and "tenant" not in r.json()

    # listing: an admin sees every tenant's jobs, or one tenant's when it asks
    r = get(stack, "/v1/jobs", "alice", type=job_type)
    assert [j["id"] for j in r.json()["jobs"]] == [job_id]
    r = get(stack, "/v1/jobs", "alice", type=job_type, tenant="default")
    assert [j["id"] for j in r.json()["jobs"]] == [job_id]
    r = get(stack, "/v1/jobs", "alice", type=job_type, tenant="acme")
    assert r.status_code == 200 and r.json()["jobs"] == []
    r = get(stack, "/v1/jobs", "bob", type=job_type)
    assert r.status_code == 200 and r.json()["jobs"] == []
    r = get(stack, "/v1/jobs", "bob", type=job_type, tenant="default")
    assert r.status_code == 403 and "admin" in r.json()["error"]["message"]
    assert get(stack, "/v1/jobs", "bob", tenant="globex").status_code == 200

    # cancel: not by another tenant's key; by an admin's
    r = requests.delete(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth("bob"), timeout=20)
    assert r.status_code == 404
    r = requests.delete(f"{stack.url}/v1/jobs/{job_id}", headers=stack.auth("alice"), timeout=20)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"


def test_an_admin_listings_cursor_opens_no_tenants_listing(stack: Stack) -> None:
    job_type = unique_type()
    for _ in range(3):
        zkq(stack, "submit", job_type)
    r = get(stack, "/v1/jobs", "alice", type=job_type, limit=1)
    cursor = r.json()["next_cursor"]
    assert cursor
    second = get(stack, "/v1/jobs", "alice", type=job_type, limit=1, cursor=cursor)
    assert second.status_code == 200 and len(second.json()["jobs"]) == 1
    r = get(stack, "/v1/jobs", default_reader(stack), type=job_type, cursor=cursor)
    assert r.status_code == 400, r.text
    for job in get(stack, "/v1/jobs", "alice", type=job_type).json()["jobs"]:
        requests.delete(f"{stack.url}/v1/jobs/{job['id']}", headers=stack.auth(), timeout=20)


def test_submit_takes_its_tenant_from_the_flag_the_environment_or_the_default(
    stack: Stack,
) -> None:
    job_type = unique_type()

    def tenant_of(*args: str, env: dict[str, str] | None = None) -> str:
        submitted = json.loads(zkq(stack, "submit", job_type, "--json", *args, env=env))
        shown = json.loads(zkq(stack, "job", submitted["id"], "--json"))
        assert shown["tenant"] == submitted["tenant"]
        zkq(stack, "cancel", submitted["id"])
        return str(submitted["tenant"])

    assert tenant_of() == "default"
    assert tenant_of("--tenant", "shop") == "shop"
    assert tenant_of(env={"ZKQ_TENANT": "env-shop"}) == "env-shop"
    assert tenant_of("--tenant", "shop", env={"ZKQ_TENANT": "env-shop"}) == "shop"
