"""What each part of the homework is worth, read from where the points are defined.

- The grader's checks: pytest collects `autograder/checks/` with the grader's plugin (nothing
  runs) and each check's `points(n)` and `visibility(...)` markers are read, so that a
  parametrised check counts once per parameter set, exactly as the grader scores it.
- The notebooks: the nbgrader metadata of the rendered source notebooks (autograded test
  cells, and written answers graded by hand).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from kit.submission import REPO_ROOT

CHECKS = REPO_ROOT / "autograder" / "checks"


@dataclass(frozen=True)
class Check:
    """One graded check: `file` relative to `autograder/checks/` (`public/test_model.py`)."""

    file: str
    name: str
    points: float
    visibility: str


@dataclass(frozen=True)
class Cell:
    """One graded notebook cell: an autograded test (`written=False`) or a written answer."""

    notebook: str
    grade_id: str
    points: float
    written: bool


class _Collector:
    """A pytest plugin that records every collected check's points and visibility."""

    def __init__(self, checks: Path) -> None:
        self.folder = checks
        self.checks: list[Check] = []
        self.errors: list[str] = []

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_modifyitems(self, items) -> None:
        from autograder.plugin import check_name

        for item in items:
            points = item.get_closest_marker("points")
            visibility = item.get_closest_marker("visibility")
            self.checks.append(
                Check(
                    file=Path(item.path).relative_to(self.folder).as_posix(),
                    name=check_name(item),
                    points=float(points.args[0]) if points else 0.0,
                    visibility=visibility.args[0] if visibility else "visible",
                )
            )


def grader_checks(checks: Path = CHECKS) -> list[Check]:
    """Every check of the grader under `checks/` (public and hidden), in collection order.

    Collected in a fresh Python process (`collect`), so that check modules imported by an
    earlier collection are never reused.

    Raises:
        RuntimeError: the checks could not be collected.
    """
    return list(_collected(checks, _digest(checks)))


def _digest(checks: Path) -> str:
    """A digest of the check files and the grader's plugin: what a collection reads."""
    digest = hashlib.sha256()
    for path in [*sorted(checks.rglob("*.py")), REPO_ROOT / "autograder" / "plugin.py"]:
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


@functools.cache
def _collected(checks: Path, digest: str) -> tuple[Check, ...]:
    """`grader_checks`, collected once per process for each content of the checks (the
    handout and the package both need them)."""
    done = subprocess.run(
        [sys.executable, "-m", "publish.points", str(checks)],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the grader's checks could not be collected: {done.stderr[-2000:]}")
    return tuple(Check(**record) for record in json.loads(done.stdout))


def collect(checks: Path) -> list[Check]:
    """Collect the checks under `checks/` with pytest and the grader's plugin, in-process."""
    import pytest

    collector = _Collector(checks)
    argv = [
        str(checks),
        "-c",
        os.devnull,  # the grader's own settings only, as `python -m autograder grade` runs
        "--rootdir",
        str(checks),
        "-p",
        "autograder.plugin",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "--strict-markers",
        "--collect-only",
        "-q",
    ]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = pytest.main(argv, plugins=[collector])
    if collector.errors or code != pytest.ExitCode.OK:
        reason = collector.errors[0] if collector.errors else printed.getvalue()[-2000:]
        raise RuntimeError(reason)
    return collector.checks


def module_summary(path: Path) -> str:
    """The first line of a check file's docstring (`Episode checks: ...`)."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or path.stem
    return docstring.splitlines()[0].rstrip(".")


def notebook_cells(sources: dict[str, bytes]) -> list[Cell]:
    """Every graded cell of the source notebooks `sources` (file name -> bytes)."""
    cells = []
    for name, content in sources.items():
        for cell in nbformat.reads(content.decode(), 4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells.append(
                    Cell(name, meta["grade_id"], float(meta["points"]), bool(meta["solution"]))
                )
    return cells


if (
    __name__ == "__main__"
):  # `python -m publish.points CHECKS`: the checks as JSON, for `grader_checks`
    try:
        print(json.dumps([asdict(check) for check in collect(Path(sys.argv[1]))]))
    except RuntimeError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
