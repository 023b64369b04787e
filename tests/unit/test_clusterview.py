"""How `zkq status` reads HAProxy's view of the frontends."""

from zkq import clusterview


def test_a_check_under_way_still_reports_the_last_result() -> None:
    # HAProxy writes "* L7OK" while the next check runs: the server is no less healthy
    assert clusterview.check_status("* L7OK") == "L7OK"
    assert clusterview.check_status("L7OK") == "L7OK"
    assert clusterview.check_status("* L4CON") == "L4CON"


def test_a_server_without_checks_has_no_check_status() -> None:
    assert clusterview.check_status(None) == ""
    assert clusterview.check_status("") == ""


def test_quarantined_jobs_are_a_problem_to_look_at() -> None:
    assert clusterview.quarantine_problems({}) == []  # no MySQL configured
    assert clusterview.quarantine_problems({"quarantined": 0}) == []
    [problem] = clusterview.quarantine_problems({"quarantined": 2})
    assert "2 finished job(s) quarantined" in problem and "job_quarantine" in problem
    error = {"quarantined": None, "archive_error": "cannot read the archive: down"}
    assert clusterview.quarantine_problems(error) == ["cannot read the archive: down"]
