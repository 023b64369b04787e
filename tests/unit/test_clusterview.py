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
