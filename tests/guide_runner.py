"""Follow a markdown guide as its reader does: its fenced blocks, in order, in one shell.

What each block is, said by the guide in ways a reader does not mind (an HTML comment
does not render):

- a ```bash block is a step: typed into the shell as it stands;
- a ```python block under a line that names its file in backticks and ends with a colon
  (``Save this as `myapp.py`:``) is written to that file, in the shell's current folder;
- a block right after ``<!-- not run ... -->`` is only shown (a path that is the reader's
  own, an example that needs another setup);
- a step right after ``<!-- exits N ... -->`` is expected to exit N;
- every other block (```text: sample output) is only shown.

A python block that is neither a file nor marked "not run" is refused, so a guide cannot
grow a snippet that is never tried.

:class:`Shell` is one ``bash`` for the whole guide, so ``cd``, ``export``, ``eval``,
variables and ``&`` background jobs carry from one step to the next as in the reader's
terminal.  Each step is sourced from a file with stdin from /dev/null (a command that reads
stdin gets EOF instead of the next steps), followed by a marker line carrying its exit
status; an ERR trap notes every command of the step that failed, not only the last one.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^```(\S*)\s*$")
_FILE_CAPTION = re.compile(r"`([\w.-]+\.py)`:\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run\b")
_EXITS = re.compile(r"^<!--\s*exits (\d+)\b")


@dataclass(frozen=True)
class Block:
    """A step to run (``path`` None) or a file to write, from ``line`` of the guide."""

    text: str
    line: int
    path: str | None = None
    exits: int = 0

    @property
    def is_file(self) -> bool:
        return self.path is not None


def parse(markdown: str) -> list[Block]:
    """The blocks of ``markdown`` that are steps or files, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"line {start + 1}: a code block that is never closed")
        text = "\n".join(lines[start + 1 : end]) + "\n"
        before = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        language = opened.group(1)
        index = end + 1
        if _NOT_RUN.match(before) or language not in ("bash", "python"):
            continue
        if language == "bash":
            exits = _EXITS.match(before)
            blocks.append(Block(text, start + 1, exits=int(exits.group(1)) if exits else 0))
            continue
        caption = _FILE_CAPTION.search(before)
        if caption is None:
            raise ValueError(
                f"line {start + 1}: a python block that is neither a file (a line naming "
                "`file.py`: right before it) nor marked <!-- not run -->"
            )
        blocks.append(Block(text, start + 1, path=caption.group(1)))
    return blocks


@dataclass
class StepResult:
    command: str
    status: int
    output: str  # stdout and stderr, interleaved as a terminal shows them
    #: every command of the step that failed: (exit status, its first line)
    failures: list[tuple[int, str]] = field(default_factory=list)

    def __str__(self) -> str:
        failed = "".join(f"\n  failed ({s}): {c}" for s, c in self.failures)
        return f"$ {self.command.rstrip()}\n{self.output}\n[exit {self.status}]{failed}"


class StepTimedOut(AssertionError):
    pass


class Shell:
    """One ``bash`` in a session of its own, fed step after step."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch  # the step scripts and the transcript: not the guide's folder
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.transcript = scratch / "transcript.txt"
        self._errors = scratch / "failed-commands"
        self._mark = f"@@guide-step-{uuid.uuid4().hex}@@"
        self._count = 0
        bash = shutil.which("bash") or "/bin/bash"
        self.proc = subprocess.Popen(
            [bash, "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: close() can end all of it
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # the failed command's status and first line, appended to a file of the scratch
        # folder: the step's own output stays as the reader would see it
        errors = shlex.quote(str(self._errors))
        self._send(
            "__guide_failed() {\n"
            "  local newline=$'\\n'\n"
            f'  printf \'%s %s\\n\' "$1" "${{2%%"$newline"*}}" >> {errors}\n'
            "}\n"
            "trap '__guide_failed $? \"$BASH_COMMAND\"' ERR\n"
        )

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def run(self, command: str, timeout: float, record: bool = True) -> StepResult:
        """Run ``command`` as a step; its result once it has ended, or :class:`StepTimedOut`.
        The transcript (in the scratch folder) keeps it unless ``record`` is false."""
        self._count += 1
        script = self.scratch / f"step-{self._count:02d}.sh"
        script.write_text(command)
        self._errors.write_text("")
        source = f". {shlex.quote(str(script))} < /dev/null"
        self._send(f"{source}\nprintf '\\n%s %s\\n' {self._mark} \"$?\"\n")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._log(command, "\n".join(output), "timed out")
                raise StepTimedOut(
                    f"no end within {timeout:g}s of:\n$ {command}" + "\n".join(output)
                ) from None
            if line is None:
                self._log(command, "\n".join(output), "the shell exited")
                raise AssertionError(f"the shell exited during:\n$ {command}" + "\n".join(output))
            if line.startswith(self._mark):
                break
            output.append(line)
        if output and output[-1] == "":  # the newline printed before the mark
            output.pop()
        failures = []
        for entry in self._errors.read_text().splitlines():
            status, _, failed = entry.partition(" ")
            if str(script) not in failed:  # the sourcing itself, failing with its last command
                failures.append((int(status), failed))
        result = StepResult(command, int(line.split()[1]), "\n".join(output), failures)
        if record:
            self._log(command, result.output, f"exit {result.status}")
        return result

    def value(self, name: str) -> str:
        """A shell variable's value, as the guide's commands left it."""
        result = self.run(f'printf "%s" "${{{name}}}"\n', timeout=10, record=False)
        return result.output

    def cwd(self) -> Path:
        return Path(self.value("PWD"))

    def write(self, relative: str, text: str) -> Path:
        """Write a file of the guide where the reader is (the shell's current folder)."""
        path = self.cwd() / relative
        path.write_text(text)
        with self.transcript.open("a") as log:
            log.write(f"### wrote {path}\n{text}\n")
        return path

    def _log(self, command: str, output: str, ending: str) -> None:
        with self.transcript.open("a") as log:
            log.write(f"$ {command.rstrip()}\n{output}\n[{ending}]\n\n")

    def close(self, timeout: float = 10.0) -> None:
        """End the shell: ``exit``, else (a step that hangs) SIGKILL to its process group.
        What it started and left running (a background job the guide failed to stop, daemons
        in sessions of their own) is the caller's to find."""
        try:
            self._send("exit\n")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:  # it is gone already
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # not reaped, so the group is still the shell's: no other process can have it
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        self._reader.join(timeout)
