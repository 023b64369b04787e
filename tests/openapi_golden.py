"""The checked-in OpenAPI document, ``docs/openapi.json``: what the frontend serves at
``/v1/openapi.json``, written out so that an API change shows as a diff in review rather
than being mirrored silently by a schema generated from the same code that serves it.

``make openapi`` (``python -m tests.openapi_golden``) rewrites the file from the served
document; ``tests/unit/test_openapi_golden.py`` fails while the two differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support import offline_app

GOLDEN = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
REGENERATE = "make openapi"


def render(document: Any) -> str:
    """The file's text: sorted keys and one member a line, so a diff names what changed."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def served() -> Any:
    """The document as a client gets it: through the app's route, not the generator."""
    with offline_app() as app:  # the document needs neither ZooKeeper nor MySQL
        response = app.test_client().get("/v1/openapi.json")
        assert response.status_code == 200, response.status_code
        return response.get_json()


def main() -> int:
    GOLDEN.write_text(render(served()), encoding="utf-8")
    print(f"wrote {GOLDEN}: review and commit its diff with the API change", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
