"""The soak's accounting, on records made up here: a loss, a double commit and each cause
of a duplicate execution must be told apart (``tests/cluster/test_soak.py`` runs it live)."""

from __future__ import annotations

from soak.accounting import account
from soak.executions import Execution
from soak.faults import FaultLog
from soak.load import Accepted, LoadResult
from soak.report import longest_stall
from zkq.coordinator.job import Attempt, AttemptOutcome, Job, JobState


def job(
    job_id: str,
    *attempts: tuple[int, str, AttemptOutcome],
    state: JobState = JobState.SUCCEEDED,
    result: object = None,
    finished: float | None = None,
) -> Job:
    return Job(
        job_id,
        "soak",
        state=state,
        history=tuple(Attempt(n, w, 0.0, 1.0, o) for n, w, o in attempts),
        result=result,
        finished_at=finished,
    )


def run(job_id: str, member: str, pid: int, attempt: int, at: float) -> Execution:
    return Execution(job_id, attempt, member, pid, at)


def test_a_missing_or_unfinished_job_is_lost() -> None:
    jobs = {"b": job("b", (1, "w-1-x", AttemptOutcome.LOST), state=JobState.PENDING)}
    acc = account(["a", "b"], jobs, {}, FaultLog())
    assert [j for j, _ in acc.lost] == ["a", "b"]
    assert "no record" in acc.lost[0][1] and "pending" in acc.lost[1][1]


def test_two_successful_attempts_or_a_foreign_result_are_double_commits() -> None:
    twice = job(
        "a",
        (1, "w-1-x", AttemptOutcome.SUCCEEDED),
        (2, "w-2-x", AttemptOutcome.SUCCEEDED),
        result={"execution": "w2:2:2"},
    )
    overwritten = job(
        "b",
        (1, "w-1-x", AttemptOutcome.LOST),
        (2, "w-2-x", AttemptOutcome.SUCCEEDED),
        result={"execution": "w1:1:1"},  # the lost attempt's result landed after all
    )
    runs = {
        "a": [run("a", "w1", 1, 1, 1.0), run("a", "w2", 2, 2, 2.0)],
        "b": [run("b", "w1", 1, 1, 1.0), run("b", "w2", 2, 2, 2.0)],
    }
    acc = account(["a", "b"], {"a": twice, "b": overwritten}, runs, FaultLog())
    assert [j for j, _ in acc.double_commits] == ["a", "b"]
    assert acc.lost == []


def test_each_extra_execution_is_explained() -> None:
    log = FaultLog()
    kill = log.begin("worker-kill", "w1", [11])
    kill.ended = 5.0
    cut = log.begin("worker-partition", "w3", [33])
    cut.ended = 20.0
    kill.started, cut.started = 4.0, 10.0
    jobs = {
        "a": job(
            "a",
            (1, "h-11-x", AttemptOutcome.LOST),
            (2, "h-22-x", AttemptOutcome.SUCCEEDED),
            result={"execution": "w2:22:2"},
        ),
        "b": job(
            "b",
            (1, "h-33-x", AttemptOutcome.LOST),
            (2, "h-22-x", AttemptOutcome.SUCCEEDED),
            result={"execution": "w2:22:2"},
        ),
        "c": job("c", (1, "h-22-x", AttemptOutcome.SUCCEEDED), result={"execution": "w2:22:1"}),
    }
    runs = {
        "a": [run("a", "w1", 11, 1, 3.0), run("a", "w2", 22, 2, 6.0)],
        "b": [run("b", "w3", 33, 1, 9.0), run("b", "w2", 22, 2, 15.0)],
        # one attempt ran twice: what fencing must never allow
        "c": [run("c", "w2", 22, 1, 1.0), run("c", "w4", 44, 1, 2.0)],
    }
    acc = account(["a", "b", "c"], jobs, runs, log)
    causes = {d.job: d.cause for d in acc.duplicates}
    assert causes["a"].startswith("worker killed mid-run (w1")
    assert causes["b"].startswith("partitioned worker's session expired (w3")
    assert causes["c"].startswith("ran twice within one attempt")
    assert acc.executions == 6 and len(acc.duplicates) == 3


def test_the_longest_stall_counts_only_while_jobs_wait() -> None:
    load = LoadResult()
    # a: accepted 0, done 1; idle from 1 to 10; b: accepted 10, done 14; c: accepted 11,
    # done 15 -> the longest wait with work pending is 10..14
    for job_id, at in (("a", 0.0), ("b", 10.0), ("c", 11.0)):
        load.accepted[job_id] = Accepted(0, job_id, at, 1)
    jobs = {
        "a": job("a", finished=1.0),
        "b": job("b", finished=14.0),
        "c": job("c", finished=15.0),
    }
    stall = longest_stall(load, jobs, FaultLog())
    assert (stall.seconds, stall.start, stall.end) == (4.0, 10.0, 14.0)
