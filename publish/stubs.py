"""The student stubs `assignment/load_data.py` and `assignment/models.py`, and the public checks.

Every region between `### BEGIN SOLUTION` and `### END SOLUTION` of `solutions/*.py` is replaced
by a stub that raises `NotImplementedError`, by nbgrader's own `ClearSolutions` preprocessor (the
one that `nbgrader generate_assignment` runs on notebooks), applied to each file as a one-cell
notebook. Before that, each docstring keeps the hint section of the chosen level
(`publish.hints`): the numbered steps, or the outline.

The grader's public checks (`autograder/checks/public/`) are copied verbatim into
`assignment/public_checks/`; the hidden checks and thresholds (`autograder/checks/hidden/`) are
never copied.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from kit.submission import REPO_ROOT, SUBMISSION_FILES
from publish import hints
from publish.files import unified_diff

SOURCE = REPO_ROOT / "solutions"
RELEASE = REPO_ROOT / "assignment"
PUBLIC_CHECKS = REPO_ROOT / "autograder" / "checks" / "public"
PUBLIC_CHECK_FILES = ("test_episodes.py", "test_model.py")
CODE_STUB = (
    "# TODO: follow the numbered steps in the docstring above.\n"
    'raise NotImplementedError("not implemented yet: see the steps in the docstring")'
)
OUTLINE_STUB = (
    "# TODO: implement what the docstring above describes.\n"
    'raise NotImplementedError("not implemented yet: see the docstring")'
)
STUBS = {"steps": CODE_STUB, "outline": OUTLINE_STUB}  # hint level -> the code of a stub
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def strip_solutions(source: str, name: str = "file", stub: str = CODE_STUB) -> str:
    """Return `source` with every solution region replaced by `stub`."""
    from nbgrader.preprocessors import ClearSolutions  # slow to import: only when stripping

    cell = nbformat.v4.new_code_cell(source)
    # ClearSolutions only clears cells that nbgrader's metadata marks as solution cells.
    cell.metadata["nbgrader"] = {
        "solution": True,
        "grade": False,
        "locked": False,
        "grade_id": name,
        "schema_version": 3,
    }
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    clear = ClearSolutions(code_stub={"python": stub})
    notebook, _ = clear.preprocess(notebook, {})
    return notebook.cells[0].source.rstrip("\n") + "\n"


def student_stub(source: str, name: str, level: str = hints.DEFAULT_LEVEL) -> str:
    """The student version of one solution file at hint level `level`."""
    return strip_solutions(hints.select(source, level), name, STUBS[hints.check_level(level)])


def solution_regions(source: str) -> list[str]:
    """The text between each `### BEGIN SOLUTION` and `### END SOLUTION` line of `source`."""
    regions, inside = [], None
    for line in source.splitlines():
        if BEGIN in line:
            inside = []
        elif END in line and inside is not None:
            regions.append("\n".join(inside))
            inside = None
        elif inside is not None:
            inside.append(line)
    return regions


def released_files(
    source: Path = SOURCE,
    public_checks: Path = PUBLIC_CHECKS,
    level: str = hints.DEFAULT_LEVEL,
) -> dict[str, str]:
    """Path relative to `assignment/` -> the text it must have there: the stubs generated
    from `source/` at hint level `level` and verbatim copies of the public checks."""
    files = {
        name: student_stub((source / name).read_text(), name, level) for name in SUBMISSION_FILES
    }
    for name in PUBLIC_CHECK_FILES:
        files[f"public_checks/{name}"] = (public_checks / name).read_text()
    return files


def stale_files(
    source: Path = SOURCE, release: Path = RELEASE, level: str = hints.DEFAULT_LEVEL
) -> dict[str, str]:
    """File name -> unified diff, for each file of `release/` that differs from the one
    generated from `source/` (a missing file counts as empty)."""
    stale = {}
    for name, text in released_files(source, level=level).items():
        path = release / name
        actual = path.read_bytes() if path.is_file() else None
        if actual != text.encode():
            stale[name] = unified_diff(actual, text.encode(), f"{release.name}/{name}")
    return stale
