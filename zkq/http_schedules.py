"""``HttpClient.schedules``: periodic schedules over the HTTP API (``/v1/schedules``)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zkq.http_client import HttpClient


class HttpSchedules:
    """The key's tenant's periodic schedules; each call answers the schedule as JSON
    (definition and ``state``).  Admin keys may pass ``owner`` (a tenant, or ``_``).

    >>> s = client.schedules.add("nightly", {"type": "report"}, cron="30 2 * * *",
    ...                          timezone="Europe/Berlin")
    >>> s["state"]["last_tick"] is None
    True
    >>> [x["name"] for x in client.schedules.list()]
    ['nightly']
    >>> client.schedules.pause("nightly")["paused"]
    True
    >>> client.schedules.resume("nightly")["paused"]
    False
    >>> client.schedules.remove("nightly")["removed"]
    True
    """

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def _params(self, owner: str | None) -> dict[str, Any] | None:
        return {"owner": owner} if owner else None

    def add(
        self,
        name: str,
        template: dict[str, Any],
        *,
        cron: str | None = None,
        every: float | None = None,
        owner: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Add a schedule: exactly one of ``cron`` and ``every``; ``template`` is the job
        (``type``, ``payload``, ``priority``, ``max_attempts``, ``timeout``); ``options``:
        ``timezone``, ``anchor``, ``misfire``, ``misfire_grace``, ``overlap``, ``paused``.
        The same definition again answers the stored one (a retried add)."""
        body = {"name": name, "template": template, **options}
        if cron is not None:
            body["cron"] = cron
        if every is not None:
            body["every"] = every
        if owner is not None:
            body["owner"] = owner
        result: dict[str, Any] = self.client._request("POST", "/v1/schedules", json=body).json()
        return result

    def list(self, owner: str | None = None) -> builtins.list[dict[str, Any]]:
        response = self.client._request("GET", "/v1/schedules", params=self._params(owner))
        found: builtins.list[dict[str, Any]] = response.json()["schedules"]
        return found

    def get(self, name: str, owner: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/v1/schedules/{name}", owner)

    def pause(self, name: str, owner: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/v1/schedules/{name}/pause", owner)

    def resume(self, name: str, owner: str | None = None) -> dict[str, Any]:
        """Ticks missed while paused follow the schedule's misfire policy."""
        return self._call("POST", f"/v1/schedules/{name}/resume", owner)

    def remove(self, name: str, owner: str | None = None) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/schedules/{name}", owner)

    def _call(self, method: str, path: str, owner: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self.client._request(
            method, path, params=self._params(owner)
        ).json()
        return result
