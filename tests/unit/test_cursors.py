"""List cursors: opaque, bound to the tenant, and refused when altered or foreign."""

from __future__ import annotations

import base64

import pytest

from zkq.coordinator.errors import MalformedRequest
from zkq.coordinator.ids import new_job_id
from zkq.frontend.cursors import CursorSealer, InvalidCursor

SECRET = b"s" * 32


def test_a_cursor_resumes_where_it_was_sealed_and_shows_nothing_of_the_id() -> None:
    sealer = CursorSealer(SECRET)
    job_id = new_job_id()
    cursor = sealer.seal("acme", job_id)
    assert sealer.open("acme", cursor) == job_id
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    # neither the id nor its time prefix (the first 10 characters) is in it, in any form
    for form in (cursor.encode(), raw):
        assert job_id[:10].encode() not in form and job_id[:10].lower().encode() not in form
    assert sealer.seal("acme", job_id) != cursor  # a nonce each time: equal ids look unequal


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[:-1],  # truncated
        lambda c: c[:20] + ("A" if c[20] != "A" else "B") + c[21:],  # one character changed
        lambda c: c + "AAAA",  # longer
        lambda c: "not base64 at all!",
        lambda c: new_job_id(),  # what cursors used to be
    ],
)
def test_an_altered_cursor_is_a_400_that_says_what_to_do(damage: object) -> None:
    sealer = CursorSealer(SECRET)
    cursor = sealer.seal("acme", new_job_id())
    with pytest.raises(MalformedRequest, match="list again from the start without a cursor"):
        sealer.open("acme", damage(cursor))  # type: ignore[operator]


def test_another_tenants_or_clusters_cursor_is_refused() -> None:
    cursor = CursorSealer(SECRET).seal("acme", new_job_id())
    with pytest.raises(InvalidCursor, match="another tenant's"):
        CursorSealer(SECRET).open("globex", cursor)
    with pytest.raises(InvalidCursor):
        CursorSealer(b"t" * 32).open("acme", cursor)
