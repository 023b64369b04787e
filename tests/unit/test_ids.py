import pytest

from zkq.coordinator.errors import InvalidJobId
from zkq.coordinator.ids import id_time, new_job_id, validate_job_id


def test_ids_are_strictly_increasing_within_a_process() -> None:
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_id_time_is_the_creation_time() -> None:
    import time

    before = time.time()
    jid = new_job_id()
    assert before - 0.01 <= id_time(jid) <= time.time() + 0.01


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",
        "01arz3ndektsv4rrffq69g5fav",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV/x",
        "../../etc",
    ],
)
def test_validate_rejects_what_zkq_could_not_have_issued(bad: str) -> None:
    with pytest.raises(InvalidJobId):
        validate_job_id(bad)


def test_validate_accepts_a_fresh_id() -> None:
    jid = new_job_id()
    assert validate_job_id(jid) == jid
