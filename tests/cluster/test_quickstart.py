"""docs/quickstart.md, followed step by step as a newcomer would.

In a fresh temporary folder (not the checkout), in one shell, with the checkout's
``.venv/bin`` first on the PATH (the guide's "activate the virtualenv") and no ``ZKQ_*``
setting in the environment (a newcomer has none): every command exactly as the guide writes
it, including its own ``zkq dev up``, and the cluster it starts is the one tested.  Values
the reader would copy (the key, a job's id) are shell variables the guide's commands set.

Each step's exit status and the failure of any command in it are checked, and what it
printed against what the guide says it shows (:data:`CHECKS`).  Whatever the shell started
carries a tag of this test in ``ZKQ_DEV_OWNERS`` (see zkq/dev/owner.py); after the guide's
own clean-up nothing with the tag may be left running, and whatever is, on any outcome, is
killed (after a ``zkq dev down`` if the guide did not get to its own).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.guide_runner import Shell, StepResult, parse
from zkq.dev.owner import OWNERS_ENV, REGISTRY_ENV, kill_marked, marked
from zkq.dev.processes import read_stat
from zkq.dev.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
#: the checkout's virtualenv, whose ``zkq`` the guide's reader has on the PATH
VENV_BIN = Path(sys.executable).parent
#: seconds any one step may take (``zkq dev up`` and the Python client's waits, more)
STEP_TIMEOUT = 120.0
SLOW_STEPS = {"zkq dev up": 300.0, "python submit.py": 180.0}


@dataclass
class Reader:
    """What the test knows of the reader's session: the shell, and what earlier steps
    showed that later ones are checked against."""

    shell: Shell
    seen: dict[str, str] = field(default_factory=dict)


Check = Callable[[StepResult, Reader], None]


def newcomer_env(tag: str) -> dict[str, str]:
    """This environment as a newcomer's: no zkq settings, no PYTHONPATH, the checkout's
    virtualenv first on the PATH; and the tag that marks what the guide starts."""
    owners = {OWNERS_ENV, REGISTRY_ENV}
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("ZKQ_") and k not in owners) and k not in ("PYTHONPATH",)
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env[OWNERS_ENV] = f"{env.get(OWNERS_ENV, '')} {tag}".strip()
    return env


# -- what each step must show ------------------------------------------------------------------


def json_body(result: StepResult) -> dict[str, object]:
    """The JSON document curl printed (its last line)."""
    body = json.loads(result.output.strip().splitlines()[-1])
    assert isinstance(body, dict), str(result)
    return body


def started_cluster(result: StepResult, reader: Reader) -> None:
    assert "all up" in result.output, str(result)


def started_worker(result: StepResult, reader: Reader) -> None:
    pid = reader.shell.value("WORKER_PID")
    assert pid.isdigit(), f"WORKER_PID={pid!r}"
    reader.seen["worker_pid"] = pid
    log = reader.shell.cwd() / "worker.log"

    def alive() -> bool:
        stat = read_stat(int(pid))
        return stat is not None and stat.state not in "ZXx"

    def registered_or_gone() -> bool:
        text = log.read_text() if log.exists() else ""
        return "registered" in text or not alive()

    # the guide says "after a moment": wait for it, so that the next step's list is whole
    try:
        wait_until(registered_or_gone, 60, interval=0.2, what="the extra worker to register")
    except TimeoutError:
        raise AssertionError(f"the worker did not register; its log:\n{log.read_text()}") from None
    assert alive(), f"the worker exited; its log:\n{log.read_text()}"


def listed_workers(result: StepResult, reader: Reader) -> None:
    serving = [line for line in result.output.splitlines() if "notify,thumbnail" in line]
    assert len(serving) == 3, str(result)  # dev up's two and the reader's own
    assert any(f"-{reader.seen['worker_pid']}-" in line for line in serving), str(result)


def created_key(result: StepResult, reader: Reader) -> None:
    key = reader.shell.value("KEY")
    assert key.startswith("zkq_") and key in result.output, str(result)


def exported_env(result: StepResult, reader: Reader) -> None:
    url = reader.shell.value("ZKQ_URL")
    assert url.startswith("https://127.0.0.1:") and url in result.output, str(result)
    assert Path(reader.shell.value("ZKQ_CA_FILE")).is_file()
    assert Path(reader.shell.value("ZKQ_CONFIG")).is_file()


def submitted_with_curl(result: StepResult, reader: Reader) -> None:
    body = json_body(result)
    assert body["type"] == "thumbnail" and body["max_attempts"] == 3, str(result)
    assert not body.get("warnings"), str(result)  # served: myapp's workers are up


def waited_with_curl(result: StepResult, reader: Reader) -> None:
    body = json_body(result)
    assert body["id"] == reader.shell.value("JOB"), str(result)
    assert body["state"] == "succeeded", str(result)
    assert body["result"] == {"thumbnail": "cat-128.png", "width": 128}, str(result)
    children = body["children"]
    assert isinstance(children, list) and len(children) == 1, str(result)
    reader.seen["job"], reader.seen["child"] = str(body["id"]), str(children[0])


def ran_python(result: StepResult, reader: Reader) -> None:
    lines = result.output.splitlines()
    assert "thumbnail succeeded {'thumbnail': 'dog-256.png', 'width': 256}" in lines, str(result)
    assert "notify succeeded dog-256.png is ready" in lines, str(result)


def submitted_with_cli(result: StepResult, reader: Reader) -> None:
    assert re.search(r"^state\s+succeeded$", result.output, re.M), str(result)
    assert "bird-64.png" in result.output, str(result)
    assert re.search(r"^tenant\s+default$", result.output, re.M), str(result)


def failed_with_cli(result: StepResult, reader: Reader) -> None:
    assert re.search(r"^state\s+failed$", result.output, re.M), str(result)
    assert "KeyError: 'image'" in result.output, str(result)


def showed_status(result: StepResult, reader: Reader) -> None:
    assert f"-{reader.seen['worker_pid']}-" in result.output, str(result)
    assert "thumbnail" in result.output and "Frontends (HAProxy)" in result.output, str(result)
    assert result.output.rstrip().endswith("OK"), str(result)


def showed_stats(result: StepResult, reader: Reader) -> None:
    by_type = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert {"thumbnail", "notify"} <= set(by_type), str(result)


def listed_jobs(result: StepResult, reader: Reader) -> None:
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("ID "))
    newest = lines[header + 1]
    # newest first: the last job submitted is the one that failed
    assert "thumbnail" in newest and "failed" in newest, str(result)
    assert reader.seen["child"] in result.output, str(result)  # the spawned notify job
    # and `zkq job "$JOB"`: the record with its child and its tenant
    assert re.search(rf"^id\s+{reader.seen['job']}$", result.output, re.M), str(result)
    assert re.search(rf"^children\s+{reader.seen['child']}$", result.output, re.M), str(result)
    assert re.search(r"^tenant\s+demo$", result.output, re.M), str(result)


def stopped_everything(result: StepResult, reader: Reader) -> None:
    assert re.search(r"^stopped \d+ process", result.output, re.M), str(result)
    assert not (Path(reader.shell.value("PWD")) / "first-hour").exists()


#: a check for every step, by a piece of its command; each must be used exactly once
CHECKS: dict[str, Check] = {
    "mkdir first-hour": lambda result, reader: None,
    "zkq dev up --app myapp": started_cluster,
    "zkq worker --app myapp": started_worker,
    "zkq workers": listed_workers,
    "zkq keys create": created_key,
    "zkq dev env": exported_env,
    "tee submitted.json": submitted_with_curl,
    "?wait=30": waited_with_curl,
    "python submit.py": ran_python,
    "bird.png": submitted_with_cli,
    "zkq submit thumbnail --payload '{\"width\": 64}' --wait": failed_with_cli,
    "zkq status": showed_status,
    "zkq stats": showed_stats,
    "zkq jobs": listed_jobs,
    "zkq dev down": stopped_everything,
}


def check_for(command: str) -> str:
    found = [piece for piece in CHECKS if piece in command]
    assert len(found) == 1, f"{len(found)} checks ({found}) for the step:\n{command}"
    return found[0]


# -- the run ----------------------------------------------------------------------------------


@pytest.fixture
def tag() -> Iterator[str]:
    """A mark for what the guide starts; killed at the end, whatever happened."""
    tag = f"quickstart-{uuid.uuid4().hex}"
    try:
        yield tag
    finally:
        kill_marked(tag)


def test_the_quickstart_guide_works_as_written(tmp_path: Path, tag: str) -> None:
    blocks = parse(GUIDE.read_text())
    assert [check_for(b.text) for b in blocks if not b.is_file] == list(CHECKS)
    folder = tmp_path / "reader"  # where the reader opens the terminal
    folder.mkdir()
    env = newcomer_env(tag)
    shell = Shell(folder, env, tmp_path / "steps")
    reader = Reader(shell)
    finished = False
    try:
        for block in blocks:
            if block.path is not None:
                shell.write(block.path, block.text)
                continue
            piece = check_for(block.text)
            result = shell.run(block.text, SLOW_STEPS.get(piece, STEP_TIMEOUT))
            context = f"docs/quickstart.md line {block.line}:\n{result}"
            assert result.status == block.exits, context
            assert all(status == block.exits for status, _ in result.failures), context
            CHECKS[piece](result, reader)
        finished = True
    finally:
        shell.close()
        if not finished:
            stop_clusters_under(tmp_path, env)
    # the guide's clean-up must have stopped everything it started
    left = {pid: cmdline(pid) for pid in marked(tag)}
    assert not left, f"still running after the guide's clean-up: {left}"


def stop_clusters_under(root: Path, env: dict[str, str]) -> None:
    """``zkq dev down`` for a cluster the guide started and did not get to stop."""
    for state in root.rglob(".zkq-dev/state.json"):
        subprocess.run(
            [str(VENV_BIN / "zkq"), "dev", "--state-dir", str(state.parent), "down"],
            env=env,
            timeout=120,
            check=False,
        )


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"
