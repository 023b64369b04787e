"""Usage errors of the installed ``zkq`` command, in every group: one line on stderr,
``zkq: <what> (see '<command> --help')``, exit 2, nothing on stdout; a malformed job id is
one of them, refused before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_zkq, user_env
from zkq.cli_errors import EXAMPLE_JOB_ID
from zkq.coordinator.ids import validate_job_id

#: the console script of this environment, run as a user runs it
#: a port nothing listens on: a command that got as far as connecting would exit 3, not 2
NOWHERE = ["--zk", "127.0.0.1:1"]

USAGE_ERRORS = [
    (["nosuch"], "no such command 'nosuch' (see 'zkq --help')"),
    (["--bogus", "status"], "no such option '--bogus' (see 'zkq --help')"),
    (["jobs", "--bogus"], "no such option '--bogus' (see 'zkq jobs --help')"),
    (["jobs", "--state", "x"], "invalid value for '--state'"),
    (["job"], "missing argument 'JOB_ID' (see 'zkq job --help')"),
    (["submit", "echo", "--payload", "{"], "not JSON"),
    (["worker", "--concurrency", "0"], "(see 'zkq worker --help')"),
    (["dev", "nosuch"], "no such command 'nosuch' (see 'zkq dev --help')"),
    (["db", "nosuch"], "(see 'zkq db --help')"),
    (["keys", "nosuch"], "(see 'zkq keys --help')"),
    (["keys", "create", "--bogus"], "(see 'zkq keys create --help')"),
    (["acl", "nosuch"], "(see 'zkq acl --help')"),
    (["zk", "tree", "--depth", "99"], "(see 'zkq zk tree --help')"),
    (["bench", "--bogus"], "(see 'zkq bench --help')"),
    (["keys", "list", "--mysql", "nonsense"], "zkq: MySQL URL must start with mysql://"),
    (["worker", "--app", "no_such_app", *NOWHERE], "start the worker in the app's folder"),
    (["job", "not-an-id", *NOWHERE], "'not-an-id' is not a job id"),
    (["cancel", "42", *NOWHERE], f"like {EXAMPLE_JOB_ID}"),
    (["requeue", EXAMPLE_JOB_ID + "X", *NOWHERE], "is not a job id"),
    (["jobs", "--after", "yesterday", *NOWHERE], "'yesterday' is not a job id"),
]


@pytest.mark.parametrize(("args", "says"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], says: str, tmp_path: Path) -> None:
    done = run_zkq(*args, cwd=tmp_path, env=user_env(), code=None, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("zkq: ") and says in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_the_example_id_in_the_message_is_a_job_id() -> None:
    assert validate_job_id(EXAMPLE_JOB_ID) == EXAMPLE_JOB_ID


def test_a_job_id_in_small_letters_is_taken(tmp_path: Path) -> None:
    """ULIDs are case-insensitive: past the id check, the command tries to connect (3)."""
    done = run_zkq(
        "job", EXAMPLE_JOB_ID.lower(), *NOWHERE, cwd=tmp_path, env=user_env(), code=None, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_asking_for_help_is_not_an_error(tmp_path: Path) -> None:
    done = run_zkq("jobs", "--help", cwd=tmp_path, env=user_env(), code=None, timeout=60)
    assert done.returncode == 0 and "Usage: zkq jobs" in done.stdout
