"""tests/guide_runner.py, which follows docs/quickstart.md in the cluster tier: how it reads a
guide and how its shell carries a reader's session; and that the guide as it stands parses,
with a check for each of its steps (so an edited guide fails here, before any cluster)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster.test_quickstart import CHECKS, GUIDE, check_for
from tests.guide_runner import Shell, StepTimedOut, parse

SAMPLE = """\
# A guide

<!-- not run: a path of the reader's own -->
```bash
. /somewhere/activate
```

```bash
mkdir there && cd there
```

Save this as
`app.py`:

```python
print("app")
```

```text
sample output
```

<!-- exits 1: on purpose -->
```bash
false
```
"""


def test_a_guide_reads_as_steps_and_files() -> None:
    blocks = parse(SAMPLE)
    assert [(b.path, b.text, b.exits) for b in blocks] == [
        (None, "mkdir there && cd there\n", 0),
        ("app.py", 'print("app")\n', 0),
        (None, "false\n", 1),
    ]
    assert blocks[0].line == 8  # the fence's line, for messages


def test_a_python_snippet_that_is_neither_file_nor_marked_is_refused() -> None:
    with pytest.raises(ValueError, match="line 3: a python block"):
        parse("Some code:\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        parse("```bash\nls\n")


def test_the_quickstart_has_a_check_for_each_step_in_order() -> None:
    blocks = parse(GUIDE.read_text())
    assert [check_for(b.text) for b in blocks if not b.is_file] == list(CHECKS)
    assert [b.path for b in blocks if b.is_file] == ["myapp.py", "submit.py"]


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    (tmp_path / "home").mkdir()
    return Shell(tmp_path / "home", dict(os.environ), tmp_path / "scratch")


def test_the_shell_keeps_the_readers_session(shell: Shell, tmp_path: Path) -> None:
    try:
        first = shell.run("mkdir a && cd a\nexport X=$(echo one)\nY=two\n", timeout=30)
        assert (first.status, first.output, first.failures) == (0, "", [])
        assert shell.cwd() == tmp_path / "home" / "a"
        shell.write("f.txt", "in a\n")
        second = shell.run('cat f.txt; echo "$X $Y"; printf "no newline"', timeout=30)
        assert second.output == "in a\none two\nno newline"
        # a background job stays the shell's; stdin is /dev/null, not the next steps
        third = shell.run("sleep 60 &\nBG=$!\nread -r line\necho read=$line", timeout=30)
        assert third.output == "read=" and third.failures == [(1, "read -r line")]
        assert shell.run('kill "$BG"; wait "$BG"', timeout=30).status == 143
        assert "$ mkdir a && cd a" in shell.transcript.read_text()
    finally:
        shell.close()


def test_a_step_notes_each_failed_command_and_may_time_out(shell: Shell) -> None:
    try:
        result = shell.run("false\n(exit 3)\ntrue\n", timeout=30)
        assert result.status == 0 and result.failures == [(1, "false"), (3, "( exit 3 )")]
        with pytest.raises(StepTimedOut, match=r"no end within 0\.5s"):
            shell.run("sleep 60", timeout=0.5)
    finally:
        shell.close(timeout=2)  # the hung step: its process group is killed
    assert shell.proc.returncode is not None
