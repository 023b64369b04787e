"""What the installed package claims: only ``zkq``, and no benchmarks on a service's path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", ["worker", "coordinator", "frontend", "benchmarks"])
def test_no_generic_top_level_package_is_installed(name: str, tmp_path: Path) -> None:
    # run outside the checkout: there its folders are importable from the working directory
    done = run_python(f"import {name}", tmp_path)
    assert done.returncode != 0, f"`import {name}` worked outside the checkout"
    assert "ModuleNotFoundError" in done.stderr


def test_the_parts_import_under_zkq(tmp_path: Path) -> None:
    done = run_python(
        "import zkq.coordinator.store, zkq.worker.service, zkq.frontend.app; print('ok')",
        tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("argv", [["--help"], ["worker", "--help"], ["status", "--help"]])
def test_help_does_not_import_the_benchmarks(argv: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from zkq.cli import main\n"
        "try:\n"
        f"    main({argv!r}, prog_name='zkq')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks')\n"
        "print('LOADED', loaded)\n"
    )
    done = run_python(code, REPO)  # from the checkout, where benchmarks/ is importable
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-500:]


def test_zkq_bench_still_finds_the_benchmarks(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zkq", "bench", "--help"],
        cwd=tmp_path,  # not the checkout: found beside the editable install's package
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "LockingQueue" in done.stdout


#: a module longer than this no longer reads in one sitting: split it along what it holds
MAX_MODULE_LINES = 450


def test_every_product_module_reads_in_one_sitting() -> None:
    too_long = {
        str(path.relative_to(REPO)): lines
        for part in ("coordinator", "worker", "frontend", "zkq")
        for path in (REPO / part).rglob("*.py")
        if path.relative_to(REPO).parts[:2] not in LINKED
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


#: zkq/coordinator, zkq/worker and zkq/frontend are links to the top-level folders
LINKED = {("zkq", "coordinator"), ("zkq", "worker"), ("zkq", "frontend")}
