"""The served OpenAPI document against the one checked in (``docs/openapi.json``): an API
change must come with a reviewed diff of that file."""

from __future__ import annotations

import difflib
import json

from flask.testing import FlaskClient

from tests.openapi_golden import GOLDEN, REGENERATE, render

#: how much of a diff the failure shows: enough to see what moved, not the whole document
DIFF_LINES = 60


def test_the_served_document_is_the_checked_in_one(client: FlaskClient) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    served = render(response.get_json())
    golden = GOLDEN.read_text(encoding="utf-8")
    if served != golden:
        diff = list(
            difflib.unified_diff(
                golden.splitlines(),
                served.splitlines(),
                fromfile=str(GOLDEN.name),
                tofile="served /v1/openapi.json",
                lineterm="",
            )
        )
        shown = "\n".join(diff[:DIFF_LINES])
        more = f"\n... ({len(diff) - DIFF_LINES} more diff lines)" if len(diff) > DIFF_LINES else ""
        raise AssertionError(
            f"the served OpenAPI document differs from {GOLDEN}.\n"
            f"If the API change is intended, run `{REGENERATE}` and commit the file's diff "
            f"with it.\n{shown}{more}"
        )
    # the file is the document itself, not a rendering that lost something on the way
    assert json.loads(golden) == response.get_json()
