"""``/v1/schedules`` through HAProxy, against the real stack: tenant confinement, pause and
resume, retried adds, and the 4xx a client can cause."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.cluster.conftest import Stack, wait_terminal
from zkq.coordinator.errors import Forbidden, NotFound
from zkq.dev.waiting import wait_until

pytestmark = pytest.mark.cluster


def name() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def test_a_tenant_adds_pauses_resumes_and_removes_its_schedule(stack: Stack) -> None:
    bob = stack.client("bob")
    mine = name()
    body = {"type": "echo", "payload": {"from": mine}}
    added = bob.schedules.add(mine, body, every=1, misfire="skip")
    assert added["owner"] == "globex" and added["state"]["last_tick"] is None
    assert bob.schedules.add(mine, body, every=1, misfire="skip") == added  # a retried add
    wait_until(
        lambda: bob.schedules.get(mine)["state"]["last_job"] is not None, 60, what="a first tick"
    )
    job_id = bob.schedules.get(mine)["state"]["last_job"]
    job = wait_terminal(stack, job_id, key="bob")
    assert job["result"] == {"from": mine}
    assert bob.schedules.pause(mine)["paused"] is True
    assert [s["name"] for s in bob.schedules.list()].count(mine) == 1
    # another tenant cannot see it, nor reach it by naming the owner
    alice_view = stack.client("alice").schedules.list()  # an admin's own tenant: acme
    assert mine not in [s["name"] for s in alice_view]
    with pytest.raises(NotFound):
        stack.client("reader").schedules.get(mine)
    with pytest.raises(Forbidden):
        stack.client("reader").schedules.get(mine, owner="globex")
    # an admin may name the owner
    assert stack.client("alice").schedules.get(mine, owner="globex")["paused"] is True
    assert bob.schedules.resume(mine)["paused"] is False
    assert bob.schedules.remove(mine)["removed"] is True
    with pytest.raises(NotFound):
        bob.schedules.get(mine)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "Bad Name", "every": 5}, 400, "name"),
        ({"cron": "61 * * * *"}, 400, "cron expression"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, 400, "time zone"),
        ({"cron": "0 3 * * *", "every": 5}, 400, "exactly one of cron and every"),
        ({"every": 0.5}, 400, "every"),
    ],
)
def test_bad_schedules_are_refused_with_a_4xx(
    stack: Stack, http: requests.Session, body: dict[str, object], status: int, says: str
) -> None:
    sent = {"name": name(), "template": {"type": "echo"}, **body}
    r = http.post(f"{stack.url}/v1/schedules", json=sent, headers=stack.auth("bob"), timeout=10)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]


def test_a_taken_name_is_a_409_and_reading_needs_the_read_scope(
    stack: Stack, http: requests.Session
) -> None:
    taken = name()
    url = f"{stack.url}/v1/schedules"
    first = {"name": taken, "every": 60, "template": {"type": "echo"}}
    assert http.post(url, json=first, headers=stack.auth("bob"), timeout=10).status_code == 201
    other = {**first, "every": 120}
    r = http.post(url, json=other, headers=stack.auth("bob"), timeout=10)
    assert r.status_code == 409, r.text
    assert http.get(url, headers=stack.auth("submitter"), timeout=10).status_code == 403
    r = http.get(f"{url}/no-such-one", headers=stack.auth("bob"), timeout=10)
    assert r.status_code == 404
    r = http.delete(f"{url}/{taken}", headers=stack.auth("bob"), timeout=10)
    assert r.status_code == 200


def test_an_admins_owner_cannot_reach_past_its_own_schedules(
    stack: Stack, http: requests.Session
) -> None:
    """``owner`` names one znode: with a ``/`` in it, ``DELETE /v1/schedules/state`` would
    reach another schedule's state node, which only the leader may write."""
    bob = stack.client("bob")
    mine = name()
    bob.schedules.add(mine, {"type": "echo"}, every=1, misfire="skip")
    wait_until(lambda: bob.schedules.get(mine)["state"]["last_tick"], 60, what="a first tick")
    url = f"{stack.url}/v1/schedules/state"
    sneaky = {"owner": f"globex/{mine}"}
    r = http.delete(url, params=sneaky, headers=stack.auth("alice"), timeout=10)
    assert r.status_code == 404, r.text
    r = http.get(
        f"{stack.url}/v1/schedules", params=sneaky, headers=stack.auth("alice"), timeout=10
    )
    assert r.status_code == 200 and r.json()["schedules"] == []
    assert bob.schedules.get(mine)["state"]["last_tick"] is not None  # its state is intact
    bob.schedules.remove(mine)
